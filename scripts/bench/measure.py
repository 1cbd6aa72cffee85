"""The timed commands: dd reads and writes, fio, ls -l, cat of many files, parallel readers,
and the curl baselines. Each returns the figure (MiB/s, seconds, ...) or None after noting
why it failed."""

import json
import subprocess
from pathlib import Path

from .stats import mib_per_s
from .system import dd_bytes, run_parallel, run_timed, tail


def read_file(b, path: Path, size: int) -> float | None:
    """dd the file to /dev/null; MiB/s."""
    t = run_timed(["dd", f"if={path}", "of=/dev/null", "bs=1M"], b.cfg.cmd_timeout)
    if not t.ok:
        b.fail(f"dd {path} failed: {t.err}")
        return None
    got = dd_bytes(t.stderr)
    if got != size:
        b.fail(f"dd {path} read {got} bytes, expected {size}")
        return None
    return mib_per_s(size, t.seconds)


def read_tree(b, root: Path, readers: int = 8) -> float | None:
    """cat every file under root to /dev/null, `readers` processes at once; MiB/s of the bytes
    the files hold (a disk's own speed for many small files, with no filesystem of ours)."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    if not files:
        b.fail(f"no files under {root}")
        return None
    size = sum(p.stat().st_size for p in files)
    cmds = [["cat", *map(str, files[i::readers])] for i in range(readers)]
    ok, secs, errs = run_parallel([c for c in cmds if len(c) > 1], b.cfg.cmd_timeout)
    if not ok:
        b.fail(f"cat of the files under {root} failed: {tail(' '.join(errs))}")
        return None
    return mib_per_s(size, secs)


def write_file(b, src: Path, dst: Path, size: int) -> float | None:
    """dd src to dst with conv=fsync (the time includes the close); MiB/s."""
    t = run_timed(["dd", f"if={src}", f"of={dst}", "bs=1M", "conv=fsync"], b.cfg.cmd_timeout)
    if not t.ok:
        b.fail(f"dd to {dst} failed: {t.err}")
        return None
    got = dd_bytes(t.stderr)
    if got != size:
        b.fail(f"dd to {dst} wrote {got} bytes, expected {size}")
        return None
    return mib_per_s(size, t.seconds)


def fio_read(b, path: Path, one_pass: bool = False) -> float | None:
    """fio random 256 KiB O_DIRECT reads for BENCH_FIO_SECONDS, or (one_pass) one pass over the
    whole file, every block read once in random order (fio's random map); MiB/s."""
    c = b.cfg
    out = b.work / "fio.json"
    timing = [] if one_pass else [f"--runtime={c.fio_secs}", "--time_based"]
    t = run_timed(
        [
            "fio",
            "--name=rand",
            f"--filename={path}",
            "--rw=randread",
            "--bs=256k",
            "--direct=1",
            "--readonly",
            f"--size={c.size_bytes}",
            *timing,
            "--ioengine=psync",
            "--output-format=json",
            f"--output={out}",
        ],
        c.cmd_timeout + c.fio_secs,
    )
    if not t.ok:
        b.fail(f"fio {path} failed: {t.err}")
        return None
    try:
        job = json.loads(out.read_text())["jobs"][0]
    except (OSError, ValueError, KeyError, IndexError) as e:
        b.fail(f"fio {path}: unreadable result ({e})")
        return None
    if job.get("error"):
        b.fail(f"fio {path}: error {job['error']}")
        return None
    return job["read"]["bw_bytes"] / (1 << 20)


def ls_dir(b, path: Path, want: int) -> float | None:
    """Seconds of `ls -l --time-style=+%s path` (its output in b.work/ls.out), checking that it
    lists want entries."""
    out = b.work / "ls.out"
    with open(out, "wb") as f:
        t = run_timed(["ls", "-l", "--time-style=+%s", str(path)], b.cfg.cmd_timeout, stdout=f)
    if not t.ok:
        b.fail(f"ls -l {path} failed: {t.err}")
        return None
    n = len(out.read_bytes().splitlines()) - 1  # the "total" line
    if n != want:
        b.fail(f"ls -l {path} listed {n} entries, expected {want}")
        return None
    return t.seconds


def ls_attrs(b) -> dict[str, tuple[str, int | None]]:
    """name -> (mode string, mtime) from the last ls_dir's output."""
    got = {}
    for line in (b.work / "ls.out").read_text(errors="replace").splitlines()[1:]:
        f = line.split(None, 6)
        if len(f) == 7:
            got[f[6]] = (f[0][:10], int(f[5]) if f[5].lstrip("-").isdigit() else None)
    return got


def cat_files(b, d: Path, names_file: Path, want_bytes: int) -> float | None:
    """Seconds of `cat` of every name in names_file inside d (xargs batches them)."""
    out = b.work / "cat.out"
    with open(out, "wb") as f:
        t = run_timed(["xargs", "-a", str(names_file), "cat"], b.cfg.cmd_timeout, stdout=f, cwd=d)
    if not t.ok:
        b.fail(f"cat in {d} failed: {t.err}")
        return None
    got = out.stat().st_size
    if got != want_bytes:
        b.fail(f"cat in {d} read {got} bytes, expected {want_bytes}")
        return None
    return t.seconds


def par_read(b, size: int, files: list[Path]) -> float | None:
    """Every file read at once by its own dd; aggregate MiB/s until the last one ended."""
    ok, secs, errs = run_parallel([["dd", f"if={f}", "of=/dev/null", "bs=1M"] for f in files], b.cfg.cmd_timeout)
    if ok and all(dd_bytes(e) == size for e in errs):
        return mib_per_s(size * len(files), secs)
    b.fail(f"parallel dd of {len(files)} files failed: {sorted({tail(e, 1) for e in errs})[:3]}")
    return None


def curl_specs(b, total: int, specs: list[tuple[str | None, str]]) -> float | None:
    """Every (range or None, url) fetched at once by its own curl; aggregate MiB/s."""
    cmds = [["curl", "-sf", *(["-r", rng] if rng else []), "-o", "/dev/null", url] for rng, url in specs]
    ok, secs, errs = run_parallel(cmds, b.cfg.cmd_timeout)
    if not ok:
        b.fail(f"parallel curl of {len(specs)} requests failed: {sorted({tail(e, 1) for e in errs})[:3]}")
        return None
    return mib_per_s(total, secs)


def split_ranges(size: int, parts: int) -> list[str]:
    """Ranges "s-e" cutting size bytes into parts (the last one shorter)."""
    part = (size + parts - 1) // parts
    return [f"{s}-{min(s + part, size) - 1}" for s in range(0, size, part)]


def curl8(b) -> float | None:
    """8 parallel ranged GETs of the big object: the server's ceiling."""
    return curl_specs(b, b.cfg.size_bytes, [(r, b.big_url) for r in split_ranges(b.cfg.size_bytes, 8)])


def curl_get(b, url: str, size: int) -> float | None:
    t = run_timed(["curl", "-sf", "-o", "/dev/null", url], b.cfg.cmd_timeout)
    if not t.ok:
        b.fail(f"curl GET failed: {t.err}")
        return None
    return mib_per_s(size, t.seconds)


def curl_first_byte_ms(b, url: str) -> float | None:
    """curl's time_total of a ranged GET bytes=0-1, in ms (s3rver 3.7.1 reads "0-0" as no end)."""
    p = subprocess.run(
        ["curl", "-sf", "-r", "0-1", "-o", "/dev/null", "-w", "%{time_total}", url],
        capture_output=True,
        text=True,
        timeout=b.cfg.cmd_timeout,
        check=False,
    )
    if p.returncode != 0:
        b.fail(f"curl ranged GET failed: {tail(p.stderr)}")
        return None
    return float(p.stdout) * 1000


def same_bytes(a: Path, b_path: Path) -> bool:
    return subprocess.run(["cmp", "-s", str(a), str(b_path)], check=False).returncode == 0


def object_matches(b, key: str, local: Path) -> bool:
    """The object holds exactly local's bytes (a presigned GET through curl, cmp)."""
    curl = subprocess.Popen(["curl", "-sf", b.s3.presign(key)], stdout=subprocess.PIPE)
    cmp = subprocess.run(["cmp", "-s", "-", str(local)], stdin=curl.stdout, check=False)
    curl.stdout.close()
    return curl.wait() == 0 and cmp.returncode == 0
