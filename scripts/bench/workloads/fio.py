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

    vc, vw, rr = ({m.key: [] for m in b.mounts} for _ in range(3))
    for r, m in b.interleaved(c.fio_runs):
        cold = warm = rss = None
        with m.mounted(f"fio-default-{r}") as ok:
            if ok:
                b.drop_caches()
                mark = b.server.mark()
                cold = fio_read(b, m.dir / "big/obj")
                if r == 1:
                    req.cells[m.key] = b.server.since(mark)
                warm = fio_read(b, m.dir / "big/obj")
                rss = m.hwm()
        vc[m.key].append(cold)
        vw[m.key].append(warm)
        rr[m.key].append(rss)
    for m in b.mounts:
        k = m.key
        b.note(f"{m.label} cold: {fmt_list(vc[k])}; warm: {fmt_list(vw[k])} MiB/s (RSS {fmt_list(rr[k])})")
        fioc.cells[k], fiow.cells[k] = median(vc[k]), median(vw[k])
        if m is b.s3fs:
            fiowb.cells["s3fs"] = median(vw[k])
        else:
            fioc.rss[k] = fiow.rss[k] = max_of(rr[k])
    b.vs_base(fioc, vc)
    b.vs_base(fiow, vw)

    vw, rr = ({v.key: [] for v in b.variants} for _ in range(2))
    for r, m in b.interleaved(c.fio_runs, b.variants):
        warm = rss = None
        with m.mounted(f"fio-cachebig-{r}", "--cache-size", str(big)) as ok:
            if ok:
                b.drop_caches()
                fio_read(b, m.dir / "big/obj")
                warm = fio_read(b, m.dir / "big/obj")
                rss = m.hwm()
        vw[m.key].append(warm)
        rr[m.key].append(rss)
    for m in b.variants:
        b.note(f"{m.label} --cache-size {big} warm: {fmt_list(vw[m.key])} MiB/s (RSS {fmt_list(rr[m.key])})")
        fiowb.cells[m.key], fiowb.rss[m.key] = median(vw[m.key]), max_of(rr[m.key])
    b.vs_base(fiowb, vw)
