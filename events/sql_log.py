"""What the SQLite and PostgreSQL stores share: the `events` table's rows, the append inside a
write transaction, and the paged reads. Both speak the `SqlDatabase` seam, so the SQL is one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from events.codec import EventCodec
from events.errors import ConcurrencyError, UniqueViolation
from events.event import Event, Metadata, RecordedEvent
from events.hashing import GENESIS_HASH
from events.projection import NO_FACTS, Projector, apply_each, project
from events.rows import StoredRow, appended_time, metadata_text, seal_texts, stored_time
from events.sql import SqlDatabase
from events.store import SqlSession
from events.sums import PendingSums, SumsFirst

T = TypeVar("T")

ROW_COLUMNS = ("position, stream_id, version, type_name, schema_version, data, metadata, "
               "recorded_at, hash")
PAGE_ROWS = 500
# Rows per INSERT: 9 parameters each, far below SQLite's 32,766 and PostgreSQL's 65,535.
INSERT_ROWS = 100


def row_from_db(row: dict[str, Any]) -> StoredRow:
    return StoredRow(
        position=row["position"], stream_id=row["stream_id"], version=row["version"],
        type_name=row["type_name"], schema_version=row["schema_version"],
        data_json=row["data"], metadata_json=row["metadata"],
        recorded_at=row["recorded_at"], hash=row["hash"],
    )


class LogOwner(Protocol):
    """What a session needs of its store."""

    codec: EventCodec
    projectors: tuple[Projector, ...]

    def clock(self) -> datetime: ...


@dataclass(frozen=True)
class MemoMark:
    """What a BatchMemo held before a job, to take back if the job is rolled back."""

    head: tuple[int, str] | None
    versions: dict[str, int]
    values: dict[str, Any]
    sums: int


class BatchMemo:
    """What the jobs of one batch (one transaction) learn and hand on to the next: the chain
    head, the versions of the streams appended to, `values` a job keeps for the next jobs
    (the ledger's next task id), and `sums`, the counter rows projectors hold for the batch's
    end (events/sums.py: the store calls `flush` before COMMIT). The store makes sure no
    other writer moves anything meanwhile (SQLite's BEGIN IMMEDIATE, PostgreSQL's write
    lock), so what one job read or wrote still holds for the next. A job rolled back to its
    savepoint takes back what it taught: the store calls `mark()` before each job and
    `restore()` after a rollback. A batch rolled back whole starts again with a new memo."""

    def __init__(self) -> None:
        self.head: tuple[int, str] | None = None
        self.versions: dict[str, int] = {}
        self.values: dict[str, Any] = {}
        self.sums = PendingSums()

    def mark(self) -> MemoMark:
        return MemoMark(self.head, dict(self.versions), dict(self.values), self.sums.mark())

    def restore(self, mark: MemoMark) -> None:
        self.head, self.versions, self.values = mark.head, dict(mark.versions), dict(
            mark.values)
        self.sums.restore(mark.sums)

    async def flush(self, db: SqlDatabase) -> None:
        """The rows held for the batch's end, written: after its last job, before COMMIT."""
        await self.sums.flush(db)


class SqlLogSession:
    """A write in progress: appends, projections and control-plane rows share one transaction.
    The head and the versions appended are read once a batch and kept (BatchMemo)."""

    def __init__(self, store: LogOwner, db: SqlDatabase, batch: BatchMemo) -> None:
        self._store = store
        self.batch = batch  # the store flushes its held rows before COMMIT
        # Its statements see the counter rows the batch holds (they are written first).
        self.db: SqlDatabase = SumsFirst(db, self.batch.sums)
        self.memo = self.batch.values
        self._facts: dict[str, tuple[int, Mapping[str, Any]]] = {}

    def read_in_write(self, stream_id: str, version: int,
                      facts: Mapping[str, Any] | None = None) -> None:
        """What the caller read in this transaction, under its write lock: the stream's
        version as the log holds it (`MAX(version)`, say inside a statement it ran anyway),
        and `facts` of the stream's state at that version, read from projections kept in
        the same transaction as the log, for the projectors of the next append made at that
        version (their `apply_all(db, appended, facts)`; any other append gets none).

        The append then asks the log for the version no more: it still refuses an expected
        version that is not this one (ConcurrencyError), and UNIQUE(stream_id, version)
        still stands behind it. Taken back with a job rolled back to its savepoint, like all
        that the batch memo holds."""
        self.batch.versions.setdefault(stream_id, version)
        if facts is not None:
            self._facts[stream_id] = (version, facts)

    async def stream_version(self, stream_id: str) -> int:
        known = self.batch.versions.get(stream_id)
        if known is not None:  # appended to earlier in this batch: no other writer since
            return known
        row = await self.db.fetchone(
            "SELECT COALESCE(MAX(version), 0) AS v FROM events WHERE stream_id = ?", (stream_id,))
        return int(row["v"]) if row else 0

    async def read_stream(self, stream_id: str) -> list[RecordedEvent]:
        rows = await self.db.fetchall(
            f"SELECT {ROW_COLUMNS} FROM events WHERE stream_id = ? ORDER BY version",
            (stream_id,))
        return [row_from_db(r).to_recorded(self._store.codec) for r in rows]

    async def _load_head(self) -> tuple[int, str]:
        if self.batch.head is None:  # a statement of its own, after the transaction's lock
            row = await self.db.fetchone(
                "SELECT position, hash FROM events ORDER BY position DESC LIMIT 1")
            self.batch.head = (row["position"], row["hash"]) if row else (0, GENESIS_HASH)
        return self.batch.head

    async def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[Event],
        metadata: Metadata = Metadata(),  # noqa: B008 - frozen, so sharing is safe
    ) -> list[RecordedEvent]:
        if await self.stream_version(stream_id) != expected_version:
            raise ConcurrencyError(stream_id, expected_version)
        known = self._facts.pop(stream_id, None)
        facts = known[1] if known is not None and known[0] == expected_version else NO_FACTS
        position, previous_hash = await self._load_head()
        at = stored_time(self._store.clock())
        metadata_json = metadata_text(metadata)  # one append: one metadata, one instant
        rows = []
        for offset, event in enumerate(events, start=1):
            position += 1
            row = seal_texts(self._store.codec, previous_hash=previous_hash,
                             position=position, stream_id=stream_id,
                             version=expected_version + offset, event=event,
                             metadata_json=metadata_json, recorded_at=at)
            rows.append(row)
            previous_hash = row.hash
        for start in range(0, len(rows), INSERT_ROWS):  # one statement for a task's events
            chunk = rows[start:start + INSERT_ROWS]
            try:
                await self.db.execute(
                    f"INSERT INTO events ({ROW_COLUMNS}) VALUES "
                    + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk)),
                    tuple(value for row in chunk for value in (
                        row.position, row.stream_id, row.version, row.type_name,
                        row.schema_version, row.data_json, row.metadata_json,
                        row.recorded_at, row.hash)))
            except UniqueViolation as exc:
                raise ConcurrencyError(stream_id, expected_version) from exc
            self.batch.head = (chunk[-1].position, chunk[-1].hash)
        self.batch.versions[stream_id] = rows[-1].version if rows else expected_version
        recorded, recorded_at, codec = [], appended_time(at), self._store.codec
        for row, event in zip(rows, events, strict=True):
            # As the stored text decodes, so projections see what a replay will see.
            recorded.append(RecordedEvent(
                position=row.position, stream_id=stream_id, version=row.version,
                event=codec.as_stored(event, row.data_json),
                metadata=metadata, recorded_at=recorded_at, hash=row.hash))
        await project(self.db, self._store.projectors, recorded, facts)
        return recorded


