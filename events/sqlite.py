"""The SQLite event store: one writer task, group commit, append-only triggers, hash chain."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from events.codec import EventCodec
from events.database import Database, InlineDatabase
from events.errors import ConcurrencyError, StoreError, StoreUnavailable, UniqueViolation
from events.event import Event, Metadata, RecordedEvent
from events.hashing import GENESIS_HASH
from events.projection import META_SCHEMA, Projector, drop_tables, refold, stale_projectors
from events.rows import Clock, StoredRow, seal, utc_now
from events.sql import SqlDatabase
from events.store import SqlSession

T = TypeVar("T")
log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    position       INTEGER PRIMARY KEY CHECK (position >= 1),
    stream_id      TEXT    NOT NULL,
    version        INTEGER NOT NULL CHECK (version >= 1),
    type_name      TEXT    NOT NULL,
    schema_version INTEGER NOT NULL,
    data           TEXT    NOT NULL,
    metadata       TEXT    NOT NULL,
    recorded_at    TEXT    NOT NULL,
    hash           TEXT    NOT NULL,
    UNIQUE (stream_id, version)
);
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
"""

_ROW_COLUMNS = "position, stream_id, version, type_name, schema_version, data, metadata, " \
               "recorded_at, hash"
# A batch is bounded so that one slow client cannot hold the write lock for long.
MAX_BATCH = 64


