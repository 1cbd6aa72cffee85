"""Pure number helpers: medians, ratios, throughput and the way numbers are printed.

A value that could not be measured is None everywhere, printed as "n/a".
"""

from collections.abc import Iterable

MIB = 1 << 20

Value = float | int | str | None


def numbers(values: Iterable[Value]) -> list[float | int]:
    """The numeric values, without None and text cells."""
    return [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]


def median(values: Iterable[Value]) -> float | None:
    """Median of the numeric values, None when there are none."""
    vals = sorted(numbers(values))
    if not vals:
        return None
    mid = len(vals) // 2
    if len(vals) % 2:
        return vals[mid]
    return (vals[mid - 1] + vals[mid]) / 2


def max_of(values: Iterable[Value]) -> float | int | None:
    vals = numbers(values)
    return max(vals) if vals else None


def ratio(a: Value, b: Value) -> float | None:
    """a / b when both are positive numbers, else None."""
    if not isinstance(a, int | float) or not isinstance(b, int | float):
        return None
    if a <= 0 or b <= 0:
        return None
    return a / b


def mib_per_s(nbytes: float, seconds: float | None) -> float | None:
    if seconds is None or seconds <= 0:
        return None
    return nbytes / MIB / seconds


def per_s(count: float, seconds: float | None) -> float | None:
    if seconds is None or seconds <= 0:
        return None
    return count / seconds


def fmt_num(v: Value) -> str:
    """Three significant figures below 100, whole numbers above; counts (int) and text as they are."""
    if v is None:
        return "n/a"
    if isinstance(v, str):
        return v
    if isinstance(v, int):
        return str(v)
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:#.3g}"


def fmt_ratio(r: float | None) -> str:
    return "n/a" if r is None else f"{r:.2f}"


def fmt_list(values: Iterable[Value]) -> str:
    """The individual runs of a measurement, for the notes."""
    out = " / ".join(fmt_num(v) for v in values)
    return out or "n/a"
