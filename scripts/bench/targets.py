"""Targets of the cache and copy workloads as the lines the report prints: a ratio measured run
by run (the median of the per-run ratios, so that both sides of each ratio share their minute),
request counts that must be zero, a peak RSS bound. Pure functions."""

from collections.abc import Iterable, Sequence

from .stats import Value, fmt_list, fmt_ratio, max_of, median, numbers, ratio

MET, NOT_MET, NA = "met", "NOT met", "n/a"


def per_run_ratios(nums: Sequence[Value], dens: Sequence[Value]) -> list[float | None]:
    """Run r of nums over run r of dens (None where either is missing)."""
    return [ratio(a, d) for a, d in zip(nums, dens, strict=False)]


def verdict(got: Value, bound: float, at_least: bool) -> str:
    """met when got >= bound (at_least) or got <= bound; n/a when nothing was measured."""
    if not isinstance(got, int | float):
        return NA
    return MET if (got >= bound if at_least else got <= bound) else NOT_MET


def combine(verdicts: Iterable[str]) -> str:
    """NOT met if any part missed, n/a if any part was not measured, else met."""
    vs = list(verdicts)
    if NOT_MET in vs:
        return NOT_MET
    if not vs or NA in vs:
        return NA
    return MET


def ratio_part(name: str, ratios: Sequence[float | None], bound: float, at_least: bool) -> tuple[str, str]:
    """("NAME 4.10x (runs 4.0 / 4.1 / 4.3; target ≥ 3x)", verdict) for the median of the ratios."""
    got = median(ratios)
    sign = "≥" if at_least else "≤"
    text = f"{name} {fmt_ratio(got)}× (runs {fmt_list(ratios)}; target {sign} {bound:g}×)"
    return text, verdict(got, bound, at_least)


def zero_part(name: str, per_run: Sequence[int | None]) -> tuple[str, str]:
    """("NAME 0 / 0 / 0 (target 0)", verdict): every measured run must have counted none."""
    got = numbers(per_run)
    v = NA if not got else (MET if max(got) == 0 else NOT_MET)
    return f"{name} {fmt_list(per_run)} (target 0)", v


def share_part(name: str, per_run: Sequence[int | None], whole: int, most: float) -> tuple[str, str]:
    """("NAME 0 / 262144 (target < 1% of 1073741824)", verdict): every run under most x whole."""
    got = numbers(per_run)
    v = NA if not got else (MET if max(got) < most * whole else NOT_MET)
    return f"{name} {fmt_list(per_run)} (target < {most:.0%} of {whole})", v


def rss_part(values: Iterable[Value], limit: int = 256) -> tuple[str, str]:
    """("peak RSS 180 MiB (target < 256 MiB)", verdict) for the largest value."""
    top = max_of(values)
    v = NA if top is None else (MET if top < limit else NOT_MET)
    return f"peak RSS {'n/a' if top is None else f'{top} MiB'} (target < {limit} MiB)", v


def target_line(parts: Sequence[tuple[str, str]]) -> str:
    """The parts joined, then the combined verdict: "a; b: met"."""
    return "; ".join(t for t, _ in parts) + ": " + combine(v for _, v in parts)
