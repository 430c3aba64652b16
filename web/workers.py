"""Several processes serving one port (`main.py --workers N`): a small supervisor, no asyncio.

The supervisor loads nothing itself. It starts worker 0 (`python main.py …` again, with
ML_CABINET_WORKER_FD set) and waits until it serves: the first start creates the schema,
rebuilds changed read models and makes the signing key, which must not run twice at once.
Then it starts the others. Every worker binds the same host and port with SO_REUSEPORT, so
the kernel spreads connections over them; they share the database as separate processes
always could (file locks name the live ones, the credential generation word, one group
commit per process, SQLite's write lock or PostgreSQL's advisory lock between them).

Each worker holds one end of a socket pair (`WorkerLink`): it writes one byte when it
serves, and it stops cleanly when the pair reads end-of-file, which is how a worker learns
that its supervisor died, however it died (even SIGKILL). Workers run in their own process
groups, so a terminal's Ctrl-C reaches the supervisor alone, which forwards one SIGTERM to
each: every worker then stops as a single process does (web/server.py). The supervisor exits
0 when every worker did; if a worker dies on its own, it stops the others and exits with
that worker's code, so whatever supervises the service (systemd, a container) restarts it.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

log = logging.getLogger("ml_cabinet")

WORKER_FD_ENV = "ML_CABINET_WORKER_FD"
READY = b"R"
MAX_WORKERS = 64  # a bound on a typo; SQLite's single writer gains nothing from many more


@dataclass
class Worker:
    index: int
    process: subprocess.Popen[bytes]
    link: socket.socket  # the supervisor's end
    exit_code: int | None = None

    def wait_ready(self) -> bool:
        """Blocks until the worker serves (True) or exits first (False)."""
        try:
            return self.link.recv(1) == READY
        except OSError:
            return False

    def terminate(self) -> None:
        # os.kill, not Popen.send_signal: its poll() could reap the worker behind wait_all's
        # back. Not yet reaped, the pid is still this worker's (a zombie at worst).
        if self.exit_code is None:
            os.kill(self.process.pid, signal.SIGTERM)


class WorkerLink:
    """The worker's end of its socket pair (see the module docstring)."""

    def __init__(self, fd: int) -> None:
        self.socket = socket.socket(fileno=fd)

    @classmethod
    def from_env(cls) -> WorkerLink | None:
        fd = os.environ.pop(WORKER_FD_ENV, None)
        return cls(int(fd)) if fd else None

    def ready(self) -> None:
        self.socket.sendall(READY)

    def fileno(self) -> int:
        return self.socket.fileno()

    def close(self) -> None:
        self.socket.close()


def worker_command(script: Path, argv: Sequence[str]) -> list[str]:
    """main.py again with the same arguments; WORKER_FD_ENV makes it a worker."""
    return [sys.executable, str(script.resolve()), *argv]


def supervise(command: Sequence[str], count: int) -> int:
    """Run `count` workers until SIGTERM or SIGINT (or one dies); the exit code."""
    return Supervisor(command).run(count)


class Supervisor:
    def __init__(self, command: Sequence[str]) -> None:
        self.command = list(command)
        self.workers: list[Worker] = []
        self.stopping = False

    def stop(self, signum: int = signal.SIGTERM, frame: FrameType | None = None) -> None:
        """The signal handler: one SIGTERM to each worker, once."""
        if not self.stopping:
            self.stopping = True
            log.info("stopping %d workers", len(self.workers))
            for worker in self.workers:
                worker.terminate()

    def run(self, count: int) -> int:
        previous = {sig: signal.signal(sig, self.stop) for sig in (signal.SIGTERM,
                                                                   signal.SIGINT)}
        try:
            for index in range(count):
                # One at a time: the first start of a file creates what the others then find.
                worker = self.start_worker(index)
                if self.stopping:
                    worker.terminate()
                if not worker.wait_ready():
                    break
            else:
                log.info("serving from %d workers (pids %s)", count,
                         ", ".join(str(w.process.pid) for w in self.workers))
            return self.wait_all()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for worker in self.workers:
                worker.link.close()

    def start_worker(self, index: int) -> Worker:
        ours, theirs = socket.socketpair()
        env = {**os.environ, WORKER_FD_ENV: str(theirs.fileno())}
        try:
            process = subprocess.Popen(self.command, env=env, pass_fds=(theirs.fileno(),),
                                       stdin=subprocess.DEVNULL, process_group=0)
        finally:
            theirs.close()  # the worker's copy is the only one left: its exit reads as EOF
        worker = Worker(index, process, ours)
        self.workers.append(worker)
        return worker

    def wait_all(self) -> int:
        """Reap every worker. One that exits before the stop stops the others, and its code
        (1 for 0 or a signal) is the supervisor's; after a stop, 0 if every worker's was."""
        code = 0
        while any(w.exit_code is None for w in self.workers):
            pid, status = os.wait()
            worker = next((w for w in self.workers if w.process.pid == pid), None)
            if worker is None:
                continue
            worker.exit_code = worker.process.returncode = os.waitstatus_to_exitcode(status)
            if not self.stopping:
                log.error("worker %d (pid %d) exited with %d: stopping the others",
                          worker.index, pid, worker.exit_code)
                code = worker.exit_code if worker.exit_code > 0 else 1
                self.stop()
            elif worker.exit_code != 0 and code == 0:
                log.error("worker %d (pid %d) stopped with %d", worker.index, pid,
                          worker.exit_code)
                code = worker.exit_code if worker.exit_code > 0 else 1
        return code
