"""The PostgreSQL event store: the SQLite store's contract, for many processes on one server.

One writer task per process commits batches of jobs (group commit). Every write transaction
first takes one advisory lock, the global serialization point: transactions of all processes
then run one after another, so positions are gapless in commit order, one hash chain runs
through all of them, and what a job reads (balances, `MAX(id) + 1`) cannot change under it
before it commits. The lock is taken when the transaction begins, not at its first append,
because the ledger decides (and picks ids) before it appends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import TypeVar

import asyncpg  # type: ignore[import-untyped]  # ships no type hints

from events.codec import EventCodec
from events.errors import ConcurrencyError, StoreError, StoreUnavailable, UniqueViolation
from events.pg_generation import PgGeneration
from events.pgdatabase import PgDatabase, portable_ddl, wrap
from events.projection import META_SCHEMA, Projector, drop_tables, refold, stale_projectors
from events.rows import Clock, utc_now
from events.sql import SqlDatabase
from events.sql_log import BatchMemo, SqlLogReads, SqlLogSession, iterate_rows
from events.writer import GroupCommit, Job, JobFailed, JobPoisoned, Outcome, settle

T = TypeVar("T")
log = logging.getLogger(__name__)

# The key of the one advisory lock that orders all writes to a database.
WRITE_LOCK = 0x6D6C63_0001
# Savepoints beyond 64 per transaction overflow PostgreSQL's subtransaction cache.
MAX_BATCH = 32

# Prepared statements the writer keeps: each mix of coalesced writes is a statement of its own
# (asyncpg's default of 100 would evict some and parse them again, a round trip each).
WRITER_STATEMENTS = 1024


async def _keep_session(connection: asyncpg.Connection) -> None:
    """The pool's reset when a read gives its connection back: none. asyncpg's default sends
    `RESET ALL; UNLISTEN *; CLOSE ALL; SELECT pg_advisory_unlock_all()`, one round trip per
    read, for session state our reads never create (one statement each: no SET, no cursor,
    no LISTEN, no session lock). An open transaction is still rolled back by asyncpg."""


SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    position       BIGINT  PRIMARY KEY CHECK (position >= 1),
    stream_id      TEXT    NOT NULL,
    version        BIGINT  NOT NULL CHECK (version >= 1),
    type_name      TEXT    NOT NULL,
    schema_version INTEGER NOT NULL,
    data           TEXT    NOT NULL,  -- the exact hashed text: jsonb would reorder keys
    metadata       TEXT    NOT NULL,
    recorded_at    TEXT    NOT NULL,
    hash           TEXT    NOT NULL,
    UNIQUE (stream_id, version)
);
CREATE OR REPLACE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'events are append-only'; END $$;
CREATE OR REPLACE TRIGGER events_no_update BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_append_only();
-- UPDATE and DELETE triggers do not fire on TRUNCATE.
CREATE OR REPLACE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();
"""


class PgSession(SqlLogSession):
    """A write in progress on PostgreSQL, under the write lock taken at BEGIN."""


