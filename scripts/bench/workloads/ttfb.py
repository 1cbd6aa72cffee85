"""7. Time to the first byte of the big object on a fresh mount with the page cache dropped
(helpers/ttfb_probe.py: open + read of 1 byte), on loopback and through a TCP proxy that adds
BENCH_LATENCY_MS to every request; the baseline is curl's ranged GET bytes=0-1."""

import subprocess
import sys

from ..measure import curl_first_byte_ms
from ..s3 import S3
from ..server import HELPERS, ORDER
from ..stats import fmt_list, fmt_num, max_of, median
from ..system import free_port, stop_process, tail, wait_port


def probe(b, path) -> tuple[float | None, float | None, float | None]:
    """(total, open, read) in ms."""
    try:
        p = subprocess.run(
            [sys.executable, str(HELPERS / "ttfb_probe.py"), str(path)],
            capture_output=True,
            text=True,
            timeout=b.cfg.cmd_timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        b.fail(f"first byte of {path}: timed out")
        return None, None, None
    if p.returncode != 0:
        b.fail(f"first byte of {path}: {tail(p.stderr, 1)}")
        return None, None, None
    total, opn, read = (float(x) for x in p.stdout.split())
    return total, opn, read


def per_open(sent: int | None, total: float | None, curl: float | None) -> str:
    """The requests an open + first byte cost, and its time in units of one curl GET: the
    round trips in a row, where latency dominates (the open path is big/obj: two components,
    so two round trips is one per component)."""
    trips = "time n/a" if total is None or not curl else f"{total / curl:.1f}x one GET's time"
    return f"{sent if sent is not None else 'n/a'} requests; {trips}"


def measure_row(b, row, req, url: str) -> None:
    c = b.cfg
    tc = []
    for r in range(1, c.ttfb_runs + 1):
        b.drop_caches()
        mark = b.server.mark()
        tc.append(curl_first_byte_ms(b, url))
        if r == 1:
            req.cells["curl"] = b.server.since(mark)
    b.note(f"{row.id}: curl bytes=0-1: {fmt_list(tc)} ms")
    row.cells["curl"] = median(tc)
    tt, to, tr, rr = ({m.key: [] for m in b.mounts} for _ in range(4))
    sent: dict[str, int] = {}
    for r, m in b.interleaved(c.ttfb_runs):
        total = opn = read = None
        with m.mounted(f"{row.id}-{r}") as ok:
            if ok:
                b.drop_caches()
                mark = b.server.mark()
                total, opn, read = probe(b, m.dir / "big/obj")
                if r == 1:
                    req.cells[m.key] = b.server.since(mark)
                    got = b.server.counts_since(mark)
                    # Requests only: the counter also holds byte totals ("GET bytes", ...).
                    sent[m.key] = sum(n for k, n in got.items() if k in ORDER)
                rr[m.key].append(m.hwm())
        tt[m.key].append(total)
        to[m.key].append(opn)
        tr[m.key].append(read)
    for m in b.mounts:
        k = m.key
        b.note(f"{row.id}: {m.label}: total {fmt_list(tt[k])} ms (open {fmt_list(to[k])}; read {fmt_list(tr[k])})")
        row.cells[k] = median(tt[k])
        split = f"open (path lookup) {fmt_num(median(to[k]))} ms + read of 1 byte {fmt_num(median(tr[k]))} ms"
        b.res.facts[f"{row.short}, split (medians), {m.label}"] = split
        b.res.facts[f"{row.short}, round trips per open, {m.label}"] = per_open(
            sent.get(k), median(tt[k]), row.cells["curl"]
        )
        if m is not b.s3fs:
            row.rss[k] = max_of(rr[k])
    b.vs_base(row, tt)


def run(b) -> None:
    c = b.cfg
    ttfb = b.res.row(
        "ttfb",
        "ms",
        f"time to first byte of a {c.size_mib} MiB file: open + read of 1 byte on a "
        "fresh mount, page cache dropped — curl: one ranged GET bytes=0-1",
        "time to first byte",
    )
    req = b.res.req("ttfb", f"first byte of the {c.size_mib} MiB file, fresh mount (curl column: the ranged GET)")
    lat = b.res.row(
        "ttfblat",
        "ms",
        f"time to first byte as above, through a proxy that adds {c.latency_ms} ms "
        "to every request (a distant endpoint: round trips dominate)",
        f"time to first byte, +{c.latency_ms} ms per request",
    )
    req_lat = b.res.req("ttfblat", "first byte, fresh mount, through the latency proxy")
    if not b.big_ok:
        return
    measure_row(b, ttfb, req, b.big_url)

    port = free_port()
    with open(b.logs / "latency-proxy.log", "wb") as out:
        proxy = subprocess.Popen(
            [sys.executable, str(HELPERS / "latency_proxy.py"), str(port), str(b.server.port), str(c.latency_ms)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        if not wait_port(port, proxy, 5):
            b.fail(f"the latency proxy did not start: {tail((b.logs / 'latency-proxy.log').read_text())}")
            return
        direct = b.endpoint
        b.endpoint = f"http://127.0.0.1:{port}"
        try:
            measure_row(b, lat, req_lat, S3(b.endpoint, c.bucket).presign("big/obj"))
        finally:
            b.endpoint = direct
    finally:
        stop_process(proxy, 5)