async def iterate_rows(
    db: SqlDatabase, from_position: int, batch_size: int = PAGE_ROWS
) -> AsyncIterator[StoredRow]:
    """Pages by position rather than one cursor, so no read holds a snapshot for long."""
    position = from_position
    while True:
        rows = await db.fetchall(
            f"SELECT {ROW_COLUMNS} FROM events WHERE position >= ? "
            "ORDER BY position LIMIT ?", (position, batch_size))
        for row in rows:
            yield row_from_db(row)
        if len(rows) < batch_size:
            return
        position = rows[-1]["position"] + 1


class SqlLogReads:
    """The reads and the rebuild both stores offer, over `read_db()` and `transact()`."""

    codec: EventCodec
    projectors: tuple[Projector, ...]

    def read_db(self) -> SqlDatabase:
        raise NotImplementedError

    async def transact(self, work: Callable[[SqlSession], Awaitable[T]]) -> T:
        raise NotImplementedError

    async def rebuild_projections(self) -> int:
        """Empty every projection table and fold the whole log into them again."""

        async def work(session: SqlSession) -> int:
            for projector in self.projectors:
                for table in projector.tables:
                    await session.db.execute(f"DELETE FROM {table}")
            count = 0
            async for row in iterate_rows(session.db, 1):
                await apply_each(session.db, self.projectors, row.to_recorded(self.codec))
                count += 1
            return count

        return await self.transact(work)

    def read_rows(self, from_position: int = 1) -> AsyncIterator[StoredRow]:
        """The raw stored rows, for the audit that verifies their hashes."""
        return iterate_rows(self.read_db(), from_position)

    async def read_all(self, from_position: int = 1) -> AsyncIterator[RecordedEvent]:
        async for row in iterate_rows(self.read_db(), from_position):
            yield row.to_recorded(self.codec)

    async def read_stream(
        self, stream_id: str, from_version: int = 1
    ) -> AsyncIterator[RecordedEvent]:
        version = from_version
        while True:  # by pages, like iterate_rows: no cursor stays open between awaits
            rows = await self.read_db().fetchall(
                f"SELECT {ROW_COLUMNS} FROM events WHERE stream_id = ? AND version >= ? "
                "ORDER BY version LIMIT ?", (stream_id, version, PAGE_ROWS))
            for row in rows:
                yield row_from_db(row).to_recorded(self.codec)
            if len(rows) < PAGE_ROWS:
                return
            version = rows[-1]["version"] + 1

    async def head_position(self) -> int:
        row = await self.read_db().fetchone("SELECT COALESCE(MAX(position), 0) AS p FROM events")
        return int(row["p"]) if row else 0
