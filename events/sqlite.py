"""The SQLite event store: one writer task, group commit, append-only triggers, hash chain."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

from events.codec import EventCodec
from events.database import Database, InlineDatabase
from events.errors import ConcurrencyError, StoreError, StoreUnavailable
from events.generation import SharedGeneration
from events.projection import META_SCHEMA, Projector, drop_tables, refold, stale_projectors
from events.rows import Clock, utc_now
from events.sql import Params
from events.sql_log import BatchMemo, SqlLogReads, SqlLogSession, iterate_rows
from events.write_lock import LockStats
from events.writer import GroupCommit, Job, JobFailed, Outcome, settle

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


class PointReader(InlineDatabase):
    """Reads of one row by key on the event loop's thread (point_read_db). SQLite answers
    a WAL read at once unless the file is being recovered or its log reset; then, rather
    than block the loop (its busy timeout is 0), the read goes to `fallback`, the store's
    threaded reader, which waits as every other read does."""

    fallback: Database | None = None

    async def fetchall(self, query: str, params: Params = ()) -> list[dict[str, Any]]:
        try:
            return await super().fetchall(query, params)
        except StoreUnavailable:
            if self.fallback is None:
                raise
            return await self.fallback.fetchall(query, params)


class SQLiteSession(SqlLogSession):
    """A write in progress on the SQLite file, under BEGIN IMMEDIATE."""


class SQLiteEventStore(GroupCommit, SqlLogReads):
    """The event log in one SQLite file.

    Every write goes through one writer task that takes jobs from a queue and commits up to
    MAX_BATCH of them in one transaction (group commit), where one failing job does not undo
    the others (`_commit`). `transact` returns only after COMMIT.
    """

    @property
    def max_batch(self) -> int:
        return MAX_BATCH  # the module's MAX_BATCH, read each time: a bench turns group commit off

    def __init__(
        self,
        path: str | Path,
        codec: EventCodec,
        projectors: Sequence[Projector] = (),
        *,
        synchronous: Literal["FULL", "NORMAL", "OFF"] = "FULL",
        control_schema: str = "",
        clock: Clock = utc_now,
        write_queue: bool = True,
        busy_timeout_ms: int = 10000,
        lock_timeout_ms: int = 10000,
    ) -> None:
        self.path = Path(path)
        self.codec = codec
        self.projectors = tuple(projectors)
        self.synchronous = synchronous
        self.control_schema = control_schema
        self.clock = clock
        # Processes on one file queue for its write lock (events/write_lock.py); SQLite's
        # busy timeout stays as the fallback for a writer that does not queue (sqlite3 CLI).
        self.write_queue = write_queue
        self.busy_timeout_ms = busy_timeout_ms
        # How long a write waits for another process's turn at the lock before it fails
        # (StoreUnavailable: a 503 to retry), so a stopped process cannot hang the others.
        self.lock_timeout_ms = lock_timeout_ms
        self._writer: InlineDatabase | None = None
        # Committed transactions, their jobs, and the time their jobs' work held the lock
        # (BEGIN done .. COMMIT sent): for the write lock's line at close.
        self._batches = self._jobs = 0
        self._work_s = 0.0
        self.reader: Database | None = None
        self._point_reader: PointReader | None = None
        self._background: Database | None = None
        super().__init__()

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        self._writer = await InlineDatabase.connect_inline(
            self.path, busy_timeout_ms=self.busy_timeout_ms, write_lock=self.write_queue,
            lock_timeout_ms=self.lock_timeout_ms)
        try:
            await self._writer.execute("PRAGMA journal_mode = WAL")
            await self._writer.execute(f"PRAGMA synchronous = {self.synchronous}")
            await self.create_schema(self._writer)
            self.reader = await Database.connect(self.path)
            self._background = await Database.connect(self.path)
            self._point_reader = await PointReader.connect_inline(self.path,
                                                                  busy_timeout_ms=0)
            self._point_reader.fallback = self.reader
        except BaseException:
            # An open connection keeps its worker thread, and so the process, alive.
            await self.close()
            raise
        self._start_writer("event-store-writer")

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
                folded = await refold(db, stale, self.codec, iterate_rows(db, 1))
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
            await self._stop_writer()
        finally:
            if self._writer is not None and self._writer.write_lock is not None:
                log.info("%s: %s; %s jobs in %s transactions, their work %.2f ms a "
                         "transaction", self.path.name, self._writer.write_lock.summary(),
                         f"{self._jobs:,}", f"{self._batches:,}",
                         self._work_s / max(1, self._batches) * 1e3)
            for db in (self._writer, self.reader, self._point_reader, self._background):
                if db is not None:
                    await db.close()
            self._writer = self.reader = self._point_reader = self._background = None

    @property
    def write_lock_stats(self) -> LockStats | None:
        """This process's figures for the write lock's queue (None: no queue, or closed)."""
        lock = self._writer.write_lock if self._writer is not None else None
        return lock.stats if lock is not None else None

    # -- writes ----------------------------------------------------------------------------

    async def _commit(self, batch: list[Job]) -> None:
        """Commit a batch in one transaction; a job that fails with its own error fails
        alone, and the others commit.

        Jobs run first without savepoints: SAVEPOINT and RELEASE cost a prediction about a
        tenth of its CPU, most of it SQLite copying each page a job first touches into the
        statement journal. A job that fails before it changed a row (a stale version, a
        refused operation: the usual failures) needs nothing undone. One that fails after
        it changed rows takes the transaction down: it is rolled back, the job fails alone,
        and the others run again in a fresh transaction, each in a savepoint, so a batch
        runs at most twice (each job is a function of the database state, as on
        PostgreSQL, and nothing of the rolled-back try was written)."""
        db = self._writer
        assert db is not None, "writer used after close"
        outcomes: list[Outcome] = []
        jobs, guarded = batch, False
        try:
            while jobs:
                try:
                    await self._run_batch(db, jobs, guarded, outcomes)
                    jobs = []
                except JobFailed as failed:
                    # Its own error stays true however the ROLLBACK ends: nothing of the
                    # transaction commits. Should it fail, the others fail with the store.
                    outcomes.append((jobs[failed.index], None, failed.error))
                    jobs = jobs[:failed.index] + jobs[failed.index + 1:]
                    guarded = True
                    await db.execute("ROLLBACK")  # the job's rows and the others' with them
        except Exception as exc:  # the transaction as a whole failed: nothing was written
            if db.in_transaction:  # SQLite may have rolled back itself (disk full)
                with contextlib.suppress(sqlite3.Error, StoreError):
                    await db.execute("ROLLBACK")
            error = exc if isinstance(exc, StoreError) else StoreUnavailable(str(exc))
            log.warning("write batch of %d failed: %s", len(jobs), error)
            outcomes += [(job, None, error) for job in jobs]
        finally:
            db.let_lock_go_if_done()  # however the transaction ended, an idle writer has none
        settle(outcomes)

    async def _run_batch(self, db: InlineDatabase, jobs: list[Job], guarded: bool,
                         outcomes: list[Outcome]) -> None:
        """One try at the batch: BEGIN, the jobs (in savepoints when `guarded`), COMMIT;
        their outcomes are added to `outcomes` only once the COMMIT is done."""
        await db.execute("BEGIN IMMEDIATE")
        if not guarded:  # the first try: `jobs` is the caller's batch, counted as one
            self._join_waiting(jobs)
        begun = time.perf_counter()
        memo = BatchMemo()  # the head and what else the batch's jobs learn, read once
        tried = [await self._run_job(db, index, job, memo, guarded)
                 for index, job in enumerate(jobs)]
        await memo.flush(db)  # the batch's counter rows: should that fail, the batch does
        worked = time.perf_counter()
        await db.execute("COMMIT")
        outcomes += tried
        self._batches += 1
        self._jobs += len(jobs)
        self._work_s += worked - begun

    def _join_waiting(self, batch: list[Job]) -> None:
        """Jobs queued while BEGIN waited (for another process's turn at the lock) join
        the batch: one commit, one fsync for all of them, instead of a transaction of their
        own after this one. They run as any job of the batch does."""
        while len(batch) < self.max_batch and not self._queue.empty():
            job = self._queue.get_nowait()
            if job is None:  # the stop: it stays the last thing the writer takes
                self._queue.put_nowait(None)
                return
            batch.append(job)

    async def _run_job(self, db: InlineDatabase, index: int, job: Job, memo: BatchMemo,
                       guarded: bool) -> Outcome:
        if guarded:
            await db.execute("SAVEPOINT job")
        changes, mark = db.total_changes, memo.mark()
        try:
            result = await job.work(SQLiteSession(self, db, memo))
        except Exception as exc:
            if not db.in_transaction or (isinstance(exc, StoreError) and not isinstance(
                    exc, ConcurrencyError)):
                raise  # the whole transaction is lost or the store is failing: fail the batch
            if guarded:
                await db.execute("ROLLBACK TO job")
                await db.execute("RELEASE job")
            elif db.total_changes != changes:  # rows of its own, and no savepoint to undo them
                raise JobFailed(index, exc) from exc
            memo.restore(mark)  # what the job taught the batch went with its rows
            return job, None, exc
        if guarded:
            await db.execute("RELEASE job")
        return job, result, None

    # -- reads -----------------------------------------------------------------------------

    def credential_generation(self, owner: str) -> SharedGeneration | None:
        """The word credential caches check: a mapped file beside the database, shared by
        every process on it, whatever its `owner` (None where no file can be made there:
        then nothing is cached)."""
        return SharedGeneration.beside(self.path, "-credentials.gen")

    def read_db(self) -> Database:
        """The read connection; reads never wait behind the writer (WAL)."""
        if self.reader is None:
            raise StoreUnavailable("the event store is not open")
        return self.reader

    def background_db(self) -> Database:
        """A read connection of its own (a thread of its own), for reads over whole tables:
        the verifier's check (1.9 s at 4M postings) and the admin ledger totals. On
        read_db() every request's read waited behind them."""
        if self._background is None:
            raise StoreUnavailable("the event store is not open")
        return self._background

    def point_read_db(self) -> Database:
        """For a read of one row by key on the hot path (a balance): on the event loop's
        thread, without read_db()'s trip to a worker thread (80-120 µs, more than the
        read). The same committed snapshot read_db() gives (a connection of its own, WAL)."""
        if self._point_reader is None:
            raise StoreUnavailable("the event store is not open")
        return self._point_reader

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
