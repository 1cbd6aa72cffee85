"""Rendering of the results as Markdown: the ratios table, the requests table, the listing
growth table and the lines after them. Pure functions of a Results value."""

from collections.abc import Sequence

from .results import Results, Row
from .stats import fmt_num, fmt_ratio, ratio

NA = "n/a"


def md_table(headers: Sequence[str], aligns: str, rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table; aligns holds one letter per column, "l" or "r"."""
    if len(aligns) != len(headers):
        raise ValueError("one alignment per column")
    sep = ["---" if a == "l" else "---:" for a in aligns]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(sep) + "|"]
    for r in rows:
        if len(r) != len(headers):
            raise ValueError(f"row of {len(r)} cells under {len(headers)} headers")
        lines.append("| " + " | ".join(r) + " |")
    return lines


def rss_cell(v) -> str:
    return NA if v is None else f"{fmt_num(v)} MiB"


def s3m_vs_curl(row: Row, client: str = "s3m") -> str:
    """The pairs rows give the median of their per-pair ratios; the others divide the cells."""
    if client in row.pair:
        p = row.pair[client]
        return fmt_ratio(p if isinstance(p, float | int) else None)
    return fmt_ratio(ratio(row.cells.get(client), row.cells.get("curl")))


def s3m_vs_base(row: Row) -> str:
    """The median of the per-run ratios when the runs were paired, else the ratio of the medians."""
    if isinstance(row.vs_base, float | int):
        return fmt_ratio(row.vs_base)
    return fmt_ratio(ratio(row.cells.get("s3m"), row.cells.get("base")))


def ratios_table(res: Results, baseline: bool) -> list[str]:
    headers = ["workload", "unit", "curl/server", "s3fs", "s3mount"]
    if baseline:
        headers.append("baseline")
    headers += ["s3mount/curl", "s3mount/s3fs"]
    if baseline:
        headers.append("s3mount/baseline")
    headers.append("s3mount peak RSS")
    if baseline:
        headers.append("baseline peak RSS")
    rows = []
    for r in res.rows:
        c = r.cells
        cells = [r.label, r.unit, fmt_num(c.get("curl")), fmt_num(c.get("s3fs")), fmt_num(c.get("s3m"))]
        if baseline:
            cells.append(fmt_num(c.get("base")))
        cells += [s3m_vs_curl(r), fmt_ratio(ratio(c.get("s3m"), c.get("s3fs")))]
        if baseline:
            cells.append(s3m_vs_base(r))
        cells.append(rss_cell(r.rss.get("s3m")))
        if baseline:
            cells.append(rss_cell(r.rss.get("base")))
        rows.append(cells)
    return md_table(headers, "ll" + "r" * (len(headers) - 2), rows)


def requests_table(res: Results, baseline: bool) -> list[str]:
    headers = ["workload", "curl/boto3", "s3fs", "s3mount"] + (["baseline"] if baseline else [])
    rows = []
    for r in res.reqs:
        cells = [r.label, r.cells.get("curl", "—"), r.cells.get("s3fs", NA), r.cells.get("s3m", NA)]
        if baseline:
            cells.append(r.cells.get("base", NA))
        rows.append(cells)
    return md_table(headers, "l" + "r" * (len(headers) - 1), rows)


def per_thousand_ms(seconds, objects: int) -> str:
    if not isinstance(seconds, int | float) or seconds <= 0:
        return NA
    return f"{seconds * 1000 / objects * 1000:.0f}"


def secs(v) -> str:
    return f"{fmt_num(v)} s" if isinstance(v, int | float) else fmt_num(v)


def growth_table(res: Results, baseline: bool) -> list[str]:
    headers = ["objects", "LIST pages", "boto3 LIST", "s3mount ls -l", "s3mount/LIST"]
    if baseline:
        headers += ["baseline ls -l", "baseline/LIST"]
    headers += ["s3fs ls -l", "LIST ms per 1,000 entries", "s3mount ms per 1,000 entries", "runs"]
    rows = []
    for n in sorted(res.growth):
        g = res.growth[n]
        b, s = g.cells.get("curl"), g.cells.get("s3m")
        cells = [str(n), fmt_num(g.pages), secs(b), secs(s), fmt_ratio(ratio(s, b))]
        if baseline:
            cells += [secs(g.cells.get("base")), fmt_ratio(ratio(g.cells.get("base"), b))]
        cells += [secs(g.cells.get("s3fs")), per_thousand_ms(b, n), per_thousand_ms(s, n), str(g.runs)]
        rows.append(cells)
    return md_table(headers, "r" * len(headers), rows)


def render(res: Results, header: list[str], baseline: bool, chart: str | None = None) -> str:
    """The whole report: machine lines, the three tables, facts, warnings, individual runs."""
    out = list(header)
    out += [
        "",
        "MiB/s and files/s rows: higher is better, a ratio above 1 means s3mount is faster.",
        "s (seconds) and ms rows: lower is better, a ratio below 1 means s3mount is faster.",
    ]
    if baseline:
        out.append(
            "baseline: a second s3mount binary (BENCH_BASELINE_BIN); every workload runs the clients "
            "interleaved, run by run (s3fs, s3mount, baseline, s3fs, ...), and s3mount/baseline is the "
            "median of the per-run ratios."
        )
    if chart:
        out += ["", f"![s3mount against curl and s3fs]({chart})"]
    out += ["", *ratios_table(res, baseline), ""]
    out += [
        "Requests seen by the server (the s3rver wrapper's request log): count per kind, ~ the "
        "server's mean time per request of that kind (first byte in to last byte out), and the "
        "mean size of ranged GETs and PUTs:",
        "",
        *requests_table(res, baseline),
        "",
        "Listing growth (ls -l on a fresh mount vs the bare paginated LIST calls; s3rver's own "
        "LIST costs more per page as the directory grows, so the ratio is the measure of "
        "s3mount's overhead):",
        "",
        *growth_table(res, baseline),
        "",
    ]
    out += [f"- {k}: {v}" for k, v in res.facts.items()]
    out += [f"- WARNING: {w}" for w in res.warnings]
    if res.notes:
        out += ["", "Individual runs:", ""]
        out += [f"- {n}" for n in res.notes]
    return "\n".join(out) + "\n"
