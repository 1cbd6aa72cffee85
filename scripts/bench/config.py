"""The run's knobs: --quick and the BENCH_* environment variables (see scripts/bench.sh)."""

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORKLOADS = [
    "seq",
    "fio",
    "listing",
    "smallcat",
    "write",
    "create",
    "ttfb",
    "multi",
    "growth",
    "diskcache",
    "remount_listing",
    "servercopy",
    "append",
    "million",
]


class ConfigError(Exception):
    pass


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    if not raw.isdigit() or int(raw) == 0:
        raise ConfigError(f"{name} must be a positive whole number (got {raw!r})")
    return int(raw)


@dataclass
class Config:
    quick: bool
    size_mib: int
    list_files: int
    small_files: int
    runs: int
    fio_secs: int
    fio_runs: int
    multi_mib: int
    ttfb_runs: int
    list_sizes: list[int]
    cmd_timeout: int
    latency_ms: int
    s3mount_bin: str
    s3mount_desc: str
    baseline_bin: str | None
    s3rver_module: str
    work_root: str
    results_file: Path
    chart_file: Path
    keep_logs: bool
    workloads: list[str]
    bucket: str = "s3mount-bench"
    list_large: int = 10000  # listed once per client above this (s3rver's LIST is quadratic)

    @property
    def size_bytes(self) -> int:
        return self.size_mib << 20

    @property
    def multi_bytes(self) -> int:
        return self.multi_mib << 20

    @property
    def big_cache_mib(self) -> int:
        """Large enough to hold the whole object (s3mount's warm-read variant)."""
        return self.size_mib + self.size_mib // 8 + 16


def repo_path(raw: str) -> Path:
    """A relative path is taken from the repository root (bench.sh runs from scripts/)."""
    p = Path(raw)
    return p if p.is_absolute() else ROOT / p


def load(quick: bool) -> Config:
    e = os.environ
    list_files = _int("BENCH_LIST_FILES", 2000 if quick else 10000)
    sizes_raw = e.get("BENCH_LIST_SIZES") or (f"500 {list_files} 5000" if quick else f"1000 {list_files} 50000")
    if not all(s.isdigit() and int(s) > 0 for s in sizes_raw.split()):
        raise ConfigError(f"BENCH_LIST_SIZES must hold positive whole numbers (got {sizes_raw!r})")
    workloads = e.get("BENCH_WORKLOADS", "").split() or WORKLOADS
    unknown = set(workloads) - set(WORKLOADS)
    if unknown:
        raise ConfigError(f"BENCH_WORKLOADS: unknown {sorted(unknown)} (known: {' '.join(WORKLOADS)})")
    binary = e.get("BENCH_S3MOUNT_BIN") or str(ROOT / "target/release/s3mount")
    return Config(
        quick=quick,
        size_mib=_int("BENCH_SIZE_MIB", 256 if quick else 1024),
        list_files=list_files,
        small_files=_int("BENCH_SMALL_FILES", 200 if quick else 1000),
        runs=_int("BENCH_RUNS", 1 if quick else 3),
        fio_secs=_int("BENCH_FIO_SECONDS", 5 if quick else 20),
        fio_runs=_int("BENCH_FIO_RUNS", 1),
        multi_mib=_int("BENCH_MULTI_MIB", 32 if quick else 256),
        ttfb_runs=_int("BENCH_TTFB_RUNS", 3 if quick else 5),
        list_sizes=sorted({int(s) for s in sizes_raw.split()}),
        cmd_timeout=_int("BENCH_TIMEOUT", 300),
        latency_ms=_int("BENCH_LATENCY_MS", 20),
        s3mount_bin=binary,
        s3mount_desc=e.get("BENCH_S3MOUNT_DESC", ""),
        baseline_bin=e.get("BENCH_BASELINE_BIN") or None,
        s3rver_module=e.get("BENCH_S3RVER_MODULE", ""),
        work_root=e.get("BENCH_WORK_DIR") or e.get("TMPDIR") or "/tmp",
        results_file=repo_path(e.get("BENCH_RESULTS") or "docs/bench-results.md"),
        chart_file=repo_path(e.get("BENCH_CHART") or "docs/bench.png"),
        keep_logs=bool(e.get("BENCH_KEEP_LOGS")),
        workloads=workloads,
    )
