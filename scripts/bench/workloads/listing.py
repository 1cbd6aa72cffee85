"""3. ls -l of a directory of BENCH_LIST_FILES objects on a fresh mount and a second time in
the same mount; the server baseline is boto3's paginated ListObjectsV2 with Delimiter='/'."""

from ..measure import ls_dir
from ..stats import fmt_list, max_of, median


def list_baseline(b, prefix: str, runs: int, req=None) -> tuple[list, int | None]:
    """Seconds of the bare LIST per run, and the page count."""
    secs, pages = [], None
    for r in range(1, runs + 1):
        mark = b.server.mark()
        try:
            s, pages, _ = b.s3.list_timed(prefix)
        except Exception as e:  # noqa: BLE001 - any failure is one n/a cell
            b.fail(f"boto3 LIST of {prefix} failed: {e}")
            continue
        if r == 1 and req is not None:
            req.cells["curl"] = b.server.since(mark)
        secs.append(s)
    return secs, pages


def run(b) -> None:
    c = b.cfg
    n = c.list_files
    ls = b.res.row(
        "ls",
        "s",
        f"ls -l of {n} objects, fresh mount — server: paginated ListObjectsV2, Delimiter='/' (boto3)",
        f"ls -l {n}, fresh mount",
    )
    lsw = b.res.row(
        "lsw",
        "s",
        f"ls -l of {n} objects, 2nd time in the same mount (s3mount: within --metadata-ttl) — server: as above",
        f"ls -l {n}, 2nd time",
    )
    req = b.res.req("ls", f"ls -l of {n} objects, fresh mount")
    reqw = b.res.req("lsw", f"ls -l of {n} objects, 2nd time")
    if not b.list_ok:
        return
    lc, pages = list_baseline(b, "list", c.runs, req)
    b.note(f"boto3 LIST: {fmt_list(lc)} s ({pages} pages)")
    ls.cells["curl"] = lsw.cells["curl"] = median(lc)
    reqw.cells["curl"] = req.cells.get("curl", "n/a")

    for m in b.mounts:
        first, second, rr = [], [], []
        for r in range(1, c.runs + 1):
            with m.mounted(f"ls-{r}") as ok:
                if not ok:
                    continue
                mark = b.server.mark()
                first.append(ls_dir(b, m.dir / "list", n))
                if r == 1:
                    req.cells[m.key] = b.server.since(mark)
                mark = b.server.mark()
                second.append(ls_dir(b, m.dir / "list", n))
                if r == 1:
                    reqw.cells[m.key] = b.server.since(mark)
                rr.append(m.hwm())
        b.note(f"{m.label}: {fmt_list(first)} s; 2nd time: {fmt_list(second)} s (RSS {fmt_list(rr)})")
        ls.cells[m.key], lsw.cells[m.key] = median(first), median(second)
        if m is not b.s3fs:
            ls.rss[m.key] = lsw.rss[m.key] = max_of(rr)
    b.list_pages = pages
