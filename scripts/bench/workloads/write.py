"""5. Sequential write of the object's size into a fresh mount (dd conv=fsync, the time includes
the close); the baseline is `aws s3 cp`. Every upload is read back and compared. Each client's
CPU seconds per GiB written (utime + stime of its process over the dd) are printed side by side,
the median of the runs."""

import os
import shutil

from ..measure import object_matches, write_file
from ..stats import fmt_list, fmt_num, max_of, median, mib_per_s
from ..system import cpu_secs, run_timed

GIB = 1 << 30


def prep(b) -> None:
    """Flush the server's earlier writes, drop the page cache, read the source once."""
    b.drop_caches()
    with open(b.big_local, "rb") as f:
        while f.read(1 << 24):
            pass


def check(b, key: str, who: str) -> bool:
    if object_matches(b, key, b.big_local):
        b.note(f"{who}: {key} read back identical (GET through the S3 API)")
        return True
    b.fail(f"{who}: the uploaded object {key} does not hold the written bytes")
    b.res.warnings.append(f"{who}: an object written does not hold the written bytes ({key})")
    return False


def aws_baseline(b, row, req) -> None:
    c = b.cfg
    size = c.size_bytes
    if not shutil.which("aws"):
        b.fail("the aws CLI is not installed: no aws s3 cp baseline")
        return
    cfg = b.work / "aws-config"
    cfg.write_text(
        "[default]\nregion = us-east-1\nrequest_checksum_calculation = when_required\n"
        "response_checksum_validation = when_required\ns3 =\n    addressing_style = path\n"
    )
    env = dict(os.environ, AWS_CONFIG_FILE=str(cfg))
    aws = ["aws", "--endpoint-url", b.endpoint]
    t = run_timed([*aws, "s3", "ls", f"s3://{c.bucket}/nothing-here/"], c.cmd_timeout, env=env)
    b.res.facts["aws CLI start-up (one 'aws s3 ls' of an empty prefix, in every aws s3 cp time)"] = f"{t.seconds:.2f} s"
    wa = []
    for r in range(1, c.runs + 1):
        prep(b)
        mark = b.server.mark()
        key = f"wr/aws-{r}"
        t = run_timed(
            [*aws, "s3", "cp", "--only-show-errors", str(b.big_local), f"s3://{c.bucket}/{key}"], c.cmd_timeout, env=env
        )
        if t.ok:
            wa.append(mib_per_s(size, t.seconds))
            if r == 1:
                req.cells["curl"] = b.server.since(mark)
                check(b, key, "aws s3 cp")
        else:
            b.fail(f"aws s3 cp failed: {t.err}")
        b.s3.delete(key)
    b.note(f"aws s3 cp: {fmt_list(wa)} MiB/s")
    row.cells["curl"] = median(wa)


def run(b) -> None:
    c = b.cfg
    row = b.res.row(
        "write",
        "MiB/s",
        f"seq write {c.size_mib} MiB (dd bs=1M conv=fsync; the time includes the "
        "close, when the upload completes) — server: aws s3 cp upload",
        f"seq write {c.size_mib} MiB",
    )
    req = b.res.req("write", f"seq write {c.size_mib} MiB, one run (curl column: aws s3 cp)")
    try:
        b.s3.put("wr/")
    except Exception as e:  # noqa: BLE001 - the workload is skipped
        b.fail(f"cannot create the wr/ directory marker: {e}")
        return
    aws_baseline(b, row, req)
    vals, rr, cpu = ({m.key: [] for m in b.mounts} for _ in range(3))
    for r, m in b.interleaved(c.runs):
        vals[m.key].append(_write_once(b, m, r, req, rr[m.key], cpu[m.key]))
    b.res.facts["CPU per GiB written (utime+stime of the client's process, median of the runs)"] = ", ".join(
        f"{m.label} {fmt_num(median(cpu[m.key]))} s" for m in b.mounts
    )
    for m in b.mounts:
        b.note(f"{m.label}: {fmt_list(vals[m.key])} MiB/s (peak RSS MiB: {fmt_list(rr[m.key])})")
        row.cells[m.key] = median(vals[m.key])
        if m is b.s3fs:
            b.res.facts["s3fs peak RSS, write"] = f"{fmt_num(max_of(rr[m.key]))} MiB"
        else:
            row.rss[m.key] = max_of(rr[m.key])
    b.vs_base(row, vals)


def _write_once(b, m, r, req, rr, cpu) -> float | None:
    size = b.cfg.size_bytes
    key = f"wr/{m.key}-{r}"
    v = None
    with m.mounted(f"write-{r}") as ok:
        if ok:
            prep(b)
            mark = b.server.mark()
            c0, k0 = cpu_secs(m.pid), cpu_secs(b.server.pid)
            v = write_file(b, b.big_local, m.dir / key, size)
            c1, k1 = cpu_secs(m.pid), cpu_secs(b.server.pid)
            if v and None not in (c0, c1):
                cpu.append((c1 - c0) * GIB / size)
            if r == 1:
                req.cells[m.key] = b.server.since(mark)
                if None not in (c0, c1, k0, k1) and v:
                    b.res.facts[f"CPU, {m.label} (one write)"] = (
                        f"{m.label} {c1 - c0:.1f} s + s3rver {k1 - k0:.1f} s CPU for {v:.1f} MiB/s"
                    )
            rr.append(m.hwm())
            # Checked before unmounting: the object is in the bucket once close() returned.
            if m is not b.s3fs or r == 1:
                check(b, key, m.label)
    b.s3.delete(key)
    return v
