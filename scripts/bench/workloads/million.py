"""13. A million objects, from a synthetic endpoint (helpers/synthetic_s3.py: 1,000 directories
of 1,000 objects, generated, never stored; s3rver and moto cannot hold them): `find MNT -type
f | wc -l` on a fresh mount of synth/m against the bare paginated ListObjectsV2 of the same
keys (a raw HTTP client, 1,000 pages: the server's own cost); s3mount's CPU seconds and peak
RSS; its RSS and inode count again after `echo 2 > /proc/sys/vm/drop_caches` (the kernel
FORGETs the nodes it dropped); then `ls -l` of one directory of 1,000, 10,000 and 100,000
objects (synth/w), whose time per entry should stay flat. Targets: find ≤ 1.5x the LIST;
peak RSS ≤ 256 MiB plus the bytes per node the kernel holds; RSS drops after the kernel
lets go. s3fs is not run (it sends a HEAD per entry: hours for a million)."""

import http.client
import re
import subprocess
import sys
import time
import urllib.parse

from ..mounts import S3mount
from ..server import HELPERS
from ..stats import fmt_list, fmt_num, median
from ..system import cpu_secs, free_port, peak_rss_mib, rss_mib, stop_process, tail, wait_port
from ..targets import target_line, verdict

OBJECTS = 1_000_000
WIDE = (1_000, 10_000, 100_000)


class SynthMount(S3mount):
    """The s3mount variant `base`, mounting `target` (bucket/prefix) of the synthetic endpoint."""

    def __init__(self, base: S3mount, endpoint: str, target: str):
        super().__init__(base.bench, base.dir, base.key, base.label, base.binary)
        self.endpoint, self.target = endpoint, target

    def command(self, opts):
        return [
            self.binary,
            self.target,
            str(self.dir),
            "--region",
            "us-east-1",
            "--endpoint-url",
            self.endpoint,
            "--force-path-style",
            "--foreground",
            "--metrics-addr",
            f"127.0.0.1:{self.metrics_port}",
            *opts,
        ]

    metrics_port = 0

    def inodes(self) -> int | None:
        """The s3mount_inodes gauge (None when the binary has none)."""
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.metrics_port, timeout=10)
            c.request("GET", "/metrics")
            m = re.search(r"^s3mount_inodes (\d+)", c.getresponse().read().decode(), re.M)
            return int(m.group(1)) if m else None
        except OSError:
            return None


