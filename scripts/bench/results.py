"""What a run collects: the rows of the ratios table, the requests table, the listing growth,
single facts (CPU seconds, peak RSS of s3fs, ...) and the individual runs (notes).

Client keys: "curl" (the server itself: curl, boto3 or the aws CLI), "s3fs", "s3m" (the
s3mount under test) and "base" (the optional baseline s3mount binary).
"""

from dataclasses import dataclass, field

from .stats import Value

HIGHER_IS_BETTER = {"MiB/s", "files/s"}


@dataclass
class Row:
    id: str
    unit: str
    label: str
    short: str  # the chart's label
    cells: dict[str, Value] = field(default_factory=dict)
    rss: dict[str, Value] = field(default_factory=dict)  # peak RSS in MiB per s3mount client
    pair: dict[str, Value] = field(default_factory=dict)  # median of per-pair ratios vs curl
    vs_base: Value = None  # median of the per-run ratios s3mount/baseline (runs interleaved)

    @property
    def higher_is_better(self) -> bool:
        return self.unit in HIGHER_IS_BETTER


@dataclass
class ReqRow:
    id: str
    label: str
    cells: dict[str, str] = field(default_factory=dict)


@dataclass
class Growth:
    """One directory size of the listing-growth table."""

    objects: int
    pages: Value = None
    runs: int = 0
    cells: dict[str, Value] = field(default_factory=dict)  # curl = the bare boto3 LIST


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    reqs: list[ReqRow] = field(default_factory=list)
    growth: dict[int, Growth] = field(default_factory=dict)
    facts: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def row(self, rid: str, unit: str, label: str, short: str) -> Row:
        r = Row(rid, unit, label, short)
        self.rows.append(r)
        return r

    def req(self, rid: str, label: str) -> ReqRow:
        r = ReqRow(rid, label)
        self.reqs.append(r)
        return r

    def get(self, rid: str) -> Row | None:
        return next((r for r in self.rows if r.id == rid), None)
