"""9. ls -l at several directory sizes (BENCH_LIST_SIZES) on a fresh mount vs the bare LIST
calls. Above 10,000 objects each client lists once and s3fs is left out (s3rver's LIST is
quadratic in the directory size, and s3fs sends a HEAD per entry)."""

import time

from ..measure import ls_dir
from ..results import Growth
from ..stats import fmt_list, max_of, median
from .listing import list_baseline


def run(b) -> None:
    c = b.cfg
    for n in c.list_sizes:
        g = b.res.growth.setdefault(n, Growth(n))
        ls = b.res.get("ls")
        if n == c.list_files and ls is not None:  # measured by the listing workload
            g.cells, g.pages, g.runs = dict(ls.cells), getattr(b, "list_pages", None), c.runs
            continue
        runs = 1 if n > c.list_large else c.runs
        g.runs = runs
        row = b.res.row(
            f"ls{n}",
            "s",
            f"ls -l of {n} objects, fresh mount — server: paginated ListObjectsV2, Delimiter='/' (boto3)",
            f"ls -l {n}, fresh mount",
        )
        req = b.res.req(f"ls{n}", f"ls -l of {n} objects, fresh mount")
        t0 = time.monotonic()
        try:
            b.s3.seed(f"list{n}", n, 128)
        except Exception as e:  # noqa: BLE001 - this size is skipped
            b.fail(f"seeding {n} list objects failed: {e}")
            continue
        b.note(f"seeded {n} objects under list{n}/ in {time.monotonic() - t0:.1f} s")
        lc, g.pages = list_baseline(b, f"list{n}", runs, req)
        b.note(f"boto3 LIST of {n}: {fmt_list(lc)} s")
        row.cells["curl"] = median(lc)
        mounts = [m for m in b.mounts if m is not b.s3fs or n <= c.list_large]
        if n > c.list_large:
            row.cells["s3fs"] = req.cells["s3fs"] = "not run"
        vals, rr = ({m.key: [] for m in mounts} for _ in range(2))
        for r, m in b.interleaved(runs, mounts):
            v = None
            with m.mounted(f"ls{n}-{r}") as ok:
                if ok:
                    mark = b.server.mark()
                    v = ls_dir(b, m.dir / f"list{n}", n)
                    if r == 1:
                        req.cells[m.key] = b.server.since(mark)
                    rr[m.key].append(m.hwm())
            vals[m.key].append(v)
        for m in mounts:
            b.note(f"{m.label} ls -l of {n}: {fmt_list(vals[m.key])} s (RSS {fmt_list(rr[m.key])})")
            row.cells[m.key] = median(vals[m.key])
            if m is not b.s3fs:
                row.rss[m.key] = max_of(rr[m.key])
        b.vs_base(row, vals)
        g.cells = dict(row.cells)
