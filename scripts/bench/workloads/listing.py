"""3. ls -l of BENCH_LIST_FILES objects, half of them carrying s3fs's headers (x-amz-meta-mode,
-uid, -gid, -mtime), three ways, each against the bare paginated LIST (boto3, Delimiter='/') and
s3fs (a HEAD per entry):
(a) a fresh mount, default settings (s3mount completes every entry whose headers are unknown,
    stat-ahead), then a second ls in the same mount within the TTL;
(b) a second ls after the metadata TTL expired: s3mount --metadata-ttl 2, s3fs -o
    stat_cache_expire=2, a first ls, then 3.5 s of sleep;
(c) a fresh mount with s3mount --listing-attributes (attributes from the LIST alone; s3fs has
    no such mode: not run).
The clients run interleaved, run by run. The mode and mtime that `ls -l --time-style=+%s` shows
for a sample of 20 names (10 with headers) are compared with the stored ones."""

import stat
import time

from ..measure import ls_attrs, ls_dir
from ..stats import fmt_list, fmt_ratio, max_of, median, ratio

TTL = 2  # seconds: s3mount --metadata-ttl, s3fs stat_cache_expire
SLEEP = TTL + 1.5
PERMS = (0o640, 0o600, 0o755, 0o444)
MTIME0 = 1_500_000_000
TARGETS = {"ls": ("s3fs", 0.7), "lsttl": ("curl", 1.5), "lsla": ("curl", 1.5)}


