"""2. fio random 256 KiB O_DIRECT reads, cold (fresh mount) and warm (same mount, and with a
cache larger than the object); the server baseline is random ranged GETs on one connection."""

from ..measure import fio_read
from ..stats import fmt_list, max_of, median


def run(b) -> None:
    c = b.cfg
    big = c.big_cache_mib
    fioc = b.res.row(
        "fioc",
        "MiB/s",
        "fio randread 256 KiB, cold (fresh mount) — server: ranged GETs on one keep-alive connection",
        "fio randread cold",
    )
    fiow = b.res.row(
        "fiow", "MiB/s", "fio randread 256 KiB, warm (2nd run, same mount), default settings", "fio randread warm"
    )
    fiowb = b.res.row(
        "fiowb",
        "MiB/s",
        f"fio randread 256 KiB, warm, s3mount --cache-size {big}",
        f"fio randread warm, --cache-size {big}",
    )
    req = b.res.req("fio", "fio randread 256 KiB, cold run")
    if not b.big_ok:
        return

    def server_loop():
        try:
            return b.s3.random_gets("big/obj", c.size_bytes, 256 << 10, c.fio_secs)
        except Exception as e:  # noqa: BLE001 - any failure is one n/a cell
            b.fail(f"ranged GET loop failed: {e}")
            return None

    pc, pw = [], []
    for _ in range(c.fio_runs):
        b.drop_caches()
        pc.append(server_loop())
        pw.append(server_loop())
    b.note(f"server ranged GETs cold: {fmt_list(pc)}; warm: {fmt_list(pw)} MiB/s")
    fioc.cells["curl"] = median(pc)
    fiow.cells["curl"] = fiowb.cells["curl"] = median(pw)

    for m in b.mounts:
        vc, vw, rr = [], [], []
        for r in range(1, c.fio_runs + 1):
            with m.mounted(f"fio-default-{r}") as ok:
                if not ok:
                    continue
                b.drop_caches()
                mark = b.server.mark()
                vc.append(fio_read(b, m.dir / "big/obj"))
                if r == 1:
                    req.cells[m.key] = b.server.since(mark)
                vw.append(fio_read(b, m.dir / "big/obj"))
                rr.append(m.hwm())
        b.note(f"{m.label} cold: {fmt_list(vc)}; warm: {fmt_list(vw)} MiB/s (RSS {fmt_list(rr)})")
        fioc.cells[m.key], fiow.cells[m.key] = median(vc), median(vw)
        if m is b.s3fs:
            fiowb.cells["s3fs"] = median(vw)
            continue
        fioc.rss[m.key] = fiow.rss[m.key] = max_of(rr)
        vw, rr = [], []
        for r in range(1, c.fio_runs + 1):
            with m.mounted(f"fio-cachebig-{r}", "--cache-size", str(big)) as ok:
                if not ok:
                    continue
                b.drop_caches()
                fio_read(b, m.dir / "big/obj")
                vw.append(fio_read(b, m.dir / "big/obj"))
                rr.append(m.hwm())
        b.note(f"{m.label} --cache-size {big} warm: {fmt_list(vw)} MiB/s (RSS {fmt_list(rr)})")
        fiowb.cells[m.key], fiowb.rss[m.key] = median(vw), max_of(rr)
