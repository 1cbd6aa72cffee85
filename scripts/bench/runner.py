"""The run: seeding through the S3 API, the workloads in order (a workload that raises is
noted and the run goes on), the report (stdout and the results file), the chart, cleanup."""

import importlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

import boto3

from . import chart, report
from .config import ROOT, Config
from .core import Bench
from .measure import object_matches
from .system import is_fuse_mounted, loadavg
from .workloads import listing


def seed(b: Bench) -> None:
    c = b.cfg
    b.log(f"seeding bucket {c.bucket}: {c.size_mib} MiB object, {c.list_files} list objects, {c.small_files} x 4 KiB")
    b.s3.mkbucket()
    with open(b.big_local, "wb") as f:
        left = c.size_bytes
        while left:
            n = min(left, 1 << 24)
            f.write(os.urandom(n))
            left -= n
    try:
        b.s3.upload(str(b.big_local), "big/obj")
        b.big_url = b.s3.presign("big/obj")
        b.big_ok = object_matches(b, "big/obj", b.big_local)
        if not b.big_ok:
            b.fail("the uploaded object does not read back identical")
    except Exception as e:  # noqa: BLE001 - the workloads that need it are skipped
        b.fail(f"upload of the big object failed: {e}")
    t0 = time.monotonic()
    seeds = (
        ("list", c.list_files, 128, "list_ok", listing.s3fs_headers),
        ("small", c.small_files, 4096, "small_ok", None),
    )
    for prefix, count, size, attr, headers in seeds:
        try:
            b.s3.seed(prefix, count, size, headers)
            if prefix == "list":
                b.list_expect = listing.expected(b)
            setattr(b, attr, True)
        except Exception as e:  # noqa: BLE001
            b.fail(f"seeding {count} objects under {prefix}/ failed: {e}")
    b.note(f"seeded {c.list_files + c.small_files} small objects in {time.monotonic() - t0:.1f} s")
    (b.work / "small-names").write_text("".join(f"f{i:06d}\n" for i in range(c.small_files)))


