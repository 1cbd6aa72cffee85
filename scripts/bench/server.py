"""s3rver, run through a small Node wrapper (helpers/s3rver_logged.js) that logs one line per
answered request; the log is counted per workload (mark, then summary since the mark)."""

import os
import re
import subprocess
import time
from collections import Counter, defaultdict
from pathlib import Path

from .system import free_port, stop_process, wait_port

HELPERS = Path(__file__).resolve().parent / "helpers"
ORDER = ["LIST", "GET", "HEAD", "PUT", "COPY", "POST", "DELETE", "TAGS", "other"]
_LIST_URL = re.compile(r"^/[^/?]*/?(\?|$)")
_RANGE = re.compile(r"^bytes=(\d+)-(\d+)$")


def kind(method: str, url: str, copy: bool = False) -> str:
    """LIST for a GET of the bucket itself (not ?location), COPY for a PUT with a copy source
    (CopyObject, UploadPartCopy), TAGS for Get/PutObjectTagging (not object bytes), else the
    method."""
    if re.search(r"[?&]tagging(=|&|$)", url):
        return "TAGS"
    if method == "PUT" and copy:
        return "COPY"
    if method == "GET" and _LIST_URL.match(url) and not re.search(r"[?&]location", url):
        return "LIST"
    return method if method in ORDER else "other"


def summarize(lines: list[str]) -> str:
    """ "N (a LIST ~x ms, b GET ~y ms (r ranged, avg K KiB), c PUT ~z ms (avg K KiB), ...)".

    Each line: METHOD STATUS URL RANGE MILLISECONDS CONTENT-LENGTH END [COPY]."""
    count: Counter[str] = Counter()
    ms: defaultdict[str, float] = defaultdict(float)
    ranged = rbytes = puts = pbytes = 0
    n = 0
    for line in lines:
        f = line.split()
        if len(f) < 6:
            continue
        n += 1
        k = _kind(f)
        count[k] += 1
        ms[k] += float(f[4])
        m = _RANGE.match(f[3])
        if k == "GET" and m:
            ranged += 1
            rbytes += int(m.group(2)) - int(m.group(1)) + 1
        if k == "PUT" and f[5].isdigit():
            puts += 1
            pbytes += int(f[5])
    parts = []
    for k in ORDER:
        if not count[k]:
            continue
        d = f"{count[k]} {k} ~{ms[k] / count[k]:.1f} ms"
        if k == "GET" and ranged:
            d += f" ({ranged} ranged, avg {rbytes / ranged / 1024:.0f} KiB)"
        if k == "PUT" and puts:
            d += f" (avg {pbytes / puts / 1024:.0f} KiB)"
        parts.append(d)
    return f"{n} ({', '.join(parts)})" if parts else str(n)


def _kind(f: list[str]) -> str:
    return kind(f[0], f[2], len(f) > 7 and f[7] == "copy")


def counts(lines: list[str]) -> Counter[str]:
    """Requests per kind (LIST, GET, HEAD, PUT, COPY, ...) in the log lines, and under "PUT bytes"
    the bytes that the PUTs without a copy source carried (their Content-Length), under "GET bytes"
    the bytes the ranged GETs asked for and under "GET whole" the GETs of whole objects."""
    c: Counter[str] = Counter()
    for f in (line.split() for line in lines):
        if len(f) < 6:
            continue
        k = _kind(f)
        c[k] += 1
        if k == "PUT" and f[5].isdigit():
            c["PUT bytes"] += int(f[5])
        m = _RANGE.match(f[3])
        if k == "GET":
            if m:
                c["GET bytes"] += int(m.group(2)) - int(m.group(1)) + 1
            else:
                c["GET whole"] += 1
    return c


class S3rver:
    def __init__(self, module_dir: str, data_dir: Path, log_dir: Path):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.reqlog = log_dir / "s3rver-requests.log"
        self.reqlog.write_text("")
        data_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, NODE_OPTIONS="--openssl-legacy-provider")
        with open(log_dir / "s3rver.log", "wb") as out:
            self.proc = subprocess.Popen(
                [
                    "node",
                    str(HELPERS / "s3rver_logged.js"),
                    module_dir,
                    str(data_dir),
                    str(self.port),
                    str(self.reqlog),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        if not wait_port(self.port, self.proc, 30):
            self.stop()
            raise RuntimeError(f"s3rver did not answer on {self.endpoint}; see {log_dir}/s3rver.log")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _lines(self) -> list[str]:
        with open(self.reqlog) as f:
            return f.readlines()

    def mark(self) -> int:
        time.sleep(0.3)  # answers of the previous step still being logged
        return len(self._lines())

    def since(self, mark: int) -> str:
        time.sleep(0.3)
        return summarize(self._lines()[mark:])

    def counts_since(self, mark: int) -> Counter[str]:
        time.sleep(0.3)
        return counts(self._lines()[mark:])

    def stop(self) -> None:
        stop_process(self.proc, 5)
