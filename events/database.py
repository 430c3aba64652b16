"""The seed's Database: a thin async access layer over one aiosqlite connection.

Driver errors that mean "cannot write now" or "the file is damaged" are wrapped here, once.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote

import aiosqlite

from events.errors import StoreCorrupted, StoreError, StoreUnavailable, UniqueViolation
from events.sql import Params
from events.write_lock import WriteLock

_UNAVAILABLE = ("full", "readonly", "read-only", "locked", "busy", "i/o", "unable to open")
_CORRUPT = ("malformed", "not a database", "corrupt")


def wrap_sqlite_error(exc: sqlite3.Error) -> StoreError | None:
    """The store error an operating fault maps to, or None for a programming error."""
    text = str(exc).lower()
    if isinstance(exc, sqlite3.IntegrityError) and "unique constraint failed" in text:
        return UniqueViolation(str(exc))
    if any(word in text for word in _CORRUPT):
        return StoreCorrupted(str(exc))
    if isinstance(exc, sqlite3.OperationalError) and any(w in text for w in _UNAVAILABLE):
        return StoreUnavailable(str(exc))
    return None


class Database:
    """execute / fetchall / fetchone, as the seed names them; rows come back as dicts."""

    dialect = "sqlite"

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn

    @classmethod
    async def connect(cls, path: str | Path, *, readonly: bool = False) -> Database:
        # A URI, so `mode=ro` can be asked for; quote() keeps '?' and '#' in names literal.
        where = quote(os.path.abspath(path))  # noqa: ASYNC240 - getcwd, not file I/O
        uri = f"file:{where}{'?mode=ro' if readonly else ''}"
        try:
            conn = await aiosqlite.connect(uri, uri=True, isolation_level=None)
        except sqlite3.Error as exc:
            raise wrap_sqlite_error(exc) or exc from exc
        conn.row_factory = sqlite3.Row
        db = cls(conn)
        # Another process may hold the write lock for a moment; wait rather than fail.
        await db.execute("PRAGMA busy_timeout = 10000")
        return db

    async def close(self) -> None:
        await self.conn.close()

    @property
    def in_transaction(self) -> bool:
        return self.conn.in_transaction

    async def execute(self, query: str, params: Params = ()) -> None:
        try:
            await self.conn.execute(query, params)
        except sqlite3.Error as exc:
            raise wrap_sqlite_error(exc) or exc from exc

    async def executescript(self, script: str) -> None:
        try:
            await self.conn.executescript(script)
        except sqlite3.Error as exc:
            raise wrap_sqlite_error(exc) or exc from exc

    async def fetchall(self, query: str, params: Params = ()) -> list[dict[str, Any]]:
        # One trip to the connection's thread: the statement runs to its end there, so no
        # cursor stays open between awaits. An open cursor keeps the connection's read
        # snapshot, and every other read on the connection would see that old snapshot.
        try:
            rows = await self.conn.execute_fetchall(query, params)
        except sqlite3.Error as exc:
            raise wrap_sqlite_error(exc) or exc from exc
        return [dict(row) for row in rows]

    async def fetchone(self, query: str, params: Params = ()) -> dict[str, Any] | None:
        """The first row; meant for queries that find one row (a key, a LIMIT 1)."""
        rows = await self.fetchall(query, params)
        return rows[0] if rows else None

    async def iterate(
        self, query: str, params: Params = (), batch_size: int = 500
    ) -> AsyncIterator[dict[str, Any]]:
        """Rows in batches, so a large result never sits in memory whole. The cursor holds one
        snapshot until it ends: use it only on a connection of its own (the audit's)."""
        try:
            async with self.conn.execute(query, params) as cursor:
                while rows := await cursor.fetchmany(batch_size):
                    for row in rows:
                        yield dict(row)
        except sqlite3.Error as exc:
            raise wrap_sqlite_error(exc) or exc from exc


class InlineDatabase(Database):
    """The writer's connection, with the same methods as Database but no thread trip for
    most statements.

    Inside a write transaction, statements touch SQLite's page cache and take microseconds,
    far less than a trip to a worker thread and back, so they run inline on the event loop's
    thread. The statements that wait run in a worker thread: BEGIN (for another process's
    write lock, up to the busy timeout), COMMIT (for fsync), ROLLBACK, PRAGMA and scripts.
    Only the store's single writer task uses it, so no two statements ever overlap.

    With `write_lock`, every BEGIN first queues for the processes' write lock (WriteLock) in
    the same thread trip, and the lock is dropped as soon as the connection is out of its
    transaction again (COMMIT, ROLLBACK, a failed BEGIN, SQLite's own rollback on disk
    full), and at close.
    """

    write_lock: WriteLock | None = None

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw

    @classmethod
    async def connect_inline(cls, path: str | Path, *, busy_timeout_ms: int = 10000,
                             write_lock: bool = False, fair: bool = True,
                             lock_timeout_ms: int = 10000) -> Self:
        where = quote(os.path.abspath(path))  # noqa: ASYNC240 - getcwd, not file I/O

        def connect() -> sqlite3.Connection:
            raw = sqlite3.connect(f"file:{where}", uri=True, isolation_level=None,
                                  check_same_thread=False)  # used by one task, in turns
            raw.row_factory = sqlite3.Row
            raw.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            return raw

        try:
            db = cls(await asyncio.to_thread(connect))
        except sqlite3.Error as exc:
            raise wrap_sqlite_error(exc) or exc from exc
        if write_lock:
            try:
                db.write_lock = WriteLock(path, fair=fair,
                                          timeout_s=lock_timeout_ms / 1000)
            except BaseException:
                await db.close()
                raise
        return db

    async def close(self) -> None:
        try:
            await asyncio.to_thread(self.raw.close)
        finally:
            if self.write_lock is not None:
                self.write_lock.close()

    def _run_waiting(self, query: str, params: Params) -> None:
        """A statement that may wait, in a worker thread; BEGIN queues for the write lock
        first, and the lock goes once the transaction is over, however it ended."""
        lock = self.write_lock
        if lock is not None and not lock.held and _BEGIN.match(query):
            lock.acquire()
        try:
            self.raw.execute(query, params).close()
        finally:
            if lock is not None and lock.held and not self.raw.in_transaction:
                lock.release()

    def let_lock_go_if_done(self) -> None:
        """The write lock goes if the transaction is over though no waiting statement ended
        it: SQLite may roll a whole transaction back by itself (an I/O error, a full disk) on
        any statement, and an idle process must not keep the others out. The store's writer
        calls it once a batch has ended, however it ended."""
        lock = self.write_lock
        if lock is not None and lock.held and not self.raw.in_transaction:
            lock.release()

    @property
    def in_transaction(self) -> bool:
        return self.raw.in_transaction

    @property
    def total_changes(self) -> int:
        """Rows inserted, updated or deleted on this connection since it opened, by
        statements that completed (one that failed left none: SQLite undid it)."""
        return self.raw.total_changes

    async def execute(self, query: str, params: Params = ()) -> None:
        try:
            # Each cursor is closed where it ran: a PRAGMA that returns a row and is left
            # open keeps its statement active, and the next COMMIT then fails.
            if _WAITS.match(query):
                await asyncio.to_thread(self._run_waiting, query, params)
            else:
                self.raw.execute(query, params).close()
        except sqlite3.Error as exc:
            raise wrap_sqlite_error(exc) or exc from exc

    async def executescript(self, script: str) -> None:
        try:
            await asyncio.to_thread(lambda: self.raw.executescript(script).close())
        except sqlite3.Error as exc:
            raise wrap_sqlite_error(exc) or exc from exc

    async def fetchall(self, query: str, params: Params = ()) -> list[dict[str, Any]]:
        try:
            cursor = self.raw.execute(query, params)
            try:
                return [dict(row) for row in cursor.fetchall()]
            finally:
                cursor.close()
        except sqlite3.Error as exc:
            raise wrap_sqlite_error(exc) or exc from exc

    async def iterate(
        self, query: str, params: Params = (), batch_size: int = 500
    ) -> AsyncIterator[dict[str, Any]]:
        try:
            cursor = self.raw.execute(query, params)
            while rows := cursor.fetchmany(batch_size):
                for row in rows:
                    yield dict(row)
        except sqlite3.Error as exc:
            raise wrap_sqlite_error(exc) or exc from exc


# Statements that may wait on a lock or on the disk; ROLLBACK TO a savepoint does not.
_WAITS = re.compile(r"\s*(BEGIN|COMMIT|END|PRAGMA|VACUUM|ROLLBACK(?!\s+TO))", re.IGNORECASE)
_BEGIN = re.compile(r"\s*BEGIN", re.IGNORECASE)
