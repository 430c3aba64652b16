"""A queue for SQLite's write lock between the processes that share one file.

SQLite does not queue writers: a BEGIN IMMEDIATE that finds the write lock taken sleeps in
its busy handler (1, 2, 5 ... 100 ms steps) and tries again, while the holder may take the
lock back at once, so a waiting process can starve for seconds (bench/sqlite_lock_wait.py).
Each writer connection therefore first takes a blocking flock on `<db>-writer.lock`: a
waiting writer sleeps in the kernel and wakes as soon as the lock is free. It is taken in the
writer's thread just before BEGIN and dropped when the transaction ends; the kernel drops it
when the process dies. Uncontended it is one syscall (about a microsecond).

The kernel does not hand a released flock to the longest waiter: whoever asks first after
the release gets it, and that is often the process that just released it (its next batch
is ready while the waiter's thread is still being woken). So a writer that finds the lock
taken says so with a shared flock on `<db>-writer.wait` while it waits, and a writer about
to take the lock again first checks that file: if someone is waiting, it lets them go first
(it waits until they hold the lock, then queues behind them). Two processes then take turns.
"""

from __future__ import annotations

import fcntl
import os
import time
from dataclasses import dataclass
from pathlib import Path


def lock_path(database: str | Path) -> Path:
    return Path(f"{os.path.abspath(database)}-writer.lock")


def wait_path(database: str | Path) -> Path:
    return Path(f"{os.path.abspath(database)}-writer.wait")


def _open(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


@dataclass(frozen=True)
class LockStats:
    """What one process saw of the queue: for metrics, the bench and the log at close."""

    acquisitions: int
    waited: int  # acquisitions that found the lock taken by another process
    yielded: int  # acquisitions that first let a waiting process go
    wait_s: float  # total time spent waiting
    longest_wait_s: float
    held_s: float  # total time held (BEGIN .. COMMIT, jobs' Python included)


class WriteLock:
    """The flock on `<db>-writer.lock`; one per writer connection, used from one thread at
    a time (the writer's turns)."""

    def __init__(self, database: str | Path, *, fair: bool = True) -> None:
        self.path = lock_path(database)
        self._fd: int | None = _open(self.path)
        try:
            self._wait_fd = _open(wait_path(database)) if fair else None
        except BaseException:
            os.close(self._fd)
            raise
        self.held = False
        self._taken_at = 0.0
        self._acquisitions = self._waited = self._yielded = 0
        self._wait_s = self._longest_wait_s = self._held_s = 0.0

    def acquire(self) -> None:
        assert self._fd is not None, "write lock used after close"
        assert not self.held, "the write lock is not re-entrant"
        started = time.perf_counter()
        waiting = self._wait_fd
        if waiting is not None:
            try:  # nobody waiting: two syscalls, no wait
                fcntl.flock(waiting, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # someone is: once they hold the lock, queue behind them
                fcntl.flock(waiting, fcntl.LOCK_EX)
                self._yielded += 1
            fcntl.flock(waiting, fcntl.LOCK_UN)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the usual case: free
        except BlockingIOError:
            if waiting is not None:
                fcntl.flock(waiting, fcntl.LOCK_SH)  # "I am waiting", until the lock is ours
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)  # sleeps in the kernel until it is ours
            finally:
                if waiting is not None:
                    fcntl.flock(waiting, fcntl.LOCK_UN)
            self._waited += 1
        waited = time.perf_counter() - started
        self._wait_s += waited
        self._longest_wait_s = max(self._longest_wait_s, waited)
        self._taken_at = time.perf_counter()
        self._acquisitions += 1
        self.held = True

    def release(self) -> None:
        if not self.held or self._fd is None:
            return
        self.held = False
        self._held_s += time.perf_counter() - self._taken_at
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Closing the descriptor drops the lock too, even if release failed."""
        if self._wait_fd is not None:
            os.close(self._wait_fd)
            self._wait_fd = None
        if self._fd is not None:
            self.held = False
            os.close(self._fd)
            self._fd = None

    @property
    def stats(self) -> LockStats:
        return LockStats(self._acquisitions, self._waited, self._yielded, self._wait_s,
                         self._longest_wait_s, self._held_s)

    def summary(self) -> str:
        s = self.stats
        if not s.acquisitions:
            return "write lock: not taken"
        return (f"write lock: taken {s.acquisitions:,} times, {s.waited / s.acquisitions:.0%} "
                f"after a wait, {s.yielded / s.acquisitions:.0%} after letting a waiter go "
                f"first (longest {s.longest_wait_s * 1e3:.1f} ms, "
                f"{s.wait_s:.2f} s in all); held {s.held_s / s.acquisitions * 1e3:.2f} ms "
                f"a transaction on average")