def sql_statements(script: str) -> list[str]:
    """A script split into whole statements (a trigger's body keeps its own semicolons):
    executescript would COMMIT first, and the schema must share one transaction."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if current.strip() and sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    assert not current.strip(), f"an unfinished statement: {current[:80]!r}"
    return statements


def row_from_db(row: dict[str, Any]) -> StoredRow:
    return StoredRow(
        position=row["position"], stream_id=row["stream_id"], version=row["version"],
        type_name=row["type_name"], schema_version=row["schema_version"],
        data_json=row["data"], metadata_json=row["metadata"],
        recorded_at=row["recorded_at"], hash=row["hash"],
    )


class SQLiteSession:
    """A write in progress: appends, projections and control-plane rows share one transaction."""

    def __init__(self, store: SQLiteEventStore, db: Database) -> None:
        self._store = store
        self.db = db
        self._head: tuple[int, str] | None = None

    async def stream_version(self, stream_id: str) -> int:
        row = await self.db.fetchone(
            "SELECT COALESCE(MAX(version), 0) AS v FROM events WHERE stream_id = ?", (stream_id,))
        return int(row["v"]) if row else 0

    async def read_stream(self, stream_id: str) -> list[RecordedEvent]:
        rows = await self.db.fetchall(
            f"SELECT {_ROW_COLUMNS} FROM events WHERE stream_id = ? ORDER BY version",
            (stream_id,))
        return [row_from_db(r).to_recorded(self._store.codec) for r in rows]

    async def _load_head(self) -> tuple[int, str]:
        if self._head is None:
            row = await self.db.fetchone(
                "SELECT position, hash FROM events ORDER BY position DESC LIMIT 1")
            self._head = (row["position"], row["hash"]) if row else (0, GENESIS_HASH)
        return self._head

    async def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[Event],
        metadata: Metadata = Metadata(),  # noqa: B008 - frozen, so sharing is safe
    ) -> list[RecordedEvent]:
        if await self.stream_version(stream_id) != expected_version:
            raise ConcurrencyError(stream_id, expected_version)
        position, previous_hash = await self._load_head()
        now = self._store.clock()
        recorded = []
        for offset, event in enumerate(events, start=1):
            position += 1
            row = seal(self._store.codec, previous_hash=previous_hash, position=position,
                       stream_id=stream_id, version=expected_version + offset, event=event,
                       metadata=metadata, recorded_at=now)
            try:
                await self.db.execute(
                    f"INSERT INTO events ({_ROW_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (row.position, row.stream_id, row.version, row.type_name,
                     row.schema_version, row.data_json, row.metadata_json, row.recorded_at,
                     row.hash))
            except UniqueViolation as exc:
                raise ConcurrencyError(stream_id, expected_version) from exc
            previous_hash = row.hash
            self._head = (position, previous_hash)
            # Built from the stored text, so projections see what a replay will see.
            event_in_log = RecordedEvent(
                position=position, stream_id=stream_id, version=row.version,
                event=self._store.codec.decode(row.type_name, row.schema_version,
                                               row.data_json),
                metadata=metadata, recorded_at=datetime.fromisoformat(row.recorded_at),
                hash=row.hash)
            for projector in self._store.projectors:
                await projector.apply(self.db, event_in_log)
            recorded.append(event_in_log)
        return recorded


@dataclass
class _Job:
    work: Callable[[SqlSession], Awaitable[Any]]
    future: asyncio.Future[Any] = field(default_factory=lambda: asyncio.get_running_loop()
                                        .create_future())


class SQLiteEventStore:
    """The event log in one SQLite file.

    Every write goes through one writer task that takes jobs from a queue and commits up to
    MAX_BATCH of them in one transaction (group commit), each in its own savepoint so one
    failing job does not undo the others. `transact` returns only after COMMIT.
    """

    def __init__(
        self,
        path: str | Path,
        codec: EventCodec,
        projectors: Sequence[Projector] = (),
        *,
        synchronous: Literal["FULL", "NORMAL", "OFF"] = "FULL",
        control_schema: str = "",
        clock: Clock = utc_now,
    ) -> None:
        self.path = Path(path)
        self.codec = codec
        self.projectors = tuple(projectors)
        self.synchronous = synchronous
        self.control_schema = control_schema
        self.clock = clock
        self._writer: Database | None = None
        self.reader: Database | None = None
        self._queue: asyncio.Queue[_Job | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        self._writer = await InlineDatabase.connect_inline(self.path)
        try:
            await self._writer.execute("PRAGMA journal_mode = WAL")
            await self._writer.execute(f"PRAGMA synchronous = {self.synchronous}")
            await self.create_schema(self._writer)
            self.reader = await Database.connect(self.path)
        except BaseException:
            # An open connection keeps its worker thread, and so the process, alive.
            await self.close()
            raise
        self._task = asyncio.create_task(self._write_loop(), name="event-store-writer")

    async def create_schema(self, db: Database) -> None:
        """Idempotent. In one transaction: the tables, and the projections whose version
        changed (or was never recorded) dropped, recreated and folded from the log."""
        await db.execute("BEGIN IMMEDIATE")
        try:
            for statement in sql_statements("\n".join([SCHEMA, self.control_schema,
                                                       META_SCHEMA])):
                await db.execute(statement)
            stale = await stale_projectors(db, self.projectors)
            await drop_tables(db, stale)
            for projector in self.projectors:
                for statement in sql_statements(projector.schema):
                    await db.execute(statement)
            if stale:
                folded = await refold(db, stale, self.codec, self._iterate_rows(db, 1))
                log.info("rebuilt projections %s from %d events",
                         ", ".join(p.name for p in stale), folded)
            await db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                with contextlib.suppress(sqlite3.Error, StoreError):
                    await db.execute("ROLLBACK")
            raise

    async def close(self) -> None:
        try:
            if self._task is not None:
                await self._queue.put(None)
                await asyncio.shield(self._task)
        finally:
            self._task = None
            while not self._queue.empty():  # jobs queued behind the stop: fail, never hang
                late = self._queue.get_nowait()
                if late is not None and not late.future.done():
                    late.future.set_exception(StoreUnavailable("the event store is closed"))
            for db in (self._writer, self.reader):
                if db is not None:
                    await db.close()
            self._writer = self.reader = None

    # -- writes ----------------------------------------------------------------------------

    async def transact(self, work: Callable[[SqlSession], Awaitable[T]]) -> T:
        if self._task is None or self._task.done():
            raise StoreUnavailable("the event store is not open")
        job = _Job(work)
        # The job runs to the end even if the caller goes away; its error is then dropped.
        job.future.add_done_callback(lambda f: f.cancelled() or f.exception())
        await self._queue.put(job)
        result: T = await asyncio.shield(job.future)
        return result

    async def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[Event],
        metadata: Metadata = Metadata(),  # noqa: B008
    ) -> list[RecordedEvent]:
        async def work(session: SqlSession) -> list[RecordedEvent]:
            return await session.append(stream_id, expected_version, events, metadata)

        return await self.transact(work)

    async def _write_loop(self) -> None:
        while True:
            job = await self._queue.get()
            if job is None:
                return
            batch = [job]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                more = self._queue.get_nowait()
                if more is None:
                    await self._commit_batch(batch)
                    return
                batch.append(more)
            await self._commit_batch(batch)

    async def _commit_batch(self, batch: list[_Job]) -> None:
        db = self._writer
        assert db is not None, "writer used after close"
        outcomes: list[tuple[_Job, Any, BaseException | None]] = []
        error: BaseException | None
        try:
            await db.execute("BEGIN IMMEDIATE")
            for job in batch:
                outcomes.append(await self._run_job(db, job))
            await db.execute("COMMIT")
        except Exception as exc:  # the transaction as a whole failed: nothing was written
            if db.in_transaction:  # SQLite may have rolled back itself (disk full)
                with contextlib.suppress(sqlite3.Error, StoreError):
                    await db.execute("ROLLBACK")
            error = exc if isinstance(exc, StoreError) else StoreUnavailable(str(exc))
            log.warning("write batch of %d failed: %s", len(batch), error)
            outcomes = [(job, None, error) for job in batch]
        for job, result, error in outcomes:
            if job.future.done():
                continue
            if error is None:
                job.future.set_result(result)
            else:
                job.future.set_exception(error)

    async def _run_job(self, db: Database, job: _Job) -> tuple[_Job, Any, BaseException | None]:
        await db.execute("SAVEPOINT job")
        try:
            result = await job.work(SQLiteSession(self, db))
        except Exception as exc:
            if not db.in_transaction or (isinstance(exc, StoreError) and not isinstance(
                    exc, ConcurrencyError)):
                raise  # the whole transaction is lost or the store is failing: fail the batch
            await db.execute("ROLLBACK TO job")
            await db.execute("RELEASE job")
            return job, None, exc
        await db.execute("RELEASE job")
        return job, result, None

    async def rebuild_projections(self) -> int:
        """Empty every projection table and fold the whole log into them again."""

        async def work(session: SqlSession) -> int:
            for projector in self.projectors:
                for table in projector.tables:
                    await session.db.execute(f"DELETE FROM {table}")
            count = 0
            async for row in self._iterate_rows(session.db, 1):
                recorded = row.to_recorded(self.codec)
                for projector in self.projectors:
                    await projector.apply(session.db, recorded)
                count += 1
            return count

        return await self.transact(work)

    # -- reads -----------------------------------------------------------------------------

    def read_db(self) -> Database:
        """The read connection; reads never wait behind the writer (WAL)."""
        if self.reader is None:
            raise StoreUnavailable("the event store is not open")
        return self.reader

    @staticmethod
    async def _iterate_rows(
        db: SqlDatabase, from_position: int, batch_size: int = 500
    ) -> AsyncIterator[StoredRow]:
        # Pages by position rather than one cursor, so no read holds a snapshot for long.
        position = from_position
        while True:
            rows = await db.fetchall(
                f"SELECT {_ROW_COLUMNS} FROM events WHERE position >= ? "
                "ORDER BY position LIMIT ?", (position, batch_size))
            for row in rows:
                yield row_from_db(row)
            if len(rows) < batch_size:
                return
            position = rows[-1]["position"] + 1

    def read_rows(self, from_position: int = 1) -> AsyncIterator[StoredRow]:
        """The raw stored rows, for the audit that verifies their hashes."""
        return self._iterate_rows(self.read_db(), from_position)

    async def read_all(self, from_position: int = 1) -> AsyncIterator[RecordedEvent]:
        async for row in self._iterate_rows(self.read_db(), from_position):
            yield row.to_recorded(self.codec)

    async def read_stream(
        self, stream_id: str, from_version: int = 1
    ) -> AsyncIterator[RecordedEvent]:
        version = from_version
        while True:  # by pages, like _iterate_rows: no cursor stays open between awaits
            rows = await self.read_db().fetchall(
                f"SELECT {_ROW_COLUMNS} FROM events WHERE stream_id = ? AND version >= ? "
                "ORDER BY version LIMIT 500", (stream_id, version))
            for row in rows:
                yield row_from_db(row).to_recorded(self.codec)
            if len(rows) < 500:
                return
            version = rows[-1]["version"] + 1

    async def head_position(self) -> int:
        row = await self.read_db().fetchone("SELECT COALESCE(MAX(position), 0) AS p FROM events")
        return int(row["p"]) if row else 0

    async def integrity_problem(self, bounded: bool = False) -> str | None:
        """What is wrong with the file's pages (PRAGMA quick_check), or None when sound.

        quick_check reads every page (1.3 s on a 550 MB file): `bounded` checks only what
        stays flat in the file's size — the header and schema can be read, and the file is
        as long as its header says (a truncated or overwritten start shows there)."""
        if bounded:
            db = self.read_db()
            await db.fetchall("SELECT name FROM sqlite_master")
            pages = await db.fetchone("PRAGMA page_count")
            size = await db.fetchone("PRAGMA page_size")
            expected = int(next(iter(pages.values()))) * int(next(iter(size.values()))) \
                if pages and size else 0
            actual = os.path.getsize(self.path)  # noqa: ASYNC240 - one stat, no wait
            # WAL frames not yet checkpointed may make the header's count run ahead.
            wal = os.path.exists(f"{self.path}-wal")  # noqa: ASYNC240 - one stat
            return None if actual >= expected or wal else (
                f"the database file is damaged: {actual} bytes, its header says {expected}")
        rows = await self.read_db().fetchall("PRAGMA quick_check")
        found = [next(iter(row.values())) for row in rows]
        return None if found == ["ok"] else f"the database file is damaged: {found[:3]}"
