"""8. 16 and 4 large files read at once by concurrent dd on a fresh mount (aggregate MiB/s,
peak RSS), against parallel curl GETs; a pairs row for 4 files; one checked 16-file read."""

import os
import subprocess

from ..measure import curl_specs, par_read, split_ranges
from ..stats import fmt_list, fmt_num, max_of, median


def write_random(path, size: int) -> None:
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = min(left, 1 << 24)
            f.write(os.urandom(chunk))
            left -= chunk


def run(b) -> None:
    c = b.cfg
    mib, size = c.multi_mib, c.multi_bytes
    res = b.res
    r16 = res.row(
        "multi16",
        "MiB/s",
        f"16 files of {mib} MiB read at once (16 dd), cold, default settings — curl: 16 parallel GETs (aggregate)",
        f"16 files x {mib} MiB at once",
    )
    r4 = res.row(
        "multi4",
        "MiB/s",
        f"4 files of {mib} MiB read at once (4 dd), cold, default settings — curl: "
        "8 parallel ranged GETs, 2 per file (aggregate)",
        f"4 files x {mib} MiB at once",
    )
    r4p = res.row(
        "multi4pair",
        "MiB/s",
        f"4 files of {mib} MiB read at once, in pairs: curl 8 ranged GETs over "
        "the 4, then s3mount's 4 dd at once (ratio: median of the per-pair ratios)",
        f"4 files x {mib} MiB at once, pairs",
    )
    req16 = res.req("multi16", f"16 files of {mib} MiB read at once, one run")
    req4 = res.req("multi4", f"4 files of {mib} MiB read at once, one run")
    keys = [f"multi/o{i:02d}" for i in range(16)]
    local = [b.work / f"multi-{i}.bin" for i in range(16)]
    try:
        for p in local:
            write_random(p, size)
        b.s3.upload_many([(str(p), k) for p, k in zip(local, keys, strict=True)])
    except Exception as e:  # noqa: BLE001 - the workload is skipped
        b.fail(f"uploading the 16 objects failed: {e}")
        return
    try:
        _measure(b, keys, local, r16, r4, r4p, req16, req4)
    finally:
        for p in local:
            p.unlink(missing_ok=True)


def _measure(b, keys, local, r16, r4, r4p, req16, req4) -> None:
    c = b.cfg
    size = c.multi_bytes
    urls = [b.s3.presign(k) for k in keys]
    specs16 = [(None, u) for u in urls]
    specs4 = [(rng, u) for u in urls[:4] for rng in split_ranges(size, 2)]
    c16, c4 = [], []
    for r in range(1, c.runs + 1):
        b.drop_caches()
        mark = b.server.mark()
        c16.append(curl_specs(b, 16 * size, specs16))
        if r == 1:
            req16.cells["curl"] = b.server.since(mark)
        b.drop_caches()
        c4.append(curl_specs(b, 4 * size, specs4))
    b.note(f"curl 16 GETs: {fmt_list(c16)}; curl 8 ranged GETs over 4 files: {fmt_list(c4)} MiB/s")
    r16.cells["curl"], r4.cells["curl"] = median(c16), median(c4)

    got = {k: ({m.key: [] for m in b.mounts}, {m.key: [] for m in b.mounts}) for k in (16, 4)}
    for r, m in b.interleaved(c.runs):
        for k, row_req in ((16, req16), (4, req4)):
            v = rss = None
            with m.mounted(f"multi{k}-{r}") as ok:
                if ok:
                    b.drop_caches()
                    mark = b.server.mark()
                    v = par_read(b, size, [m.dir / key for key in keys[:k]])
                    if r == 1:
                        row_req.cells[m.key] = b.server.since(mark)
                    rss = m.hwm()
            got[k][0][m.key].append(v)
            got[k][1][m.key].append(rss)
    for m in b.mounts:
        v16, m16 = got[16][0][m.key], got[16][1][m.key]
        v4, m4 = got[4][0][m.key], got[4][1][m.key]
        b.note(
            f"{m.label}: 16 files {fmt_list(v16)} MiB/s (peak RSS MiB {fmt_list(m16)}); "
            f"4 files {fmt_list(v4)} MiB/s (peak RSS MiB {fmt_list(m4)})"
        )
        r16.cells[m.key], r4.cells[m.key] = median(v16), median(v4)
        if m is b.s3fs:
            b.res.facts["s3fs peak RSS, 16 or 4 files read at once"] = f"{fmt_num(max_of(m16 + m4))} MiB"
        else:
            r16.rss[m.key], r4.rss[m.key] = max_of(m16), max_of(m4)
    b.vs_base(r16, got[16][0])
    b.vs_base(r4, got[4][0])

    def pair_read(v, r):
        with v.mounted(f"multi4-pair-{r}") as ok:
            if not ok:
                return None
            b.drop_caches()
            return par_read(b, size, [v.dir / key for key in keys[:4]])

    b.pairs(r4p, lambda: curl_specs(b, 4 * size, specs4), pair_read)

    # Data check: 16 cold reads at once through one fresh mount, each compared with its source.
    for v in b.variants:
        with v.mounted("multi-check") as ok:
            if not ok:
                continue
            b.drop_caches()
            procs = [subprocess.Popen(["cmp", "-s", str(v.dir / k), str(p)]) for k, p in zip(keys, local, strict=True)]
            bad = sum(1 for p in procs if p.wait() != 0)
            if bad:
                b.fail(f"{v.label} returned different bytes for {bad} of the 16 files read at once")
                b.res.warnings.append(f"{v.label} returned different bytes for {bad} of 16 files read at once")
            else:
                b.note(f"{v.label} data check, 16 files read at once: all identical")
