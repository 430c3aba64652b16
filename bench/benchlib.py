"""What every benchmark shares: paths, statistics over rounds, tables, and server processes."""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PYTHON = sys.executable
# Without a bound, a server that never comes up would hang the whole run.
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0


def machine() -> str:
    return (f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}; {revision()}")


def revision() -> str:
    """The commit measured, and whether files outside bench/ differ from it."""
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True, timeout=10)
        status = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", ".",
                                 ":!bench", ":!BENCHMARKS.md"], capture_output=True, text=True,
                                check=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("MLC_BENCH_REVISION", "unknown (not a git checkout)")
    dirty = " + uncommitted changes" if status.stdout.strip() else ""
    return f"commit {head.stdout.strip()}{dirty}"


def load() -> str:
    """The 1, 5 and 15 minute load averages: the machine is shared, so say how busy it was."""
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


@dataclass(frozen=True)
class Spread:
    """The median of a few rounds and how far they spread."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if not values:
            return cls(0.0, 0.0, 0.0)
        return cls(statistics.median(values), min(values), max(values))

    def show(self, digits: int = 0, suffix: str = "") -> str:
        return (f"{self.median:,.{digits}f}{suffix} ({self.low:,.{digits}f}–"
                f"{self.high:,.{digits}f})")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table, readable on a terminal and pasteable into BENCHMARKS.md."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
             for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


class ServerProcess:
    """A server started in its own process group, waited for, and always stopped."""

    def __init__(self, name: str, command: list[str], *, env: dict[str, str], log_path: Path,
                 health_url: str, cwd: Path = ROOT) -> None:
        self.name = name
        self.cwd = cwd
        self.command = command
        self.env = env
        self.log_path = log_path
        self.health_url = health_url
        self.proc: subprocess.Popen[bytes] | None = None
        # When set, ready also needs this text in the log (a supervisor saying every worker
        # serves: /healthz answers as soon as the first one does).
        self.ready_text: str | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command, cwd=self.cwd, env={**os.environ, **self.env}, stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n"
                                   f"{self.log_tail()}")
            with contextlib.suppress(OSError), urllib.request.urlopen(
                    self.health_url, timeout=1) as reply:
                if reply.status == 200 and (self.ready_text is None or self.ready_text in
                                            self.log_path.read_text(errors="replace")):
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} was not ready in {READY_TIMEOUT_S} s:\n"
                           f"{self.log_tail()}")

    def stop(self) -> int | None:
        """SIGTERM (both servers shut down cleanly on it), then SIGKILL if it hangs."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_TIMEOUT_S)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # anything it left behind in its group
        return proc.returncode

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