class PostgresEventStore(GroupCommit, SqlLogReads):
    """The event log in one PostgreSQL database, shared by any number of processes.

    Reads go through a bounded pool, one statement each. Writes go through one writer task
    and its own connection, re-opened at the next batch when the server went away.
    """

    @property
    def max_batch(self) -> int:
        return MAX_BATCH  # the module's MAX_BATCH: under PostgreSQL's 64 cached savepoints

    def __init__(
        self,
        dsn: str,
        codec: EventCodec,
        projectors: Sequence[Projector] = (),
        *,
        control_schema: str = "",
        clock: Clock = utc_now,
        min_pool: int = 1,
        max_pool: int = 8,
        connect_timeout_s: float = 5.0,
        command_timeout_s: float = 10.0,
        lock_timeout_ms: int = 5_000,
        statement_timeout_ms: int = 10_000,
        idle_in_transaction_timeout_ms: int = 30_000,
    ) -> None:
        self.dsn = dsn
        self.codec = codec
        self.projectors = tuple(projectors)
        self.control_schema = control_schema
        self.clock = clock
        self.min_pool, self.max_pool = min_pool, max_pool
        self.connect_timeout_s = connect_timeout_s
        self.command_timeout_s = command_timeout_s
        self.server_settings = {
            "lock_timeout": str(lock_timeout_ms),
            "statement_timeout": str(statement_timeout_ms),
            "idle_in_transaction_session_timeout": str(idle_in_transaction_timeout_ms),
        }
        self.pool: asyncpg.Pool | None = None
        self._writer: asyncpg.Connection | None = None
        super().__init__()

    # -- lifecycle -------------------------------------------------------------------------

    async def _connect(self) -> asyncpg.Connection:
        try:
            conn: asyncpg.Connection = await asyncpg.connect(
                self.dsn, timeout=self.connect_timeout_s,
                command_timeout=self.command_timeout_s, server_settings=self.server_settings,
                statement_cache_size=WRITER_STATEMENTS)
        except Exception as exc:
            raise wrap(exc) from exc
        return conn

    async def connect(self) -> asyncpg.Connection:
        """A connection of the caller's own, with the store's settings (a LISTENer's)."""
        return await self._connect()

    def credential_generation(self, owner: str) -> PgGeneration:
        """The word credential caches check (events/pg_generation.py); start() it to serve.
        `owner` is the process's lease owner. Its tables come with the ledger's control
        schema (ledger/store.py), beside the owner leases'."""
        return PgGeneration(self.connect, self.read_db, watcher=owner)

    async def open(self) -> None:
        try:
            self._writer = await self._connect()
            await self.create_schema(PgDatabase(self._writer))
            self.pool = await asyncpg.create_pool(
                self.dsn, min_size=self.min_pool, max_size=self.max_pool,
                timeout=self.connect_timeout_s, command_timeout=self.command_timeout_s,
                server_settings=self.server_settings, reset=_keep_session)
        except BaseException as exc:
            await self.close()
            if isinstance(exc, Exception):
                raise wrap(exc) from exc
            raise
        self._start_writer("pg-event-store-writer")

    async def create_schema(self, db: SqlDatabase) -> None:
        """Idempotent; under the write lock, so processes starting together do not collide."""
        script = "\n".join(p.schema for p in self.projectors)
        await db.execute("BEGIN")
        try:
            await db.execute(f"SELECT pg_advisory_xact_lock({WRITE_LOCK})")
            await db.executescript(SCHEMA)
            await db.executescript(portable_ddl("\n".join([self.control_schema, META_SCHEMA])))
            # A projector whose version changed gets its tables rebuilt from the log.
            stale = await stale_projectors(db, self.projectors)
            await drop_tables(db, stale)
            await db.executescript(portable_ddl(script))
            if stale:
                folded = await refold(db, stale, self.codec, iterate_rows(db, 1))
                log.info("rebuilt projections %s from %d events",
                         ", ".join(p.name for p in stale), folded)
            await db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                with contextlib.suppress(Exception):
                    await db.execute("ROLLBACK")
            raise

    async def close(self) -> None:
        try:
            await self._stop_writer()
        finally:
            writer, pool, self._writer, self.pool = self._writer, self.pool, None, None
            if writer is not None:
                with contextlib.suppress(Exception):
                    await writer.close(timeout=self.connect_timeout_s)
                writer.terminate()
            if pool is not None:
                try:
                    await asyncio.wait_for(pool.close(), self.connect_timeout_s)
                except Exception:
                    pool.terminate()

    # -- writes ----------------------------------------------------------------------------

    async def _commit(self, batch: list[Job]) -> None:
        """Commit a batch; a job that takes the transaction down fails alone, and the others
        run again without it (each job is a function of the database state, and nothing of
        the failed transaction was written).

        A batch runs first without savepoints (two round trips fewer a job); once a job of
        it has failed, the rest run again each in a savepoint, so a batch of failing jobs
        runs at most twice (once more for each job that also took the connection down)."""
        savepoints = False
        batch = list(batch)  # jobs are taken out of our copy: the caller counts the batch
        while batch:
            try:
                outcomes = await self._run_batch(batch, savepoints)
            except JobPoisoned as poisoned:
                error = poisoned.error
                culprit = batch.pop(poisoned.index)
                if not isinstance(poisoned, JobFailed):
                    log.warning("a job failed its batch (%s); %d others run again", error,
                                len(batch))
                savepoints = True
                # The others run again, on a new connection if this one went (the next try
                # makes it; if it cannot, they fail with the store). Never with the
                # culprit's error: one user's refused charge is not another's.
                outcomes = [(culprit, None, error)]
            except Exception as exc:  # BEGIN or COMMIT failed: no job to blame
                wrapped = wrap(exc)
                error = wrapped if isinstance(wrapped, StoreError) else StoreUnavailable(
                    str(exc))
                log.warning("write batch of %d failed: %s", len(batch), error)
                if len(batch) > 1 and self._writer_alive() and not isinstance(
                        error, StoreUnavailable):
                    for job in batch:  # one by one, so a poisoned COMMIT fails only its job
                        await self._commit([job])
                    return
                outcomes = [(job, None, error) for job in batch]
                batch = []
            else:
                batch = []
            settle(outcomes)

    def _writer_alive(self) -> bool:
        return self._writer is not None and not self._writer.is_closed()

    async def _run_batch(self, batch: list[Job], savepoints: bool) -> list[Outcome]:
        if not self._writer_alive():  # the server restarted, or the connection broke
            if self._writer is not None:
                self._writer.terminate()
            self._writer = None
            self._writer = await self._connect()
        assert self._writer is not None
        db = PgDatabase(self._writer)
        outcomes: list[Outcome] = []
        try:
            # One round trip: BEGIN and the lock. Reads come in later statements, so they
            # see every transaction that committed before the lock was granted.
            await db.execute(f"BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})")
            memo = BatchMemo()  # the head and what else the batch's jobs learn, read once
            if len(batch) == 1:  # the transaction is the job's own: no savepoint to keep
                outcomes.append(await self._run_alone(db, batch[0], memo))
                if outcomes[0][2] is not None:  # rolled back already
                    return outcomes
            elif not savepoints:
                for index, job in enumerate(batch):
                    outcomes.append(await self._run_unguarded(db, index, job, memo))
            else:
                try:
                    await db.execute("SAVEPOINT job")  # later ones ride on the job before's
                except Exception as exc:
                    raise JobPoisoned(0, wrap(exc)) from exc
                for index, job in enumerate(batch):
                    outcomes.append(await self._run_job(db, index, job, memo,
                                                        more=index + 1 < len(batch)))
            # The batch's counter rows, queued: they go with COMMIT's flush of the queue, and
            # should they fail, the batch does (retried job by job, as a failed COMMIT is).
            await memo.flush(db)
            await db.execute("COMMIT")
        except BaseException:
            if self._writer_alive() and db.in_transaction:
                try:
                    await db.execute("ROLLBACK")
                except Exception:  # a connection that cannot roll back is of no more use:
                    self._writer.terminate()  # the batch's other jobs fail, the next reconnects
            raise
        return outcomes

    async def _run_alone(self, db: PgDatabase, job: Job, memo: BatchMemo) -> Outcome:
        """Run a batch's only job: on its own error the whole transaction rolls back (two
        round trips fewer than a savepoint's SAVEPOINT and RELEASE), and nothing is kept."""
        try:
            result = await job.work(PgSession(self, db, memo))
            await memo.flush(db)  # the batch's counter rows (its own), in the same trip:
            await db.flush()  # its coalesced writes: what they raise is the job's own error
        except Exception as exc:
            own = _own_error(exc)
            if not own or not self._writer_alive():
                raise JobPoisoned(0, exc) from exc
            try:
                await db.execute("ROLLBACK")
            except Exception:  # nothing of the job was committed: its error is still true
                assert self._writer is not None
                self._writer.terminate()  # the next batch reconnects
            return job, None, exc
        return job, result, None

    async def _run_unguarded(self, db: PgDatabase, index: int, job: Job,
                             memo: BatchMemo) -> Outcome:
        """Run one job of a batch without a savepoint: should it fail, the whole transaction
        goes (JobFailed, JobPoisoned) and the batch runs again without it."""
        try:
            result = await job.work(PgSession(self, db, memo))
            await db.flush()  # its coalesced writes: what they raise is the job's own error
        except Exception as exc:
            own = _own_error(exc)
            if own and self._writer_alive():
                raise JobFailed(index, exc) from exc
            raise JobPoisoned(index, exc) from exc
        return job, result, None

    async def _run_job(self, db: PgDatabase, index: int, job: Job, memo: BatchMemo, *,
                       more: bool) -> Outcome:
        """Run one job in the savepoint opened for it. Its end (RELEASE, or ROLLBACK TO and
        RELEASE) and, when `more` jobs follow, the next one's SAVEPOINT go in one round trip:
        should that SAVEPOINT fail, the transaction is lost and this job fails with it, which
        is true (nothing of it is committed)."""
        then = "; SAVEPOINT job" if more else ""
        mark = memo.mark()
        try:
            result = await job.work(PgSession(self, db, memo))
            await db.flush()  # its coalesced writes: what they raise is the job's own error
        except Exception as exc:
            own = _own_error(exc)
            if not own or not self._writer_alive():
                raise JobPoisoned(index, exc) from exc
            try:
                await db.execute("ROLLBACK TO job; RELEASE job" + then)
            except Exception as again:
                raise JobPoisoned(index, exc) from again
            memo.restore(mark)  # what the job taught the batch went with its rows
            return job, None, exc
        try:
            await db.execute("RELEASE job" + then)
        except Exception as exc:
            raise JobPoisoned(index, wrap(exc)) from exc
        return job, result, None

    # -- reads -----------------------------------------------------------------------------

    def read_db(self) -> PgDatabase:
        """The pool: each read takes a connection for one statement."""
        if self.pool is None:
            raise StoreUnavailable("the event store is not open")
        return PgDatabase(self.pool)

    def background_db(self) -> PgDatabase:
        """The pool as well: each read has a connection of its own already."""
        return self.read_db()

    async def integrity_problem(self, bounded: bool = False) -> str | None:
        """None once the server answers: PostgreSQL checks its own pages (data checksums, when
        the cluster has them); the hash chain is verified apart, as on SQLite."""
        await self.read_db().fetchone("SELECT 1")
        return None


def _own_error(exc: BaseException) -> bool:
    """Whether a job's error is its own (its logic, a conflict it met), so that only it
    fails, rather than the store's (a lost connection, a server error): then the batch."""
    return not isinstance(exc, StoreError) or isinstance(
        exc, ConcurrencyError | UniqueViolation)
