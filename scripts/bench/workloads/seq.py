"""1. Sequential read of the big object with dd: cold and warm, at several cache sizes, plus a
pairs row; peak RSS after the read; one byte-for-byte check; CPU seconds of one cold read."""

from ..measure import curl8, curl_get, read_file, same_bytes
from ..stats import fmt_list, fmt_num, max_of, median
from ..system import cpu_secs


def cpu_line(b, who, pid, run) -> tuple[str, float | None]:
    """'WHO x s (w s/GiB) + s3rver y s CPU for z MiB/s' around run(), one read of the big
    object; returns (line, run's value). The per-GiB figure is utime+stime of WHO's process."""
    srv = b.server.pid
    c0, k0 = cpu_secs(pid) if pid else None, cpu_secs(srv)
    v = run()
    c1, k1 = cpu_secs(pid) if pid else None, cpu_secs(srv)
    gib = b.cfg.size_bytes / (1 << 30)
    parts = [] if pid is None else [f"{who} {_delta(c0, c1)} s ({_per_gib(c0, c1, gib)} s/GiB)"]
    parts.append(f"s3rver {_delta(k0, k1)} s")
    return f"{' + '.join(parts)} CPU for {v:.1f} MiB/s" if v else f"{' + '.join(parts)} CPU (read failed)", v


def _delta(a, b) -> str:
    return "n/a" if a is None or b is None else f"{b - a:.1f}"


def _per_gib(a, b, gib) -> str:
    return "n/a" if a is None or b is None or gib <= 0 else f"{(b - a) / gib:.2f}"


def run(b) -> None:
    c = b.cfg
    size, big = c.size_bytes, c.big_cache_mib
    res = b.res
    seq1 = res.row(
        "seq1",
        "MiB/s",
        f"seq read {c.size_mib} MiB, cold, default settings — curl: 1 GET",
        "seq read cold (curl: 1 GET)",
    )
    seq8 = res.row(
        "seq8",
        "MiB/s",
        f"seq read {c.size_mib} MiB, cold, default settings — curl: 8 parallel ranged GETs",
        "seq read cold (curl: 8 ranged GETs)",
    )
    seq64 = res.row(
        "seq64",
        "MiB/s",
        "seq read cold, s3mount --cache-size 64 — curl: 8 ranged GETs",
        "seq read cold, --cache-size 64",
    )
    seqbig = res.row(
        "seqbig",
        "MiB/s",
        f"seq read cold, s3mount --cache-size {big} — curl: 8 ranged GETs",
        f"seq read cold, --cache-size {big}",
    )
    seqpair = res.row(
        "seqpair",
        "MiB/s",
        f"seq read {c.size_mib} MiB, cold, default settings, in pairs: curl 8 ranged GETs, "
        "then s3mount at once (ratio: median of the per-pair ratios)",
        "seq read cold, pairs",
    )
    warm = res.row(
        "warm",
        "MiB/s",
        "seq read warm (2nd read, same mount), default settings (128 MiB cache) "
        "— curl: 8 ranged GETs, server cache warm",
        "seq read warm",
    )
    warmbig = res.row(
        "warmbig",
        "MiB/s",
        f"seq read warm (2nd read, same mount), s3mount --cache-size {big} — curl: as above",
        f"seq read warm, --cache-size {big}",
    )
    req = res.req("seq", f"seq read {c.size_mib} MiB, cold, one read (default settings)")
    if not b.big_ok:
        return

    v1, v8, v8w = [], [], []
    for _ in range(c.runs):
        b.drop_caches()
        v1.append(curl_get(b, b.big_url, size))
        b.drop_caches()
        v8.append(curl8(b))
        v8w.append(curl8(b))
    b.drop_caches()
    b.res.facts["CPU, curl 8 ranged GETs (one cold read)"] = cpu_line(b, "curl", None, lambda: curl8(b))[0]
    b.note(f"curl 1 GET: {fmt_list(v1)}; curl 8-way cold: {fmt_list(v8)}; warm server: {fmt_list(v8w)} MiB/s")
    seq1.cells["curl"] = median(v1)
    for r in (seq8, seq64, seqbig):
        r.cells["curl"] = median(v8)
    for r in (warm, warmbig):
        r.cells["curl"] = median(v8w)

    # Every client in turn, run by run (s3fs, s3mount, baseline, s3fs, ...): a fresh mount per
    # run, a cold read then a second read in the same mount.
    fc, fw, fr = [], [], []
    per = {v.key: {k: [] for k in ("sc", "sw", "rc", "rw")} for v in b.variants}
    for r in range(1, c.runs + 1):
        _s3fs_run(b, r, fc, fw, fr, req)
        for v in b.variants:
            _default_run(b, v, r, per[v.key])
    b.note(f"s3fs cold: {fmt_list(fc)}; warm: {fmt_list(fw)} MiB/s; peak RSS MiB: {fmt_list(fr)}")
    b.res.facts["s3fs peak RSS, sequential reads"] = f"{fmt_num(max_of(fr))} MiB"
    for row in (seq1, seq8, seq64, seqbig):
        row.cells["s3fs"] = median(fc)
    for row in (warm, warmbig):
        row.cells["s3fs"] = median(fw)
    for v in b.variants:
        d = per[v.key]
        _check(b, v, req)
        b.note(
            f"{v.label} default cold: {fmt_list(d['sc'])} (RSS {fmt_list(d['rc'])}); warm: {fmt_list(d['sw'])} "
            f"(RSS {fmt_list(d['rw'])})"
        )
        for row in (seq1, seq8):
            row.cells[v.key], row.rss[v.key] = median(d["sc"]), max_of(d["rc"])
        warm.cells[v.key], warm.rss[v.key] = median(d["sw"]), max_of(d["rw"])
    for row, k in ((seq1, "sc"), (seq8, "sc"), (warm, "sw")):
        b.vs_base(row, {v.key: per[v.key][k] for v in b.variants})

    _small_cache(b, seq64)
    _big_cache(b, seqbig, warmbig)

    def pair_read(v, r):
        with v.mounted(f"seq-pair-{r}") as ok:
            if not ok:
                return None
            b.drop_caches()
            return read_file(b, v.dir / "big/obj", size)

    b.pairs(seqpair, lambda: curl8(b), pair_read)


