"""Mounts of s3mount (the binary under test, and the optional baseline binary) and of s3fs at
a directory of their own: start on a fresh mount, wait until it is there, stop and unmount."""

import re
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

from .system import cpu_secs, is_fuse_mounted, peak_rss_mib, stop_process, tail


class Mount:
    """One client that mounts the bucket; key is its column in the results."""

    key = ""
    label = ""

    def __init__(self, bench, mnt: Path):
        self.bench = bench
        self.dir = mnt
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None

    def command(self, opts: tuple[str, ...]) -> list[str]:
        raise NotImplementedError

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def log_path(self, tag: str) -> Path:
        return self.bench.logs / f"{self.key}-{tag}.log"

    def start(self, tag: str, *opts: str) -> bool:
        """A fresh mount; False (and a failure noted) when it does not come up in 30 s."""
        self.stop()
        log = self.log_path(tag)
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                self.command(opts), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if is_fuse_mounted(str(self.dir)):
                return True
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.bench.fail(f"{self.label} ({tag} {' '.join(opts)}) did not mount; log: {tail(log.read_text(), 3)}")
        self.stop()
        return False

    def stop(self) -> None:
        d = str(self.dir)
        if is_fuse_mounted(d):
            for cmd in (["fusermount3", "-u", d], ["fusermount3", "-uz", d], ["umount", "-l", d]):
                if subprocess.run(cmd, stderr=subprocess.DEVNULL, check=False).returncode == 0:
                    break
        stop_process(self.proc, 10)
        self.proc = None
        if is_fuse_mounted(d):
            subprocess.run(["fusermount3", "-uz", d], stderr=subprocess.DEVNULL, check=False)

    @contextmanager
    def mounted(self, tag: str, *opts: str):
        """Yields whether the fresh mount came up; always unmounts afterwards."""
        ok = self.start(tag, *opts)
        try:
            yield ok
        finally:
            self.stop()

    def hwm(self) -> int | None:
        return peak_rss_mib(self.pid)

    def cpu(self) -> float | None:
        return cpu_secs(self.pid)


class S3mount(Mount):
    def __init__(self, bench, mnt: Path, key: str, label: str, binary: str):
        super().__init__(bench, mnt)
        self.key, self.label, self.binary = key, label, binary
        self._flags: dict[str, bool] = {}

    def supports(self, flag: str) -> bool:
        """The binary's --help names flag (the baseline binary may predate it)."""
        if flag not in self._flags:
            out = subprocess.run([self.binary, "--help"], capture_output=True, text=True, timeout=30, check=False)
            self._flags[flag] = flag in out.stdout
        return self._flags[flag]

    def command(self, opts):
        b = self.bench
        return [
            self.binary,
            b.cfg.bucket,
            str(self.dir),
            "--region",
            "us-east-1",
            "--endpoint-url",
            b.endpoint,
            "--force-path-style",
            "--foreground",
            *opts,
        ]


class S3fs(Mount):
    key = "s3fs"
    label = "s3fs"

    def __init__(self, bench, mnt: Path, passwd: Path):
        super().__init__(bench, mnt)
        self.passwd = passwd

    def command(self, opts):
        b = self.bench
        o = f"url={b.endpoint},use_path_request_style,passwd_file={self.passwd},endpoint=us-east-1"
        return ["s3fs", b.cfg.bucket, str(self.dir), "-f", "-o", o, *opts]


_OPENED = re.compile(r"disk cache opened .*?\bblocks=(\d+)")


def cached_blocks(log: str) -> int | None:
    """Blocks the disk cache held when the mount opened it (its last "disk cache opened ...
    blocks=N" log line), None when the log has no such line."""
    found = _OPENED.findall(log)
    return int(found[-1]) if found else None
