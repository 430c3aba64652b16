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

A wait is bounded (`timeout_s`, the store's lock timeout): a holder that is stopped (SIGSTOP,
a debugger) or stuck must not hang every other process's writes, nor their shutdown. The
kernel's blocking flock cannot time out, so a contended wait runs it in a helper thread of
its own and waits for that thread's answer with a deadline; past it the write fails with
StoreUnavailable (the API's 503 "retry"), and a lock the helper gets later, with nobody
waiting for it any more, is let go at once.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from events.errors import StoreUnavailable

# How long a writer about to take the lock again waits for a waiting process to take it first
# (the waiter only has to wake: microseconds; a stopped waiter must not stop this one).
YIELD_S = 0.05


def lock_path(database: str | Path) -> Path:
    return Path(f"{os.path.abspath(database)}-writer.lock")


def wait_path(database: str | Path) -> Path:
    return Path(f"{os.path.abspath(database)}-writer.wait")


def _open(path: Path, like: Path) -> int:
    """The lock file, made with the database file's mode and owner (as SQLite makes its -wal
    and -shm files), so a first open by root (init_db, the audit) leaves it usable by the
    service's own user."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise StoreUnavailable(f"cannot open the write lock {path}: {exc.strerror}") from exc
    try:
        database, mine = os.stat(like), os.fstat(fd)
    except OSError:  # no database file yet: the lock keeps this process's defaults
        return fd
    try:
        if mine.st_mode & 0o777 != database.st_mode & 0o666:
            os.fchmod(fd, database.st_mode & 0o666)
        if os.geteuid() == 0 and (mine.st_uid, mine.st_gid) != (database.st_uid,
                                                                 database.st_gid):
            os.fchown(fd, database.st_uid, database.st_gid)
    except OSError:  # someone else's file that we may use anyway: leave it as it is
        pass
    return fd


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

    def __init__(self, database: str | Path, *, fair: bool = True,
                 timeout_s: float = 10.0) -> None:
        self.path = lock_path(database)
        self.timeout_s = timeout_s
        like = Path(os.path.abspath(database))
        self._fd: int | None = _open(self.path, like)
        try:
            self._wait_fd = _open(wait_path(database), like) if fair else None
        except BaseException:
            os.close(self._fd)
            raise
        # The helper thread's state: someone wants the lock; the helper holds it for them.
        self._cv = threading.Condition()
        self._want = self._has = self._closed = False
        self._helper: threading.Thread | None = None
        self.held = False
        self._taken_at = 0.0
        self._acquisitions = self._waited = self._yielded = 0
        self._wait_s = self._longest_wait_s = self._held_s = 0.0

    def acquire(self) -> None:
        assert self._fd is not None, "write lock used after close"
        assert not self.held, "the write lock is not re-entrant"
        started = time.perf_counter()
        waiting = self._wait_fd
        if waiting is not None and self._let_waiter_go(waiting, started + YIELD_S):
            self._yielded += 1
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the usual case: free
        except BlockingIOError:
            if waiting is not None:
                fcntl.flock(waiting, fcntl.LOCK_SH)  # "I am waiting", until the lock is ours
            try:
                self._wait_for_lock(self._fd, started + self.timeout_s)
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

    @staticmethod
    def _let_waiter_go(waiting: int, deadline: float) -> bool:
        """If a process is waiting (holds the wait file shared), give it until `deadline` to
        take the lock first: it only has to wake. Whether one was waiting."""
        pause = 0.00005
        while True:
            try:
                fcntl.flock(waiting, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.perf_counter() >= deadline:  # a stopped waiter: go on without it
                    return True
                time.sleep(pause)  # the waiter's wake-up, bounded by YIELD_S
                pause = min(pause * 2, 0.002)
                continue
            fcntl.flock(waiting, fcntl.LOCK_UN)
            return pause > 0.00005

    def _wait_for_lock(self, fd: int, deadline: float) -> None:
        """A blocking flock with a deadline. The flock runs in the lock's helper thread (one
        flock at a time: it belongs to the open file, so a second one on it would be granted
        at once and the first's release would drop the lock from under it), and this thread
        waits for the helper's word. Past the deadline: StoreUnavailable, and the helper lets
        the lock go as soon as it gets it, unless a later acquire wants it by then."""
        with self._cv:
            if self._helper is None:
                self._helper = threading.Thread(target=self._take_for_waiters, args=(fd,),
                                                daemon=True, name="sqlite-write-lock")
                self._helper.start()
            self._want = True
            self._cv.notify_all()
            while not self._has:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    self._want = False
                    raise StoreUnavailable(
                        f"the database is busy: another process has held its write lock "
                        f"for {self.timeout_s:g} s ({self.path})")
                self._cv.wait(remaining)
            self._has = self._want = False  # ours now
            self._cv.notify_all()

    def _take_for_waiters(self, fd: int) -> None:
        while True:
            with self._cv:
                while not (self._want or self._closed):
                    self._cv.wait()
                if self._closed:
                    return
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # sleeps in the kernel until it is ours
            except OSError:  # closed under it: the store is gone
                return
            with self._cv:
                if self._want and not self._closed:
                    self._has = True
                    self._cv.notify_all()
                    while self._has and not self._closed:  # until the waiter has taken it
                        self._cv.wait()
                    continue
                try:  # nobody waits for it any more
                    fcntl.flock(fd, fcntl.LOCK_UN)
                except OSError:
                    return

    def release(self) -> None:
        if not self.held or self._fd is None:
            return
        self.held = False
        self._held_s += time.perf_counter() - self._taken_at
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Closing the descriptor drops the lock too, even if release failed."""
        with self._cv:
            self._closed = True
            self._cv.notify_all()
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