def raw_list(port: int, prefix: str, delimiter: str = "") -> tuple[float, int]:
    """(seconds, keys) of a paginated ListObjectsV2 of prefix over one keep-alive connection,
    without signing or parsing beyond the continuation token: the server's own cost."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    t0, keys, token = time.perf_counter(), 0, None
    while True:
        q = {"list-type": "2", "prefix": prefix}
        if delimiter:
            q["delimiter"] = delimiter
        if token:
            q["continuation-token"] = token
        c.request("GET", "/synth?" + urllib.parse.urlencode(q))
        body = c.getresponse().read().decode()
        keys += body.count("<Key>")
        m = re.search(r"<NextContinuationToken>(.*?)</NextContinuationToken>", body)
        if not m:
            return time.perf_counter() - t0, keys
        token = m.group(1)


def timed_sh(b, script: str) -> tuple[float | None, str]:
    t0 = time.perf_counter()
    p = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=b.cfg.cmd_timeout * 4, check=False)
    if p.returncode != 0:
        b.fail(f"`{script}` failed: {tail(p.stderr, 2)}")
        return None, ""
    return time.perf_counter() - t0, p.stdout


def run(b) -> None:
    res = b.res
    find_row = res.row(
        "mfind",
        "s",
        f"find -type f of {OBJECTS:,} objects in 1,000 directories, fresh mount — "
        "server: paginated ListObjectsV2 of the same keys (raw HTTP, 1,000 pages)",
        "find, a million objects",
    )
    find_row.cells["s3fs"] = "not run"
    port = free_port()
    log = b.logs / "synthetic-requests.log"
    with open(b.logs / "synthetic.log", "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(HELPERS / "synthetic_s3.py"), str(port), str(log)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        if not wait_port(port, proc, 30):
            b.fail("the synthetic S3 endpoint did not start; see synthetic.log")
            return
        _measure(b, port, find_row)
    finally:
        stop_process(proc, 5)


def _measure(b, port: int, find_row) -> None:
    endpoint = f"http://127.0.0.1:{port}"
    lists = []
    for _ in range(b.cfg.runs):
        secs, keys = raw_list(port, "m/")
        if keys != OBJECTS:
            b.fail(f"the synthetic LIST returned {keys} keys, not {OBJECTS}")
        lists.append(secs)
    find_row.cells["curl"] = median(lists)
    b.note(f"million: bare LIST of {OBJECTS:,} keys: {fmt_list(lists)} s")
    for base in b.variants:
        m = SynthMount(base, endpoint, "synth/m")
        d = {k: [] for k in ("find", "cpu", "hwm", "rss", "after", "inodes", "left")}
        for r in range(1, b.cfg.runs + 1):
            m.metrics_port = free_port()
            with m.mounted(f"million-{r}") as ok:
                if not ok:
                    continue
                secs, out = timed_sh(b, f"find {m.dir} -type f | wc -l")
                if out.strip() and int(out) != OBJECTS:
                    b.fail(f"{m.label}: find counted {out.strip()} files, not {OBJECTS}")
                d["find"].append(secs)
                d["cpu"].append(cpu_secs(m.pid))
                d["hwm"].append(peak_rss_mib(m.pid))
                d["rss"].append(rss_mib(m.pid))
                d["inodes"].append(m.inodes())
                subprocess.run(["sh", "-c", "sync; echo 2 > /proc/sys/vm/drop_caches"], check=False)
                time.sleep(3)
                d["after"].append(rss_mib(m.pid))
                d["left"].append(m.inodes())
        find_row.cells[m.key] = median(d["find"])
        find_row.rss[m.key] = max((x for x in d["hwm"] if x is not None), default=None)
        b.note(
            f"{m.label} million: find {fmt_list(d['find'])} s, CPU {fmt_list(d['cpu'])} s, peak RSS "
            f"{fmt_list(d['hwm'])} MiB, RSS after find {fmt_list(d['rss'])} MiB with {fmt_list(d['inodes'])} "
            f"inodes; after drop_caches {fmt_list(d['after'])} MiB with {fmt_list(d['left'])} inodes"
        )
        ratio = None if not find_row.cells["curl"] or median(d["find"]) is None else median(d["find"]) / median(lists)
        hwm = find_row.rss[m.key]
        after, before = median(d["after"]), median(d["rss"])
        b.res.facts[f"target, a million objects ({m.label})"] = target_line(
            [
                (f"find/LIST {fmt_num(ratio)}× (target ≤ 1.5×)", verdict(ratio, 1.5, False)),
                (f"peak RSS {hwm} MiB (target ≤ 256 MiB + what the kernel holds)", verdict(hwm, 256, False)),
                (
                    f"RSS {before} → {after} MiB after drop_caches, inodes {median(d['inodes'])} → {median(d['left'])}",
                    verdict(after, before if before is not None else 0, False),
                ),
            ]
        )
        _wide(b, port, base)


def _wide(b, port: int, base: S3mount) -> None:
    """ls -l of one directory of each size in WIDE on one fresh mount; time per entry."""
    m = SynthMount(base, f"http://127.0.0.1:{port}", "synth/w")
    m.metrics_port = free_port()
    per = {}
    with m.mounted("wide") as ok:
        if not ok:
            return
        for n in WIDE:
            lc, _ = raw_list(port, f"w/w{n}/", "/")
            secs, out = timed_sh(b, f"ls -l {m.dir}/w{n} | wc -l")
            if out.strip() and int(out) != n + 1:
                b.fail(f"{m.label}: ls -l w{n} listed {int(out) - 1} entries, not {n}")
            per[n] = secs
            b.note(
                f"{m.label} ls -l of {n:,}: {fmt_num(secs)} s ({fmt_num(None if secs is None else secs / n * 1e6)} "
                f"µs per entry); bare LIST {fmt_num(lc)} s"
            )
    if per.get(WIDE[0]) and per.get(WIDE[-1]):
        growth = (per[WIDE[-1]] / WIDE[-1]) / (per[WIDE[0]] / WIDE[0])
        b.res.facts[f"ls -l 1k / 10k / 100k, time per entry ({m.label})"] = (
            " / ".join(f"{fmt_num(per[n] / n * 1e6)} µs" for n in WIDE if per.get(n))
            + f": the 100k directory costs {fmt_num(growth)}× per entry what the 1k one does (linear: ≈ 1×)"
        )
