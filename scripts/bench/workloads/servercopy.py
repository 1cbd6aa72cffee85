"""12. Copy inside the mount: `cp` of the big object to a new name in the same mount (s3mount
turns copy_file_range into a server-side CopyObject, so no object bytes cross the client)
against reading it out and writing it back through the mount (`cat MNT/big/obj > LOCAL;
cp LOCAL MNT/...`, LOCAL under BENCH_WORK_DIR) and against the server alone: one CopyObject
(boto3) for the first, curl GET to a local file then curl PUT of it (presigned) for the second.
s3fs runs both (it has no copy_file_range: cp reads and writes). Run 1 of every client is
checked byte for byte; the copies are deleted after each run. Targets: a copy inside the mount
sends no PUT of data (a COPY) and GETs under 1% of the object (the lookup may fetch a first
block), and beats the round trip (median of per-run ratios)."""

from ..measure import object_matches
from ..stats import fmt_list, max_of, median
from ..system import run_timed
from ..targets import per_run_ratios, ratio_part, rss_part, share_part, target_line, zero_part


def _rows(b):
    c = b.cfg
    return (
        b.res.row(
            "cp",
            "s",
            f"cp of the {c.size_mib} MiB object to a new name inside the mount (s3mount: copy_file_range → "
            "CopyObject) — server: one CopyObject (boto3)",
            "cp inside the mount",
        ),
        b.res.row(
            "cprt",
            "s",
            f"read out and write back {c.size_mib} MiB through the mount (cat to a local file, cp it back in) "
            "— curl: GET to a local file, then PUT of it (presigned URL)",
            "read out + write back",
        ),
    )


def _timed(b, cmd: list[str], what: str) -> float | None:
    t = run_timed(cmd, b.cfg.cmd_timeout)
    if not t.ok:
        b.fail(f"{what} failed: {t.err}")
    return t.elapsed


def _server(b, r) -> tuple[float | None, float | None]:
    """(seconds of one CopyObject, seconds of curl GET + PUT) for run r."""
    local = b.work / "cp-local.bin"
    try:
        cp = b.s3.copy_timed("big/obj", f"cp/srv-{r}")
    except Exception as e:  # noqa: BLE001 - one n/a cell
        b.fail(f"boto3 CopyObject failed: {e}")
        cp = None
    b.drop_caches()
    get, put = b.s3.presign("big/obj"), b.s3.presign(f"cp/curl-{r}", "put_object")
    rt = _timed(
        b,
        ["sh", "-c", 'curl -sf -o "$1" "$2" && curl -sf -T "$1" "$3" -o /dev/null', "sh", str(local), get, put],
        "curl GET + PUT",
    )
    if r == 1 and rt is not None and not object_matches(b, f"cp/curl-{r}", b.big_local):
        b.fail("the curl GET + PUT round trip did not store the same bytes")
    local.unlink(missing_ok=True)
    for k in (f"cp/srv-{r}", f"cp/curl-{r}"):
        b.s3.delete(k)
    return cp, rt


def _client(b, m, r, d, reqs) -> None:
    """cp inside the mount, then the round trip through a local file, on one fresh mount."""
    local = b.work / "cp-local.bin"
    src, dst, back = m.dir / "big/obj", f"cp/{m.key}-{r}", f"cp/{m.key}-rt-{r}"
    vals = dict.fromkeys(("cp", "rt", "get", "put", "copy", "getb"))
    rss = None
    with m.mounted(f"cp-{r}") as ok:
        if ok:
            (m.dir / "cp").mkdir(exist_ok=True)
            b.drop_caches()
            mark = b.server.mark()
            vals["cp"] = _timed(b, ["cp", str(src), str(m.dir / dst)], f"{m.label} cp inside the mount")
            got = b.server.counts_since(mark)
            vals["get"], vals["put"], vals["copy"] = got["GET"], got["PUT bytes"], got["COPY"]
            # A whole-object GET counts as the whole object.
            vals["getb"] = got["GET bytes"] + got["GET whole"] * b.cfg.size_bytes
            if r == 1:
                reqs[0].cells[m.key] = b.server.since(mark)
            b.drop_caches()
            mark = b.server.mark()
            vals["rt"] = _timed(
                b,
                ["sh", "-c", 'cat "$1" > "$2" && cp "$2" "$3"', "sh", str(src), str(local), str(m.dir / back)],
                f"{m.label} read out + write back",
            )
            if r == 1:
                reqs[1].cells[m.key] = b.server.since(mark)
            rss = m.hwm()
    local.unlink(missing_ok=True)
    if r == 1:
        for key, val in ((dst, "cp"), (back, "rt")):
            if vals[val] is not None and not object_matches(b, key, b.big_local):
                b.fail(f"{m.label}: {key} does not hold the object's bytes")
                b.res.warnings.append(f"{m.label}: the copy {key} differed from big/obj")
                vals[val] = None
    for key in (dst, back):
        b.s3.delete(key)
    for k, x in vals.items():
        d[k].append(x)
    d["rss"].append(rss)


def run(b) -> None:
    c = b.cfg
    rows = _rows(b)
    reqs = (
        b.res.req("cp", f"cp of {c.size_mib} MiB inside the mount"),
        b.res.req("cprt", f"read out and write back {c.size_mib} MiB through the mount"),
    )
    if not b.big_ok:
        return
    sc, srt = [], []
    per = {m.key: {k: [] for k in ("cp", "rt", "get", "put", "copy", "getb", "rss")} for m in b.mounts}
    for r in range(1, c.runs + 1):
        b.drop_caches()
        mark = b.server.mark()
        x, y = _server(b, r)
        if r == 1:
            reqs[0].cells["curl"] = reqs[1].cells["curl"] = b.server.since(mark) + " (both)"
        sc.append(x)
        srt.append(y)
        for m in b.mounts:
            _client(b, m, r, per[m.key], reqs)
    b.note(f"server CopyObject: {fmt_list(sc)} s; curl GET + PUT: {fmt_list(srt)} s")
    rows[0].cells["curl"], rows[1].cells["curl"] = median(sc), median(srt)
    for m in b.mounts:
        d = per[m.key]
        b.note(
            f"{m.label}: cp inside {fmt_list(d['cp'])} s (GET {fmt_list(d['get'])} of {fmt_list(d['getb'])} "
            f"bytes, bytes PUT {fmt_list(d['put'])}, "
            f"COPY {fmt_list(d['copy'])}); read out + write back {fmt_list(d['rt'])} s; RSS {fmt_list(d['rss'])}"
        )
        rows[0].cells[m.key], rows[1].cells[m.key] = median(d["cp"]), median(d["rt"])
        if m is b.s3fs:
            continue
        rows[0].rss[m.key] = rows[1].rss[m.key] = max_of(d["rss"])
        copies = [x if x is None else (0 if x >= 1 else 1) for x in d["copy"]]
        b.res.facts[f"target, cp inside the mount ({m.label})"] = target_line(
            [
                ratio_part("round trip/cp", per_run_ratios(d["rt"], d["cp"]), 1, True),
                share_part("bytes GET", d["getb"], c.size_bytes, 0.01),
                zero_part("bytes PUT", d["put"]),
                zero_part("runs without a COPY", copies),
                rss_part(d["rss"]),
            ]
        )
    for row, k in ((rows[0], "cp"), (rows[1], "rt")):
        b.vs_base(row, {v.key: per[v.key][k] for v in b.variants})
