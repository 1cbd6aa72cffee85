"""Processes and the machine: timed commands with a timeout, CPU seconds and peak RSS of a
process from /proc, dropping the page cache, FUSE mounts in /proc/self/mountinfo, ports."""

import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Timed:
    ok: bool
    seconds: float
    stderr: str

    @property
    def err(self) -> str:
        """The tail of stderr, for a failure message."""
        return tail(self.stderr)

    @property
    def elapsed(self) -> float | None:
        return self.seconds if self.ok else None


def tail(text: str, lines: int = 2) -> str:
    return " ".join(text.strip().splitlines()[-lines:])


def run_timed(cmd, timeout: float, stdout=subprocess.DEVNULL, cwd=None, env=None) -> Timed:
    """Run cmd, wall-clock timed; not ok on a non-zero exit status or after the timeout."""
    t0 = time.perf_counter()
    try:
        p = subprocess.run(
            cmd,
            stdout=stdout,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env=env,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Timed(False, time.perf_counter() - t0, f"timed out after {timeout:.0f} s: {cmd[0]}")
    el = time.perf_counter() - t0
    return Timed(p.returncode == 0, el, p.stderr.decode(errors="replace"))


def run_parallel(cmds: list[list[str]], timeout: float) -> tuple[bool, float, list[str]]:
    """Start every command at once; (all succeeded, seconds until the last ended, stderrs)."""
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL) for c in cmds
    ]
    ok, errs = True, []
    for p in procs:
        try:
            _, err = p.communicate(timeout=max(1.0, timeout - (time.perf_counter() - t0)))
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
            ok = False
        ok = ok and p.returncode == 0
        errs.append(err.decode(errors="replace"))
    return ok, time.perf_counter() - t0, errs


def dd_bytes(stderr: str) -> int | None:
    """Bytes copied, from dd's last status line ("N bytes (...) copied, ...")."""
    m = re.search(r"^(\d+) bytes", stderr.strip().splitlines()[-1] if stderr.strip() else "")
    return int(m.group(1)) if m else None


def cpu_secs(pid: int | None) -> float | None:
    """utime + stime of pid so far, in seconds."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    rest = stat[stat.rindex(")") + 2 :].split()  # rest[0] is field 3 (state)
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


def _status_mib(pid: int | None, field: str) -> int | None:
    """A memory field of /proc/PID/status (VmHWM, VmRSS) in MiB."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def peak_rss_mib(pid: int | None) -> int | None:
    """VmHWM of pid in MiB."""
    return _status_mib(pid, "VmHWM")


def rss_mib(pid: int | None) -> int | None:
    """VmRSS of pid in MiB (what it holds now)."""
    return _status_mib(pid, "VmRSS")
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def can_drop_caches() -> bool:
    try:
        drop_caches_now()
        return True
    except OSError:
        return False


def drop_caches_now() -> None:
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def unescape_mountinfo(s: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def is_fuse_mounted(path: str) -> bool:
    try:
        with open("/proc/self/mountinfo") as f:
            lines = f.readlines()
    except OSError:
        return False
    for line in lines:
        fields = line.split()
        if "-" not in fields:
            continue
        fstype = fields[fields.index("-") + 1]
        if unescape_mountinfo(fields[4]) == path and fstype.startswith("fuse"):
            return True
    return False


def stop_process(p: subprocess.Popen | None, secs: float = 5) -> None:
    """SIGTERM, then SIGKILL after secs."""
    if p is None or p.poll() is not None:
        return
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=secs)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_port(port: int, proc: subprocess.Popen, secs: float) -> bool:
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        if port_open(port):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.1)
    return False


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])