def _s3fs_run(b, r, fc, fw, fr, req) -> None:
    fs, size = b.s3fs, b.cfg.size_bytes
    with fs.mounted(f"seq-{r}") as ok:
        if not ok:
            return
        path = fs.dir / "big/obj"
        b.drop_caches()
        fc.append(read_file(b, path, size))
        b.drop_caches()
        fw.append(read_file(b, path, size))
        fr.append(fs.hwm())
        if r == 1:
            b.drop_caches()
            m = b.server.mark()
            line, _ = cpu_line(b, "s3fs", fs.pid, lambda p=path: read_file(b, p, size))
            b.res.facts["CPU, s3fs (one cold read)"] = line
            req.cells["s3fs"] = b.server.since(m)
            if not same_bytes(path, b.big_local):
                b.fail("s3fs returned different bytes for big/obj")


def _default_run(b, v, r, d) -> None:
    """Default settings: cold then warm in the same mount (None for a run that failed)."""
    size = b.cfg.size_bytes
    vals = {k: None for k in d}
    with v.mounted(f"seq-default-{r}") as ok:
        if ok:
            b.drop_caches()
            vals["sc"] = read_file(b, v.dir / "big/obj", size)
            vals["rc"] = v.hwm()
            b.drop_caches()
            vals["sw"] = read_file(b, v.dir / "big/obj", size)
            vals["rw"] = v.hwm()
    for k, x in vals.items():
        d[k].append(x)


def _check(b, v, req) -> None:
    """One checked cold read: CPU seconds, requests, bytes compared."""
    size = b.cfg.size_bytes
    with v.mounted("seq-check") as ok:
        if ok:
            b.drop_caches()
            m = b.server.mark()
            path = v.dir / "big/obj"
            line, _ = cpu_line(b, v.label, v.pid, lambda: read_file(b, path, size))
            b.res.facts[f"CPU, {v.label} (one cold read)"] = line
            req.cells[v.key] = b.server.since(m)
            b.drop_caches()
            if same_bytes(path, b.big_local):
                b.note(f"{v.label} data check: identical")
            else:
                b.fail(f"{v.label} returned different bytes for big/obj")
                b.res.warnings.append(f"{v.label} returned different bytes than were uploaded (big/obj)")


def _small_cache(b, seq64) -> None:
    size = b.cfg.size_bytes
    sc = {v.key: [] for v in b.variants}
    rc = {v.key: [] for v in b.variants}
    for r, v in b.interleaved(b.cfg.runs, b.variants):
        x = rss = None
        with v.mounted(f"seq-cache64-{r}", "--cache-size", "64") as ok:
            if ok:
                b.drop_caches()
                x = read_file(b, v.dir / "big/obj", size)
                rss = v.hwm()
        sc[v.key].append(x)
        rc[v.key].append(rss)
    for v in b.variants:
        b.note(f"{v.label} --cache-size 64 cold: {fmt_list(sc[v.key])} MiB/s (RSS {fmt_list(rc[v.key])})")
        seq64.cells[v.key], seq64.rss[v.key] = median(sc[v.key]), max_of(rc[v.key])
    b.vs_base(seq64, sc)


def _big_cache(b, seqbig, warmbig) -> None:
    c = b.cfg
    size, big = c.size_bytes, c.big_cache_mib
    d = {v.key: {k: [] for k in ("sc", "sw", "rc", "rw")} for v in b.variants}
    wreq = {v.key: "n/a" for v in b.variants}
    for r, v in b.interleaved(c.runs, b.variants):
        vals = dict.fromkeys(("sc", "sw", "rc", "rw"))
        with v.mounted(f"seq-cachebig-{r}", "--cache-size", str(big)) as ok:
            if ok:
                b.drop_caches()
                vals["sc"] = read_file(b, v.dir / "big/obj", size)
                vals["rc"] = v.hwm()
                b.drop_caches()
                m = b.server.mark()
                vals["sw"] = read_file(b, v.dir / "big/obj", size)
                if r == 1:
                    wreq[v.key] = b.server.since(m)
                vals["rw"] = v.hwm()
        for k, x in vals.items():
            d[v.key][k].append(x)
    warmreq = b.res.req("warmreq", f"seq read warm, s3mount --cache-size {big} (2nd read)")
    warmreq.cells["s3fs"] = "—"
    for v in b.variants:
        e = d[v.key]
        b.note(
            f"{v.label} --cache-size {big} cold: {fmt_list(e['sc'])} (RSS {fmt_list(e['rc'])}); warm: "
            f"{fmt_list(e['sw'])} (RSS {fmt_list(e['rw'])}); requests of the warm read: {wreq[v.key]}"
        )
        seqbig.cells[v.key], seqbig.rss[v.key] = median(e["sc"]), max_of(e["rc"])
        warmbig.cells[v.key], warmbig.rss[v.key] = median(e["sw"]), max_of(e["rw"])
        warmreq.cells[v.key] = wreq[v.key]
    b.vs_base(seqbig, {k: e["sc"] for k, e in d.items()})
    b.vs_base(warmbig, {k: e["sw"] for k, e in d.items()})
