"""A projector whose version changes gets its tables rebuilt from the log when the store
opens, in one transaction, on both stores; an unchanged one is left alone."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from events import (
    Event,
    EventCodec,
    PostgresEventStore,
    RecordedEvent,
    SqlDatabase,
    SqlEventStore,
    SQLiteEventStore,
)
from ledger import is_database_url

pytestmark = pytest.mark.parametrize("ledger_at", ["sqlite", "postgres"], indirect=True)


@dataclass(frozen=True, kw_only=True)
class Ticked(Event, type_name="Ticked"):
    amount: int


class Totals:
    """Version 1: a total per stream."""

    name = "totals"
    version = 1
    tables: tuple[str, ...] = ("totals",)
    schema = "CREATE TABLE IF NOT EXISTS totals (stream_id TEXT PRIMARY KEY, total INTEGER);"

    def __init__(self) -> None:
        self.applied = 0

    async def apply(self, db: SqlDatabase, recorded: RecordedEvent) -> None:
        self.applied += 1
        assert isinstance(recorded.event, Ticked)
        row = await db.fetchone("SELECT total FROM totals WHERE stream_id = ?",
                                (recorded.stream_id,))
        total = (row["total"] if row else 0) + recorded.event.amount
        await db.execute("DELETE FROM totals WHERE stream_id = ?", (recorded.stream_id,))
        await self.insert(db, recorded.stream_id, total, recorded.version)

    async def insert(self, db: SqlDatabase, stream_id: str, total: int, version: int) -> None:
        await db.execute("INSERT INTO totals VALUES (?, ?)", (stream_id, total))


class TotalsV2(Totals):
    """Version 2: and the stream version of the last event counted (a new column)."""

    version = 2
    schema = ("CREATE TABLE IF NOT EXISTS totals (stream_id TEXT PRIMARY KEY, total INTEGER, "
              "last_version INTEGER NOT NULL);")

    async def insert(self, db: SqlDatabase, stream_id: str, total: int, version: int) -> None:
        await db.execute("INSERT INTO totals VALUES (?, ?, ?)", (stream_id, total, version))


class Broken(TotalsV2):
    version = 3

    async def apply(self, db: SqlDatabase, recorded: RecordedEvent) -> None:
        raise RuntimeError("a bug in the new projector")


def store(where: str | Path, projector: Totals) -> SqlEventStore:
    codec = EventCodec()
    codec.register(Ticked)
    if is_database_url(where):
        assert isinstance(where, str)
        return PostgresEventStore(where, codec, [projector])
    return SQLiteEventStore(where, codec, [projector])


async def rows(s: SqlEventStore, query: str) -> list[dict[str, object]]:
    return await s.read_db().fetchall(query)


async def test_a_new_projector_version_rebuilds_its_tables_from_the_log(
        ledger_at: str | Path) -> None:
    first = store(ledger_at, Totals())
    await first.open()
    await first.append("a", 0, [Ticked(amount=2), Ticked(amount=3)])
    await first.append("b", 0, [Ticked(amount=5)])
    await first.close()

    projector = TotalsV2()
    second = store(ledger_at, projector)
    await second.open()
    try:
        assert await rows(second, "SELECT * FROM totals ORDER BY stream_id") == [
            {"stream_id": "a", "total": 5, "last_version": 2},
            {"stream_id": "b", "total": 5, "last_version": 1}]
        assert await rows(second, "SELECT * FROM projection_versions") == [
            {"name": "totals", "version": 2}]
        assert projector.applied == 3
        await second.append("a", 2, [Ticked(amount=1)])
    finally:
        await second.close()

    unchanged = TotalsV2()
    third = store(ledger_at, unchanged)
    await third.open()
    try:
        assert unchanged.applied == 0  # same version: nothing is folded again
        assert await rows(third, "SELECT total, last_version FROM totals WHERE stream_id = 'a'"
                          ) == [{"total": 6, "last_version": 3}]
    finally:
        await third.close()


async def test_a_rebuild_that_fails_leaves_the_old_tables_and_version(
        ledger_at: str | Path) -> None:
    first = store(ledger_at, Totals())
    await first.open()
    await first.append("a", 0, [Ticked(amount=2)])
    await first.close()

    with pytest.raises(RuntimeError, match="a bug in the new projector"):
        await store(ledger_at, Broken()).open()

    again = store(ledger_at, Totals())
    await again.open()
    try:
        assert await rows(again, "SELECT * FROM totals") == [{"stream_id": "a", "total": 2}]
        assert await rows(again, "SELECT * FROM projection_versions") == [
            {"name": "totals", "version": 1}]
    finally:
        await again.close()
