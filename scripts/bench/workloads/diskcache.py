"""10. The disk cache (s3mount --cache DIR, under BENCH_WORK_DIR): the big object read cold
into an empty cache, then re-read with dd after a remount on the same DIR (from disk: target
≥ 3x the cold read with 0 GETs to the source); fio random 256 KiB reads after the remount
(target ≥ 5x fio on a fresh mount with an empty cache); peak RSS of every step (target
< 256 MiB). Each fio run is one pass over the object, every block read once in random order:
a time-based run would re-read, from the cache it fills, the blocks its first pass fetched.
The cold read and the re-read of a run share their minute (ratios: median of the per-run
ratios). Between them the cache's block files are read directly (cat, 8 at a time, cold page
cache): the disk's own ceiling for the re-read, which says whether ≥ 3x is within this disk's
reach. Each read starts after a `stat` of the file, so its GET count is the object's data, not
the lookup of its name (the remount_listing workload measures lookups). s3fs is not run (its
use_cache is another design); the curl column is the server's ceiling (8 ranged GETs; random
ranged GETs on one connection)."""

import os
import shutil

from ..measure import curl8, fio_read, read_file, read_tree, same_bytes
from ..mounts import cached_blocks
from ..stats import fmt_list, fmt_ratio, max_of, median
from ..targets import per_run_ratios, ratio_part, rss_part, target_line, zero_part

FLAG = "--max-cache-size"  # names the disk cache in --help (--cache alone matches --cache-size)
GIB = 1 << 30
BLOCK = 256 << 10  # s3mount's disk cache block


