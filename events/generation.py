"""A generation word shared by every process on one machine: an 8-byte file, mapped.

A writer that changes something other processes cache calls `bump()`; a reader compares
`current()` with the word it saw when it filled its cache. Reading costs a memory load, not a
system call or a query, so it can sit on every request's hot path. The word is random, not a
count: two processes bumping at once cannot land on a value a reader already holds, and no
lock is needed. The file holds nothing secret and nothing that must survive: losing it only
makes every cache miss once.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol, TypeVar

from events.store import SqlSession

T = TypeVar("T")
U = TypeVar("U")
Work = Callable[[SqlSession], Awaitable[T]]


class Transact(Protocol):
    """A store's `transact`: runs any work in one write transaction."""

    def __call__(self, work: Work[U], /) -> Awaitable[U]: ...


WORD_BYTES = 8


class Generation(Protocol):
    """A word that changes whenever something other processes cache is changed, readable
    without a system call or a query. Two adapters: this module's mapped file, for processes
    on one machine, and events/pg_generation.py, for processes on one PostgreSQL server."""

    def current(self) -> bytes | None:
        """The word now; None while this process cannot vouch for it (then cache nothing)."""
        ...

    async def changing(self, transact: Transact, work: Work[T]) -> T:
        """`transact(work)`, for a write that changes what is cached: when it returns, every
        process's next `current()` differs from what it read before the commit."""
        ...

    async def start(self) -> None:
        """Begin vouching for the word (a process that serves); a tool that only writes
        need not."""
        ...

    async def stop(self) -> None: ...


class SharedGeneration:
    """The word in `path` (created if missing), mapped shared into this process."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            # Growing to 8 bytes keeps whatever another process wrote; it is never shrunk.
            if os.fstat(fd).st_size < WORD_BYTES:
                os.ftruncate(fd, WORD_BYTES)
            self._map = mmap.mmap(fd, WORD_BYTES, mmap.MAP_SHARED,
                                  mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
            os.close(fd)  # the mapping keeps the file open

    @classmethod
    def beside(cls, path: str | Path, suffix: str) -> SharedGeneration | None:
        """The word in `<path><suffix>`, or None where no file can be made there (a read-only
        folder): the caller then does without a cache."""
        try:
            return cls(f"{path}{suffix}")
        except OSError:
            return None

    def current(self) -> bytes:
        return self._map[:WORD_BYTES]

    def bump(self) -> None:
        self._map[:WORD_BYTES] = os.urandom(WORD_BYTES)

    async def changing(self, transact: Transact, work: Work[T]) -> T:
        """Bumped before the commit and after it. The bump before covers a writer that dies
        between its commit and its second bump, except for entries read in that moment; the
        caches' TTL bounds those (ledger/credential_cache.py)."""
        self.bump()
        try:
            return await transact(work)
        finally:
            self.bump()

    async def start(self) -> None:
        """Nothing to start: the mapped word is always current."""

    async def stop(self) -> None:
        """Nothing to stop: the mapping goes with the process."""

    def close(self) -> None:
        self._map.close()
