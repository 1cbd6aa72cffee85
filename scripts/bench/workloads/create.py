"""6. Creating BENCH_SMALL_FILES files of 4 KiB with cp -r into a new directory of a fresh
mount; the baseline is boto3 PutObject of the same files one after another."""

import os

from ..stats import fmt_list, max_of, median, per_s
from ..system import run_timed


def run(b) -> None:
    c = b.cfg
    n = c.small_files
    row = b.res.row(
        "create",
        "files/s",
        f"create {n} x 4 KiB files (cp -r of a local directory to a new "
        "directory) — server: PutObject one after another (boto3, one connection)",
        f"create {n} x 4 KiB files",
    )
    req = b.res.req("create", f"create {n} x 4 KiB files, one run (curl column: boto3 PutObject loop)")
    src = b.work / "smalldir"
    src.mkdir(exist_ok=True)
    for i in range(n):
        (src / f"f{i:06d}").write_bytes(os.urandom(4096))

    pc = []
    for r in range(1, c.runs + 1):
        mark = b.server.mark()
        try:
            pc.append(per_s(n, b.s3.put_dir(f"wr/put-{r}", str(src))))
        except Exception as e:  # noqa: BLE001 - any failure is one n/a cell
            b.fail(f"boto3 PutObject loop failed: {e}")
        if r == 1:
            req.cells["curl"] = b.server.since(mark)
    b.note(f"boto3 PutObject loop: {fmt_list(pc)} files/s")
    row.cells["curl"] = median(pc)

    vals, rr = ({m.key: [] for m in b.mounts} for _ in range(2))
    for r, m in b.interleaved(c.runs):
        prefix = f"wr/mk-{m.key}-{r}"
        v = None
        with m.mounted(f"create-{r}") as ok:
            if ok:
                for f in src.iterdir():  # the sources in the page cache, as for every client
                    f.read_bytes()
                mark = b.server.mark()
                t = run_timed(["cp", "-r", str(src), str(m.dir / prefix)], c.cmd_timeout)
                if t.ok:
                    v = per_s(n, t.seconds)
                else:
                    b.fail(f"{m.label}: cp -r failed: {t.err}")
                if r == 1:
                    req.cells[m.key] = b.server.since(mark)
                rr[m.key].append(m.hwm())
                if r == 1:
                    bad = b.s3.verify_dir(prefix, str(src))
                    if bad:
                        b.fail(f"{m.label}: created files differ in the bucket: {bad}")
                    else:
                        b.note(f"{m.label}: the {n} created objects hold the written bytes")
        vals[m.key].append(v)
    for m in b.mounts:
        b.note(f"{m.label}: {fmt_list(vals[m.key])} files/s")
        row.cells[m.key] = median(vals[m.key])
        if m is not b.s3fs:
            row.rss[m.key] = max_of(rr[m.key])
    b.vs_base(row, vals)