def free_line(path) -> str:
    """Free space under path, and the disk cache's pause threshold (5% or 2 GiB, the smaller)."""
    st = os.statvfs(path)
    free, total = st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize
    pause = min(total // 20, 2 * GIB)
    return (
        f"{free / GIB:.1f} GiB free of {total / GIB:.0f} GiB under {path} "
        f"(the cache pauses below {pause / GIB:.1f} GiB)"
    )


def _fresh_dir(b, name: str):
    d = b.work / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir()
    return d


def _rows(b):
    c = b.cfg
    res = b.res
    return {
        "cold": res.row(
            "dccold",
            "MiB/s",
            f"seq read {c.size_mib} MiB, cold, s3mount --cache DIR (empty) — curl: 8 ranged GETs",
            "seq read cold, --cache (empty)",
        ),
        "re": res.row(
            "dcre",
            "MiB/s",
            f"seq re-read {c.size_mib} MiB after a remount, from the --cache DIR — curl: 8 ranged GETs, cold; "
            "target ≥ 3× the cold read, 0 GET",
            "seq re-read after remount, --cache",
        ),
        "ceil": res.row(
            "dcceil",
            "MiB/s",
            "the --cache DIR's block files read directly (cat, 8 at a time, cold page cache): "
            "the disk's ceiling for the re-read",
            "disk ceiling: block files, cat",
        ),
        "fc": res.row(
            "dcfioc",
            "MiB/s",
            "fio randread 256 KiB, one pass, fresh mount, empty --cache DIR — server: ranged GETs on one connection",
            "fio randread cold, --cache (empty)",
        ),
        "fw": res.row(
            "dcfiow",
            "MiB/s",
            "fio randread 256 KiB, one pass after a remount, from the --cache DIR — server: as above; target ≥ 5× cold",
            "fio randread after remount, --cache",
        ),
    }


def run(b) -> None:
    c = b.cfg
    rows = _rows(b)
    reqs = {
        "cold": b.res.req("dccold", f"seq read {c.size_mib} MiB, cold, --cache DIR (empty)"),
        "re": b.res.req("dcre", f"seq re-read {c.size_mib} MiB after a remount, --cache DIR"),
        "fw": b.res.req("dcfiow", "fio randread 256 KiB, one pass after a remount, --cache DIR"),
        "fc": b.res.req("dcfioc", "fio randread 256 KiB, one pass, fresh mount, empty --cache DIR"),
    }
    for r in (*rows.values(), *reqs.values()):
        r.cells["s3fs"] = "not run"
    if not b.big_ok:
        return
    b.res.facts["disk space, disk cache workload"] = free_line(b.work)
    variants = [v for v in b.variants if v.supports(FLAG)]
    for v in b.variants:
        if v not in variants:
            for row in rows.values():
                row.cells[v.key] = "not run"
    pc, sc = [], []
    for _ in range(c.fio_runs):
        b.drop_caches()
        try:
            sc.append(b.s3.random_gets("big/obj", c.size_bytes, 256 << 10, c.fio_secs))
        except Exception as e:  # noqa: BLE001 - one n/a cell
            b.fail(f"ranged GET loop failed: {e}")
    keys = ("cold", "re", "ceil", "fw", "fc", "gre", "gfw", "rss", "held")
    per = {v.key: {k: [] for k in keys} for v in variants}
    for r, v in b.interleaved(c.runs, variants):
        b.drop_caches()
        pc.append(curl8(b))
        _one_run(b, v, r, per[v.key], reqs)
    b.note(f"disk cache, curl 8 ranged GETs cold: {fmt_list(pc)}; server ranged GET loop: {fmt_list(sc)} MiB/s")
    for rid in ("cold", "re"):
        rows[rid].cells["curl"] = median(pc)
    rows["ceil"].cells["curl"] = "n/a"
    for rid in ("fc", "fw"):
        rows[rid].cells["curl"] = median(sc)
    for rid, row in rows.items():
        b.vs_base(row, {k: e[rid] for k, e in per.items()})
    for v in variants:
        d = per[v.key]
        b.note(
            f"{v.label} --cache: cold {fmt_list(d['cold'])}, re-read after remount {fmt_list(d['re'])} MiB/s, "
            f"disk ceiling (cat of the block files) {fmt_list(d['ceil'])} MiB/s "
            f"(GETs {fmt_list(d['gre'])}); fio cold {fmt_list(d['fc'])}, after remount {fmt_list(d['fw'])} MiB/s "
            f"(GETs {fmt_list(d['gfw'])}); peak RSS {fmt_list(d['rss'])} MiB; blocks on disk at the remount "
            f"{fmt_list(d['held'])} of {-(-c.size_bytes // BLOCK)}"
        )
        for rid, row in rows.items():
            row.cells[v.key] = median(d[rid])
            row.rss[v.key] = max_of(d["rss"])
        rss = rss_part(d["rss"])
        b.res.facts[f"target, re-read after a remount ({v.label})"] = target_line(
            [
                ratio_part("re-read/cold", per_run_ratios(d["re"], d["cold"]), 3, True),
                zero_part("GETs of the re-read", d["gre"]),
                rss,
            ]
        )
        b.res.facts[f"disk ceiling of the re-read ({v.label})"] = (
            f"the block files read directly: {fmt_ratio(median(per_run_ratios(d['ceil'], d['cold'])))}× "
            f"the cold read; the re-read through the mount: "
            f"{fmt_ratio(median(per_run_ratios(d['re'], d['ceil'])))}× the disk's own speed for them"
        )
        b.res.facts[f"target, random reads after a remount ({v.label})"] = target_line(
            [
                ratio_part("warm/cold fio", per_run_ratios(d["fw"], d["fc"]), 5, True),
                zero_part("GETs of the warm fio", d["gfw"]),
                rss,
            ]
        )


def _one_run(b, v, r, d, reqs) -> None:
    """Cold read into an empty DIR; remount: re-read and fio; a fresh DIR: cold fio."""
    size = b.cfg.size_bytes
    path = v.dir / "big/obj"
    cache = _fresh_dir(b, f"dcache-{v.key}")
    vals = dict.fromkeys(("cold", "re", "ceil", "fw", "fc", "gre", "gfw", "held"))
    rss = []
    with v.mounted(f"dc-cold-{r}", "--cache", str(cache)) as ok:
        if ok:
            path.stat()
            b.drop_caches()
            m = b.server.mark()
            vals["cold"] = read_file(b, path, size)
            if r == 1:
                reqs["cold"].cells[v.key] = b.server.since(m)
            rss.append(v.hwm())
    b.drop_caches()
    vals["ceil"] = read_tree(b, cache / "blocks")
    with v.mounted(f"dc-remount-{r}", "--cache", str(cache)) as ok:
        if ok:
            vals["held"] = cached_blocks(v.log_path(f"dc-remount-{r}").read_text(errors="replace"))
            path.stat()
            b.drop_caches()
            m = b.server.mark()
            vals["re"] = read_file(b, path, size)
            vals["gre"] = b.server.counts_since(m)["GET"]
            if r == 1:
                reqs["re"].cells[v.key] = b.server.since(m)
                b.drop_caches()
                if not same_bytes(path, b.big_local):
                    b.fail(f"{v.label} --cache re-read returned different bytes for big/obj")
                    b.res.warnings.append(f"{v.label}: the re-read from the disk cache differed from the object")
            b.drop_caches()
            m = b.server.mark()
            vals["fw"] = fio_read(b, path, one_pass=True)
            vals["gfw"] = b.server.counts_since(m)["GET"]
            if r == 1:
                reqs["fw"].cells[v.key] = b.server.since(m)
            rss.append(v.hwm())
    cache2 = _fresh_dir(b, f"dcache-{v.key}-fio")
    with v.mounted(f"dc-fiocold-{r}", "--cache", str(cache2)) as ok:
        if ok:
            b.drop_caches()
            m = b.server.mark()
            vals["fc"] = fio_read(b, path, one_pass=True)
            if r == 1:
                reqs["fc"].cells[v.key] = b.server.since(m)
            rss.append(v.hwm())
    shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(cache2, ignore_errors=True)
    for k, x in vals.items():
        d[k].append(x)
    d["rss"].append(max_of(rss))