def s3fs_headers(i: int) -> dict[str, str] | None:
    """Object i's s3fs headers: every even object carries mode, uid, gid and mtime."""
    if i % 2:
        return None
    return {
        "mode": str(stat.S_IFREG | PERMS[(i // 2) % len(PERMS)]),
        "uid": "0",
        "gid": "0",
        "mtime": str(MTIME0 + i),
    }


def sample(n: int) -> list[int]:
    """20 indices spread over the directory, alternately even (headers) and odd (none)."""
    step = max(n // 20, 2)
    return sorted({min((k * step) // 2 * 2 + k % 2, n - 1) for k in range(20)})


def expected(b) -> dict[str, tuple[str | None, int]]:
    """name -> (mode string or None when not stored, mtime) for the sample."""
    want = {}
    for i in sample(b.cfg.list_files):
        h = s3fs_headers(i)
        name = f"f{i:06d}"
        if h:
            want[name] = (stat.filemode(int(h["mode"])), int(h["mtime"]))
        else:
            want[name] = (None, b.s3.mtime(f"list/{name}"))
    return want


def check(b, who: str, strict: bool) -> str:
    """Compare the last ls output with the stored attributes; a mismatch fails when strict (not
    for --listing-attributes, nor for the baseline binary, which may predate exact attributes)."""
    want = getattr(b, "list_expect", {})
    got = ls_attrs(b)
    hdr_ok = sum(1 for k, (m, t) in want.items() if m and got.get(k) == (m, t))
    plain_ok = sum(1 for k, (m, t) in want.items() if not m and k in got and got[k][1] == t)
    n_hdr = sum(1 for m, _ in want.values() if m)
    bad = [f"{k}: shown {got.get(k)}, stored {v}" for k, v in want.items() if v[0] and got.get(k) != v]
    bad += [
        f"{k}: mtime {got.get(k)}, stored {v[1]}"
        for k, v in want.items()
        if not v[0] and got.get(k, ("", 0))[1] != v[1]
    ]
    line = (
        f"{hdr_ok}/{n_hdr} with headers show the stored mode and mtime, "
        f"{plain_ok}/{len(want) - n_hdr} without show Last-Modified"
    )
    if bad and strict:
        b.fail(f"{who}: wrong attributes in ls -l: {'; '.join(bad[:3])}")
        b.res.warnings.append(f"{who}: ls -l showed other attributes than stored for {len(bad)} of {len(want)} sampled")
    return line


def list_baseline(b, prefix: str, runs: int, req=None) -> tuple[list, int | None]:
    """Seconds of the bare LIST per run, and the page count."""
    secs, pages = [], None
    for r in range(1, runs + 1):
        s, p = list_once(b, prefix, req if r == 1 else None)
        if s is not None:
            secs.append(s)
            pages = p
    return secs, pages


def list_once(b, prefix: str, req=None) -> tuple[float | None, int | None]:
    mark = b.server.mark()
    try:
        s, pages, _ = b.s3.list_timed(prefix)
    except Exception as e:  # noqa: BLE001 - any failure is one n/a cell
        b.fail(f"boto3 LIST of {prefix} failed: {e}")
        return None, None
    if req is not None:
        req.cells["curl"] = b.server.since(mark)
    return s, pages


def run(b) -> None:
    c = b.cfg
    n = c.list_files
    half = f"{n} objects, half with s3fs headers"
    rows = {
        "ls": b.res.row(
            "ls",
            "s",
            f"ls -l of {half}, (a) fresh mount, default settings (s3mount: exact attributes) — "
            "server: paginated ListObjectsV2, Delimiter='/' (boto3); target s3mount ≤ 0.7× s3fs",
            f"ls -l {n}, (a) fresh mount",
        ),
        "lsw": b.res.row(
            "lsw",
            "s",
            f"ls -l of {n} objects, 2nd time in the same mount (within the metadata TTL) — server: as above",
            f"ls -l {n}, 2nd time within TTL",
        ),
        "lsttl": b.res.row(
            "lsttl",
            "s",
            f"ls -l of {n} objects, (b) 2nd time after the TTL expired (s3mount --metadata-ttl {TTL}, "
            f"s3fs -o stat_cache_expire={TTL}; {SLEEP} s after the 1st) — server: as above; target ≤ 1.5× LIST",
            f"ls -l {n}, (b) after TTL",
        ),
        "lsla": b.res.row(
            "lsla",
            "s",
            f"ls -l of {n} objects, (c) fresh mount, s3mount --listing-attributes (s3fs: no such mode) "
            "— server: as above; target ≤ 1.5× LIST",
            f"ls -l {n}, (c) --listing-attributes",
        ),
    }
    reqs = {
        "ls": b.res.req("ls", f"ls -l of {n} objects, (a) fresh mount"),
        "lsw": b.res.req("lsw", f"ls -l of {n} objects, 2nd time within the TTL"),
        "lsttl": b.res.req("lsttl", f"ls -l of {n} objects, (b) after the TTL expired (the 2nd ls only)"),
        "lsla": b.res.req("lsla", f"ls -l of {n} objects, (c) --listing-attributes"),
    }
    if not b.list_ok:
        return
    vals = {rid: {m.key: [] for m in b.mounts} for rid in rows}
    rss = {m.key: [] for m in b.mounts}
    lc, pages = [], None
    for r in range(1, c.runs + 1):
        s, p = list_once(b, "list", reqs["ls"] if r == 1 else None)
        lc.append(s)
        pages = p or pages
        for m in b.mounts:
            _fresh(b, m, r, vals, reqs, rss)
        for m in b.mounts:
            _after_ttl(b, m, r, vals, reqs, rss)
        for m in b.mounts:
            _listing_attrs(b, m, r, vals, reqs, rss)
    b.note(f"boto3 LIST: {fmt_list(lc)} s ({pages} pages)")
    for rid, row in rows.items():
        row.cells["curl"] = median(lc)
        reqs[rid].cells["curl"] = reqs["ls"].cells.get("curl", "n/a")
        for m in b.mounts:
            if m is b.s3fs and rid == "lsla":
                row.cells["s3fs"] = reqs[rid].cells["s3fs"] = "not run"
                continue
            if m is not b.s3fs and not vals[rid][m.key]:
                row.cells[m.key] = "not run"
                continue
            row.cells[m.key] = median(vals[rid][m.key])
            b.note(f"{row.short}, {m.label}: {fmt_list(vals[rid][m.key])} s")
            if m is not b.s3fs:
                row.rss[m.key] = max_of(rss[m.key])
        b.vs_base(row, {k: v for k, v in vals[rid].items()})
    b.list_pages = pages
    for rid, (peer, target) in TARGETS.items():
        got = ratio(rows[rid].cells.get("s3m"), rows[rid].cells.get(peer))
        verdict = "n/a" if got is None else ("met" if got <= target else "NOT met")
        who = "s3fs" if peer == "s3fs" else "the bare LIST"
        b.res.facts[f"target, {rows[rid].short}"] = f"s3mount/{who} {fmt_ratio(got)} (target ≤ {target}): {verdict}"


def _ls(b, m, path, want, req, r):
    mark = b.server.mark()
    v = ls_dir(b, path, want)
    if r == 1 and req is not None:
        req.cells[m.key] = b.server.since(mark)
    return v


def _fresh(b, m, r, vals, reqs, rss) -> None:
    n = b.cfg.list_files
    a = w = None
    with m.mounted(f"ls-{r}") as ok:
        if ok:
            a = _ls(b, m, m.dir / "list", n, reqs["ls"], r)
            if a is not None and r == 1:
                b.res.facts[f"attributes check, (a) {m.label}"] = check(b, f"(a) {m.label}", m.key != "base")
            w = _ls(b, m, m.dir / "list", n, reqs["lsw"], r)
            rss[m.key].append(m.hwm())
    vals["ls"][m.key].append(a)
    vals["lsw"][m.key].append(w)


def _after_ttl(b, m, r, vals, reqs, rss) -> None:
    n = b.cfg.list_files
    opts = ("-o", f"stat_cache_expire={TTL}") if m is b.s3fs else ("--metadata-ttl", str(TTL))
    v = None
    with m.mounted(f"lsttl-{r}", *opts) as ok:
        if ok and ls_dir(b, m.dir / "list", n) is not None:
            time.sleep(SLEEP)
            v = _ls(b, m, m.dir / "list", n, reqs["lsttl"], r)
            if v is not None and r == 1:
                b.res.facts[f"attributes check, (b) {m.label}"] = check(b, f"(b) {m.label}", m.key != "base")
            rss[m.key].append(m.hwm())
    vals["lsttl"][m.key].append(v)


def _listing_attrs(b, m, r, vals, reqs, rss) -> None:
    if m is b.s3fs:
        return
    if not m.supports("--listing-attributes"):
        if r == 1:
            b.note(f"{m.label}: no --listing-attributes flag, (c) not run")
        return
    v = None
    with m.mounted(f"lsla-{r}", "--listing-attributes") as ok:
        if ok:
            v = _ls(b, m, m.dir / "list", b.cfg.list_files, reqs["lsla"], r)
            if v is not None and r == 1:
                # Informational: the LIST holds no mode and no stored mtime.
                b.res.facts[f"attributes check, (c) {m.label}"] = check(b, f"(c) {m.label}", False)
            rss[m.key].append(m.hwm())
    vals["lsla"][m.key].append(v)
