"""13. Append to the big object: 1 KiB appended (`head -c 1024 NEW >> MNT/ap/OBJ`, the time
includes the close, when the upload completes) to a server-side copy of big/obj made for each
run (CopyObject, not timed). s3mount copies the object's whole parts on the server
(UploadPartCopy) and moves only its last partial part each way; s3fs and an older s3mount
(the baseline column, when given) may stage the whole object. Bytes each way come from the
s3rver request log: GET bytes from the ranges asked (a whole-object GET counts as the object),
PUT bytes from the Content-Length of the PUTs without a copy source; COPY counts the part
copies. Run 1 of every client is checked byte for byte (the object + the 1 KiB). Target: at
most one part (8 MiB, s3mount's default) plus the 1 KiB each way."""

import subprocess

from ..stats import fmt_list, max_of, median
from ..system import run_timed
from ..targets import MET, NA, NOT_MET, rss_part, target_line

APPENDED = 1024
PART = 8 << 20


def _matches(b, key: str, tail) -> bool:
    """The object holds big/obj's bytes followed by tail's."""
    script = 'cmp -s <(curl -sf "$1") <(cat "$2" "$3")'
    out = subprocess.run(["bash", "-c", script, "bash", b.s3.presign(key), str(b.big_local), str(tail)], check=False)
    return out.returncode == 0


def _most_part(name: str, per_run) -> tuple[str, str]:
    """("NAME a / b (target ≤ one part + 1 KiB)", verdict)."""
    got = [x for x in per_run if x is not None]
    v = NA if not got else (MET if max(got) <= PART + APPENDED else NOT_MET)
    return f"{name} {fmt_list(per_run)} (target ≤ {PART + APPENDED})", v


def _client(b, m, r, d, req, tail) -> None:
    """One run of one client: a fresh copy of big/obj, a fresh mount, the append."""
    key = f"ap/{m.key}-{r}"
    vals = dict.fromkeys(("s", "getb", "put", "copy"))
    rss = None
    try:
        b.s3.copy_timed("big/obj", key)
    except Exception as e:  # noqa: BLE001 - one n/a cell
        b.fail(f"boto3 CopyObject big/obj -> {key} failed: {e}")
        d["rss"].append(None)
        for k, x in vals.items():
            d[k].append(x)
        return
    with m.mounted(f"ap-{r}") as ok:
        if ok:
            target = m.dir / key
            if not target.exists():  # a fresh mount's lookup; not timed
                b.fail(f"{m.label}: {key} is not visible in the mount")
            b.drop_caches()
            mark = b.server.mark()
            t = run_timed(["sh", "-c", 'cat "$1" >> "$2"', "sh", str(tail), str(target)], b.cfg.cmd_timeout)
            if t.ok:
                vals["s"] = t.elapsed
            else:
                b.fail(f"{m.label}: append failed: {t.err}")
            got = b.server.counts_since(mark)
            vals["getb"] = got["GET bytes"] + got["GET whole"] * b.cfg.size_bytes
            vals["put"], vals["copy"] = got["PUT bytes"], got["COPY"]
            if r == 1:
                req.cells[m.key] = b.server.since(mark)
            rss = m.hwm()
    if r == 1 and vals["s"] is not None and not _matches(b, key, tail):
        b.fail(f"{m.label}: {key} does not hold big/obj + the appended bytes")
        b.res.warnings.append(f"{m.label}: an appended object did not hold the right bytes ({key})")
        vals["s"] = None
    b.s3.delete(key)
    for k, x in vals.items():
        d[k].append(x)
    d["rss"].append(rss)


def run(b) -> None:
    c = b.cfg
    row = b.res.row(
        "append",
        "s",
        f"append 1 KiB to a {c.size_mib} MiB object (cat >> through the mount, until the close "
        "returns) — server: none (no server-side append)",
        "append 1 KiB",
    )
    req = b.res.req("append", f"append 1 KiB to a {c.size_mib} MiB object")
    if not b.big_ok:
        return
    tail = b.work / "append-1k.bin"
    with open("/dev/urandom", "rb") as f:
        tail.write_bytes(f.read(APPENDED))
    per = {m.key: {k: [] for k in ("s", "getb", "put", "copy", "rss")} for m in b.mounts}
    for r, m in b.interleaved(c.runs):
        _client(b, m, r, per[m.key], req, tail)
    for m in b.mounts:
        d = per[m.key]
        b.note(
            f"{m.label}: append {fmt_list(d['s'])} s (bytes GET {fmt_list(d['getb'])}, "
            f"bytes PUT {fmt_list(d['put'])}, COPY {fmt_list(d['copy'])}); RSS {fmt_list(d['rss'])}"
        )
        row.cells[m.key] = median(d["s"])
        if m is b.s3fs:
            continue
        row.rss[m.key] = max_of(d["rss"])
        b.res.facts[f"target, append 1 KiB to {c.size_mib} MiB ({m.label})"] = target_line(
            [_most_part("bytes GET", d["getb"]), _most_part("bytes PUT", d["put"]), rss_part(d["rss"])]
        )
    b.vs_base(row, {v.key: per[v.key]["s"] for v in b.variants})
    tail.unlink(missing_ok=True)
