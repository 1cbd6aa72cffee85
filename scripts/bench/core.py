"""The run's shared state: configuration, work directory, server, boto3 client, the mounts,
the results, and the small services every workload uses (log, fail, drop caches, pairs)."""

import sys
import tempfile
import time
from pathlib import Path

from .config import Config
from .mounts import S3fs, S3mount
from .results import Results, Row
from .s3 import S3
from .server import S3rver
from .stats import Value, fmt_list, median, ratio
from .system import can_drop_caches, drop_caches_now, loadavg


class Bench:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.t0 = time.monotonic()
        self.load_start = loadavg()
        self.loads: list[str] = []
        self.work = Path(tempfile.mkdtemp(prefix="s3mount-bench.", dir=cfg.work_root))
        self.logs = self.work / "logs"
        self.logs.mkdir()
        self.res = Results()
        self.failures: list[str] = []
        self.can_drop = can_drop_caches()
        self.server: S3rver | None = None
        self.endpoint = ""
        self.s3: S3 | None = None
        passwd = self.work / "s3fs-passwd"
        passwd.write_text("S3RVER:S3RVER\n")
        passwd.chmod(0o600)
        self.s3fs = S3fs(self, self.work / "mnt-s3fs", passwd)
        self.variants = [S3mount(self, self.work / "mnt-s3mount", "s3m", "s3mount", cfg.s3mount_bin)]
        if cfg.baseline_bin:
            self.variants.append(S3mount(self, self.work / "mnt-base", "base", "baseline", cfg.baseline_bin))
        # Filled by the seeding step.
        self.big_local = self.work / "big.bin"
        self.big_ok = False
        self.big_url = ""
        self.list_ok = self.small_ok = False
        self.list_pages: int | None = None

    @property
    def mounts(self):
        return [self.s3fs, *self.variants]

    def interleaved(self, runs: int, mounts=None):
        """(run, mount), run by run: every client's run 1, then every client's run 2, ... (A B A B,
        not A A B B), so that load drifting during a workload moves every client alike."""
        ms = list(self.mounts if mounts is None else mounts)
        for r in range(1, runs + 1):
            for m in ms:
                yield r, m

    @staticmethod
    def vs_base(row: Row, per: dict[str, list[Value]]) -> None:
        """row.vs_base: the median of the per-run ratios s3mount/baseline; per holds each client's
        values in run order (None for a run that failed), so that run r of one meets run r of
        the other, measured a moment apart."""
        s3m, base = per.get("s3m"), per.get("base")
        if s3m is not None and base is not None:
            row.vs_base = median(ratio(a, c) for a, c in zip(s3m, base, strict=False))

    # -- output -----------------------------------------------------------------------------
    def log(self, msg: str) -> None:
        load = loadavg().split()[0]
        self.loads.append(load)
        print(
            f"\033[1m==> [{time.monotonic() - self.t0:4.0f}s] (load {load}) {msg}\033[0m", file=sys.stderr, flush=True
        )

    def note(self, msg: str) -> None:
        """An individual-runs line: printed now and kept for the results file."""
        print(f"    {msg}", file=sys.stderr, flush=True)
        self.res.notes.append(msg)

    def fail(self, msg: str) -> None:
        """A step failed: its cell shows n/a and the run goes on."""
        self.failures.append(msg)
        print(f"warning: {msg}", file=sys.stderr, flush=True)

    # -- machine ----------------------------------------------------------------------------
    def drop_caches(self) -> None:
        if self.can_drop:
            drop_caches_now()

    def start_server(self) -> None:
        self.server = S3rver(self.cfg.s3rver_module, self.work / "s3rver", self.logs)
        self.endpoint = self.server.endpoint
        self.s3 = S3(self.endpoint, self.cfg.bucket)

    def cleanup(self) -> None:
        for m in self.mounts:
            m.stop()
        if self.server:
            self.server.stop()

    # -- measurements -----------------------------------------------------------------------
    def pairs(self, row: Row, curl_fn, mount_fn) -> None:
        """Once per run: drop the caches, run curl_fn (a value), then at once mount_fn(variant,
        run) for every s3mount. A pair shares its minute, so load that drifts between groups of
        runs does not move the ratio: the row's ratio is the median of the per-pair ratios."""
        pc: list = []
        per = {v.key: ([], []) for v in self.variants}
        for r in range(1, self.cfg.runs + 1):
            self.drop_caches()
            c = curl_fn()
            pc.append(c)
            for v in self.variants:
                val = mount_fn(v, r)
                per[v.key][0].append(val)
                per[v.key][1].append(ratio(val, c))
        row.cells["curl"] = median(pc)
        self.vs_base(row, {k: vals for k, (vals, _) in per.items()})
        for v in self.variants:
            vals, ratios = per[v.key]
            row.cells[v.key] = median(vals)
            row.pair[v.key] = median(ratios)
            self.note(f"{row.id}, curl then {v.label}: {fmt_list(pc)} / {fmt_list(vals)}; ratios {fmt_list(ratios)}")