def _lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def _first_line(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


def machine_info(b: Bench) -> list[str]:
    c = b.cfg
    cpu = next((ln.split(":", 1)[1].strip() for ln in _lines("/proc/cpuinfo") if ln.startswith("model name")), "?")
    mem = next(int(ln.split()[1]) for ln in _lines("/proc/meminfo") if ln.startswith("MemTotal"))
    osname = next(
        (ln.split("=", 1)[1].strip().strip('"') for ln in _lines("/etc/os-release") if ln.startswith("PRETTY_NAME=")),
        "",
    )
    git = _first_line(["git", "-C", str(ROOT), "describe", "--always", "--dirty"])
    desc = c.s3mount_desc or f"binary {c.s3mount_bin}"
    lines = [
        f"# s3mount benchmark — {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC" + (" (--quick)" if c.quick else ""),
        "",
        f"- machine: {os.cpu_count()} cores ({cpu}), {mem / 1048576:.1f} GiB RAM",
        f"- kernel: {platform.system()} {platform.release()} {platform.machine()}; {osname}",
        f"- harness: scripts/bench at git {git}",
        f"- s3mount: {_first_line([c.s3mount_bin, '--version'])}, {desc}",
    ]
    if c.baseline_bin:
        lines.append(
            f"- baseline: {_first_line([c.baseline_bin, '--version'])}, "
            f"{os.environ.get('BENCH_BASELINE_DESC') or 'binary ' + c.baseline_bin} (BENCH_BASELINE_BIN)"
        )
    lines += [
        f"- peers: {_first_line(['s3fs', '--version']).split(' (commit')[0]}; "
        f"{' '.join(_first_line(['curl', '--version']).split()[:2])}; {_first_line(['fio', '--version'])}; "
        f"boto3 {boto3.__version__}",
        f"- server: s3rver 3.7.1 on 127.0.0.1 (node {_first_line(['node', '--version'])})",
        f"- load average (1/5/15 min) at the start: {b.load_start}; at the end: {loadavg()}",
        f"- sizes: object {c.size_mib} MiB (read and written), ls -l of {c.list_files} objects (half with "
        f"s3fs's mode/uid/gid/mtime headers), cat and create "
        f"of {c.small_files} x 4 KiB, 16 x {c.multi_mib} MiB read at once, listings of "
        f"{', '.join(map(str, c.list_sizes))} objects; median of {c.runs} run(s) (listings above "
        f"{c.list_large} objects: 1 run; time to first byte: {c.ttfb_runs} runs); fio: {c.fio_secs} s per run, "
        f"median of {c.fio_runs} run(s)",
        "- cold = page cache dropped (sync; echo 3 > /proc/sys/vm/drop_caches) and a fresh mount"
        if b.can_drop
        else "- cold = fresh mount only: the page cache could NOT be dropped on this machine",
    ]
    return lines


def run_workloads(b: Bench) -> None:
    for name in b.cfg.workloads:
        mod = importlib.import_module(f".workloads.{name}", __package__)
        b.log(f"{name}: {re.split(r'[:;(]', ' '.join(mod.__doc__.split()))[0].strip()}")
        try:
            mod.run(b)
        except Exception as e:  # noqa: BLE001 - one workload's bug must not lose the others
            b.fail(f"workload {name} stopped: {e!r}")
            traceback.print_exc()
        finally:
            for m in b.mounts:
                m.stop()


def write_outputs(b: Bench) -> str:
    c = b.cfg
    baseline = bool(c.baseline_bin)
    b.res.facts["load average (1 min) at the start of each part"] = ", ".join(b.loads)
    b.res.facts["total time"] = f"{time.monotonic() - b.t0:.0f} s"
    if b.failures:
        shown = "; ".join(b.failures[:5]) + ("; ..." if len(b.failures) > 5 else "")
        b.res.facts[f"{len(b.failures)} failed step(s), their cells show n/a"] = shown
    chart_rel = os.path.relpath(c.chart_file, c.results_file.parent)
    text = report.render(b.res, machine_info(b), baseline, chart_rel)
    c.results_file.parent.mkdir(parents=True, exist_ok=True)
    c.results_file.write_text(text)
    try:
        title = (
            "s3mount vs curl and s3fs"
            + (" (and the baseline binary)" if baseline else "")
            + (" — quick run" if c.quick else "")
        )
        chart.draw(b.res, c.chart_file, baseline, title)
    except Exception as e:  # noqa: BLE001 - the tables are written anyway
        b.fail(f"chart not written: {e!r}")
    return text


def main(cfg: Config) -> int:
    b = Bench(cfg)
    rc = 0
    try:
        b.log(f"starting s3rver ({cfg.s3rver_module})")
        b.start_server()
        seed(b)
        run_workloads(b)
        b.log("done")
        text = write_outputs(b)
        print()
        print(text, end="")
        print(f"\nresults: {cfg.results_file}\nchart: {cfg.chart_file}")
    except KeyboardInterrupt:
        rc = 130
    finally:
        b.log("cleaning up")
        b.cleanup()
        _remove_work(b, rc)
    return rc


def _remove_work(b: Bench, rc: int) -> None:
    if any(is_fuse_mounted(str(m.dir)) for m in b.mounts):
        print(f"warning: a mount under {b.work} is still there; run: fusermount3 -uz DIR", file=sys.stderr)
        return
    if rc or b.failures or b.cfg.keep_logs:
        saved = tempfile.mkdtemp(prefix="s3mount-bench-logs.", dir=b.cfg.work_root)
        shutil.copytree(b.logs, saved, dirs_exist_ok=True)
        print(f"    logs kept in {saved}", file=sys.stderr)
    shutil.rmtree(b.work, ignore_errors=True)
