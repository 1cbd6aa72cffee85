"""4. cat of BENCH_SMALL_FILES files of 4 KiB by name, after an ls of their directory and with
no ls first (fresh mounts); the baseline is one curl -K invocation over one kept-alive connection."""

import subprocess

from ..measure import cat_files
from ..stats import fmt_list, max_of, median
from ..system import run_timed


def run(b) -> None:
    c = b.cfg
    n = c.small_files
    catls = b.res.row(
        "catls",
        "s",
        f"cat {n} x 4 KiB files after an ls of their directory (ls not timed) — curl: one invocation, keep-alive",
        f"cat {n} x 4 KiB after ls",
    )
    catnols = b.res.row(
        "catnols", "s", f"cat {n} x 4 KiB files, no ls before (fresh mount) — curl: as above", f"cat {n} x 4 KiB, no ls"
    )
    req_ls = b.res.req("catls", f"cat {n} files after ls (cat only)")
    req_nols = b.res.req("catnols", f"cat {n} files, no ls")
    if not b.small_ok:
        return
    cfg = b.work / "curl.cfg"
    cfg.write_text(b.s3.curl_config("small", n))
    codes = b.work / "curl.codes"
    cc = []
    for r in range(1, c.runs + 1):
        mark = b.server.mark()
        with open(codes, "wb") as f:
            t = run_timed(["curl", "-s", "-K", str(cfg), "-w", "%{http_code}\n"], c.cmd_timeout, stdout=f)
        if t.ok and codes.read_text().split().count("200") == n:
            cc.append(t.seconds)
        else:
            b.fail(f"curl loop over {n} objects failed: {t.err}")
        if r == 1:
            req_ls.cells["curl"] = req_nols.cells["curl"] = b.server.since(mark)
    b.note(f"curl: {fmt_list(cc)} s")
    catls.cells["curl"] = catnols.cells["curl"] = median(cc)

    names = b.work / "small-names"
    want = n * 4096
    after, fresh, rr = ({m.key: [] for m in b.mounts} for _ in range(3))
    for r, m in b.interleaved(c.runs):
        d = m.dir / "small"
        a = f = None
        with m.mounted(f"cat-ls-{r}") as ok:
            if ok:
                if subprocess.run(["ls", "-l", str(d)], capture_output=True, check=False).returncode:
                    b.fail(f"{m.label}: ls -l {d} failed")
                mark = b.server.mark()
                a = cat_files(b, d, names, want)
                if r == 1:
                    req_ls.cells[m.key] = b.server.since(mark)
                rr[m.key].append(m.hwm())
        with m.mounted(f"cat-nols-{r}") as ok:
            if ok:
                mark = b.server.mark()
                f = cat_files(b, d, names, want)
                if r == 1:
                    req_nols.cells[m.key] = b.server.since(mark)
                rr[m.key].append(m.hwm())
        after[m.key].append(a)
        fresh[m.key].append(f)
    for m in b.mounts:
        k = m.key
        b.note(f"{m.label}: after ls {fmt_list(after[k])} s; no ls {fmt_list(fresh[k])} s")
        catls.cells[k], catnols.cells[k] = median(after[k]), median(fresh[k])
        if m is not b.s3fs:
            catls.rss[k] = catnols.rss[k] = max_of(rr[k])
    b.vs_base(catls, after)
    b.vs_base(catnols, fresh)
