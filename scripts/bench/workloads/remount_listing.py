"""11. ls -l after a remount with the metadata cache (s3mount --cache DIR, under
BENCH_WORK_DIR): ls -l of BENCH_LIST_FILES unchanged objects (half with s3fs's headers) on a
fresh mount with an empty DIR (fills DIR/meta), then again after an unmount and a remount on the
same DIR, the page cache dropped. Target: the remount's ls -l ≤ 1.5x the bare paginated LIST
(boto3, measured in the same minute, once per run: the ratio is the median of the per-run
ratios) with 0 HEADs and no GET per entry (s3mount completes files ≤ 64 KiB by a GET; the
path lookups may GET: under 1% of the entries), peak RSS < 256 MiB. The remount's attributes
are checked as in the listing workload. s3fs keeps no metadata across a remount: not run."""

import shutil

from ..stats import fmt_list, max_of, median
from ..targets import per_run_ratios, ratio_part, rss_part, share_part, target_line, zero_part
from .diskcache import FLAG, free_line
from .listing import _ls, check, list_once


def run(b) -> None:
    c = b.cfg
    n = c.list_files
    first = b.res.row(
        "rlfirst",
        "s",
        f"ls -l of {n} objects, fresh mount, empty --cache DIR (fills its metadata) — server: paginated "
        "ListObjectsV2, Delimiter='/' (boto3)",
        f"ls -l {n}, fresh --cache",
    )
    again = b.res.row(
        "rlre",
        "s",
        f"ls -l of {n} unchanged objects after a remount on the same --cache DIR — server: as above, in the "
        "same minute (ratio: median of the per-run ratios); target ≤ 1.5× LIST, 0 HEAD",
        f"ls -l {n}, after remount, --cache",
    )
    reqs = {
        "first": b.res.req("rlfirst", f"ls -l of {n} objects, fresh mount, empty --cache DIR"),
        "re": b.res.req("rlre", f"ls -l of {n} objects after a remount on the same --cache DIR"),
    }
    for r in (first, again, *reqs.values()):
        r.cells["s3fs"] = "not run"
    if not b.list_ok:
        return
    b.res.facts["disk space, remount listing workload"] = free_line(b.work)
    variants = [v for v in b.variants if v.supports(FLAG)]
    keys = ("first", "re", "lc", "heads", "gets", "rss")
    per = {v.key: {k: [] for k in keys} for v in b.variants}
    lc = []
    for r in range(1, c.runs + 1):
        for v in variants:
            s, _ = list_once(b, "list", reqs["re"] if r == 1 and not lc else None)
            lc.append(s)
            per[v.key]["lc"].append(s)
            _one_run(b, v, r, per[v.key], reqs)
    b.note(f"remount listing, boto3 LIST: {fmt_list(lc)} s")
    reqs["first"].cells["curl"] = reqs["re"].cells.get("curl", "n/a")
    for row in (first, again):
        row.cells["curl"] = median(lc)
    for v in b.variants:
        if v not in variants:
            first.cells[v.key] = again.cells[v.key] = "not run"
            continue
        d = per[v.key]
        b.note(
            f"{v.label} --cache: fresh ls -l {fmt_list(d['first'])} s, after remount {fmt_list(d['re'])} s "
            f"(HEADs {fmt_list(d['heads'])}, GETs {fmt_list(d['gets'])}); peak RSS {fmt_list(d['rss'])} MiB"
        )
        first.cells[v.key], again.cells[v.key] = median(d["first"]), median(d["re"])
        first.rss[v.key] = again.rss[v.key] = max_of(d["rss"])
        ratios = per_run_ratios(d["re"], d["lc"])
        again.pair[v.key] = median(ratios)
        b.res.facts[f"target, ls -l after a remount ({v.label})"] = target_line(
            [
                ratio_part("remount ls -l/LIST", ratios, 1.5, False),
                zero_part("HEADs", d["heads"]),
                share_part("GETs (the path lookups; none per entry)", d["gets"], b.cfg.list_files, 0.01),
                rss_part(d["rss"]),
            ]
        )
    b.vs_base(again, {k: e["re"] for k, e in per.items() if e["re"]})


def _one_run(b, v, r, d, reqs) -> None:
    n = b.cfg.list_files
    cache = b.work / f"rlcache-{v.key}"
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir()
    first = again = heads = gets = None
    rss = []
    with v.mounted(f"rl-first-{r}", "--cache", str(cache)) as ok:
        if ok:
            first = _ls(b, v, v.dir / "list", n, reqs["first"], r)
            rss.append(v.hwm())
    with v.mounted(f"rl-remount-{r}", "--cache", str(cache)) as ok:
        if ok:
            b.drop_caches()
            m = b.server.mark()
            again = _ls(b, v, v.dir / "list", n, reqs["re"], r)
            got = b.server.counts_since(m)
            heads, gets = got["HEAD"], got["GET"]
            if again is not None and r == 1:
                b.res.facts[f"attributes check, ls -l after a remount, {v.label}"] = check(
                    b, f"remount {v.label}", v.key != "base"
                )
            rss.append(v.hwm())
    shutil.rmtree(cache, ignore_errors=True)
    for k, x in (("first", first), ("re", again), ("heads", heads), ("gets", gets), ("rss", max_of(rss))):
        d[k].append(x)
