"""One contract, every store: the in-memory store must behave as the SQLite file does."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pgcluster import fresh_database

from events import (
    GENESIS_HASH,
    ConcurrencyError,
    Event,
    EventCodec,
    InMemoryEventStore,
    Metadata,
    RecordedEvent,
    SQLiteEventStore,
    StoreUnavailable,
)
from events.postgres import PostgresEventStore
from events.rows import StoredRow
from events.verify import verify_chain
from tests.integration.store_faults import held_inside

Store = InMemoryEventStore | SQLiteEventStore | PostgresEventStore


@dataclass(frozen=True, kw_only=True)
class Noted(Event, type_name="Noted"):
    note: str
    count: int = 0


@dataclass(frozen=True, kw_only=True)
class Shaped(Event, type_name="Shaped"):
    """Every JSON shape an event may carry."""

    digits: str
    whole: int
    big: int
    ratio: float
    negative_zero: float
    flag: bool
    nothing: None
    grid: list[list[int]]
    mixed: list[Any]
    mapping: dict[str, Any]


def codec() -> EventCodec:
    codec = EventCodec()
    codec.register(Noted, Shaped)
    return codec


def fixed_clock() -> datetime:
    return datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


class Boom(Exception):
    pass


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "memory":
        yield InMemoryEventStore(codec())
        return
    if request.param == "sqlite":
        sqlite_store = SQLiteEventStore(tmp_path / "events.db", codec())
        await sqlite_store.open()
        try:
            yield sqlite_store
        finally:
            await sqlite_store.close()
        return
    async with fresh_database(request.getfixturevalue("pg_cluster")) as url:
        pg_store = PostgresEventStore(url, codec())
        await pg_store.open()
        try:
            yield pg_store
        finally:
            await pg_store.close()


async def stored_rows(store: Store) -> AsyncIterator[StoredRow]:
    if isinstance(store, InMemoryEventStore):
        for row in list(store.rows):
            yield row
    else:
        async for row in store.read_rows():
            yield row


async def read_all(store: Store, from_position: int = 1) -> list[RecordedEvent]:
    return [recorded async for recorded in store.read_all(from_position)]


async def read_stream(store: Store, stream_id: str, from_version: int = 1) -> list[RecordedEvent]:
    return [recorded async for recorded in store.read_stream(stream_id, from_version)]


def notes(recorded: list[RecordedEvent]) -> list[str]:
    return [r.event.note for r in recorded if isinstance(r.event, Noted)]


# -- the contract ---------------------------------------------------------------------------

async def test_positions_are_gapless_across_streams_and_versions_count_per_stream(
        store: Store) -> None:
    first = await store.append("a", 0, [Noted(note="a1"), Noted(note="a2")])
    second = await store.append("b", 0, [Noted(note="b1")])
    third = await store.append("a", 2, [Noted(note="a3")])
    assert [r.position for r in first + second + third] == [1, 2, 3, 4]
    assert [(r.stream_id, r.version) for r in first + second + third] == [
        ("a", 1), ("a", 2), ("b", 1), ("a", 3)]
    assert await store.head_position() == 4
    assert [r.position for r in await read_all(store)] == [1, 2, 3, 4]


async def test_a_stale_expected_version_is_refused_and_writes_nothing(store: Store) -> None:
    await store.append("a", 0, [Noted(note="a1")])
    for stale in (0, 2, 5):
        with pytest.raises(ConcurrencyError) as raised:
            await store.append("a", stale, [Noted(note="late"), Noted(note="later")])
        assert (raised.value.stream_id, raised.value.expected_version) == ("a", stale)
    assert notes(await read_all(store)) == ["a1"]
    assert await store.head_position() == 1
    assert [r.position for r in await store.append("a", 1, [Noted(note="a2")])] == [2]


async def test_two_writers_racing_for_one_version_cannot_both_win(store: Store) -> None:
    outcomes = await asyncio.gather(
        *(store.append("a", 0, [Noted(note=f"writer {i}")]) for i in range(5)),
        return_exceptions=True)
    winners = [o for o in outcomes if not isinstance(o, BaseException)]
    losers = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(winners) == 1
    assert len(losers) == 4 and all(isinstance(e, ConcurrencyError) for e in losers)
    assert notes(await read_stream(store, "a")) == [winners[0][0].event.note]


async def test_a_transaction_that_raises_writes_nothing(store: Store) -> None:
    await store.append("a", 0, [Noted(note="kept")])

    async def work(session: Any) -> None:
        await session.append("a", 1, [Noted(note="lost 1")])
        await session.append("b", 0, [Noted(note="lost 2")])
        assert await session.stream_version("b") == 1  # visible inside the transaction
        raise Boom

    with pytest.raises(Boom):
        await store.transact(work)
    assert notes(await read_all(store)) == ["kept"]
    assert await store.head_position() == 1
    # The position the lost rows took is given out again: no gap is left behind.
    assert [r.position for r in await store.append("b", 0, [Noted(note="b1")])] == [2]
    assert (await verify_chain(stored_rows(store))).ok


async def test_a_transaction_sees_its_own_appends_and_commits_them_together(
        store: Store) -> None:
    async def work(session: Any) -> list[str]:
        await session.append("a", 0, [Noted(note="a1")])
        await session.append("a", await session.stream_version("a"), [Noted(note="a2")])
        return notes(await session.read_stream("a"))

    assert await store.transact(work) == ["a1", "a2"]
    assert [(r.version, r.position) for r in await read_stream(store, "a")] == [(1, 1), (2, 2)]


async def test_reads_come_in_order_from_a_version_or_a_position(store: Store) -> None:
    for i in range(1, 6):
        await store.append("a", i - 1, [Noted(note=f"a{i}")])
        await store.append("b", i - 1, [Noted(note=f"b{i}")])
    assert notes(await read_stream(store, "a")) == ["a1", "a2", "a3", "a4", "a5"]
    assert notes(await read_stream(store, "a", from_version=4)) == ["a4", "a5"]
    assert notes(await read_stream(store, "a", from_version=6)) == []
    assert notes(await read_stream(store, "nobody")) == []
    assert notes(await read_all(store, from_position=8)) == ["b4", "a5", "b5"]
    assert [r.position for r in await read_all(store, from_position=8)] == [8, 9, 10]
    assert await read_all(store, from_position=11) == []
    assert len(await read_all(store, from_position=0)) == 10  # before the first is everything


async def test_the_stored_rows_form_an_unbroken_hash_chain(store: Store) -> None:
    assert (await verify_chain(stored_rows(store))).head_hash == GENESIS_HASH
    await store.append("a", 0, [Noted(note="a1"), Noted(note="a2")])
    await store.append("b", 0, [Noted(note="b1")])
    rows = [row async for row in stored_rows(store)]
    assert rows[0].hash == rows[0].expected_hash(GENESIS_HASH)
    report = await verify_chain(stored_rows(store))
    assert (report.ok, report.events, report.head_hash) == (True, 3, rows[-1].hash)
    assert [r.hash for r in await read_all(store)] == [row.hash for row in rows]
    assert len({row.hash for row in rows}) == 3


async def test_a_round_trip_keeps_every_type(store: Store) -> None:
    shaped = Shaped(digits="007", whole=7, big=2**62, ratio=0.1, negative_zero=-0.0, flag=True,
                    nothing=None, grid=[[1, 2], [], [3]], mixed=[1, "1", 1.0, None, [True]],
                    mapping={"ü": {"nested": [1.5]}, "1": "one"})
    metadata = Metadata(operation_id="op-1", actor="user:1")
    await store.append("s", 0, [shaped], metadata)
    [recorded] = await read_all(store)
    assert recorded.event == shaped
    event = recorded.event
    assert isinstance(event, Shaped)
    assert type(event.digits) is str and type(event.whole) is int and type(event.big) is int
    assert type(event.flag) is bool and type(event.ratio) is float
    assert str(event.negative_zero) == "-0.0"
    assert [type(x) for x in event.mixed] == [int, str, float, type(None), list]
    assert recorded.metadata == metadata
    assert recorded.recorded_at.tzinfo is not None


async def test_recorded_at_comes_from_the_clock_in_utc(store: Store) -> None:
    store.clock = fixed_clock
    [recorded] = await store.append("a", 0, [Noted(note="a1")])
    [read] = await read_all(store)
    assert recorded.recorded_at == read.recorded_at == fixed_clock()


async def test_both_stores_seal_the_same_events_into_the_same_chain(tmp_path: Path) -> None:
    memory = InMemoryEventStore(codec(), clock=fixed_clock)
    on_disk = SQLiteEventStore(tmp_path / "events.db", codec(), clock=fixed_clock)
    await on_disk.open()
    try:
        for target in (memory, on_disk):
            await target.append("a", 0, [Noted(note="a1", count=1)], Metadata(actor="x"))
            await target.append("b", 0, [Noted(note="b1")])
        assert [row async for row in stored_rows(memory)] == \
            [row async for row in stored_rows(on_disk)]
    finally:
        await on_disk.close()


# -- SQLite only ----------------------------------------------------------------------------

@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SQLiteEventStore]:
    store = SQLiteEventStore(tmp_path / "events.db", codec())
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@pytest.mark.parametrize("statement", [
    "UPDATE events SET data = '{\"note\":\"forged\",\"count\":0}' WHERE position = 1",
    "DELETE FROM events WHERE position = 1",
    "UPDATE events SET position = 99 WHERE position = 1",
])
async def test_the_log_refuses_updates_and_deletes(
        sqlite_store: SQLiteEventStore, statement: str) -> None:
    await sqlite_store.append("a", 0, [Noted(note="a1")])

    async def work(session: Any) -> None:
        await session.db.execute(statement)

    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        await sqlite_store.transact(work)
    with closing(sqlite3.connect(sqlite_store.path)) as raw, \
            pytest.raises(sqlite3.IntegrityError, match="append-only"):
        raw.execute(statement)
    assert notes(await read_all(sqlite_store)) == ["a1"]
    assert (await verify_chain(sqlite_store.read_rows())).ok


async def test_the_log_survives_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    first = SQLiteEventStore(path, codec())
    await first.open()
    await first.append("a", 0, [Noted(note="a1"), Noted(note="a2")])
    await first.close()
    with pytest.raises(StoreUnavailable):
        await first.append("a", 2, [Noted(note="after close")])

    again = SQLiteEventStore(path, codec())
    await again.open()
    try:
        assert notes(await read_all(again)) == ["a1", "a2"]
        [recorded] = await again.append("a", 2, [Noted(note="a3")])
        assert (recorded.position, recorded.version) == (3, 3)
        assert (await verify_chain(again.read_rows())).events == 3
    finally:
        await again.close()


async def test_concurrent_transactions_all_commit_with_gapless_positions(
        sqlite_store: SQLiteEventStore) -> None:
    count = 150  # more than one batch

    async def one(i: int) -> list[RecordedEvent]:
        return await sqlite_store.append(f"s{i % 7}-{i}", 0, [Noted(note=str(i), count=i)])

    results = await asyncio.gather(*(one(i) for i in range(count)))
    assert sorted(r[0].position for r in results) == list(range(1, count + 1))
    assert sorted(int(n) for n in notes(await read_all(sqlite_store))) == list(range(count))
    assert (await verify_chain(sqlite_store.read_rows())).events == count


async def test_a_failing_job_does_not_undo_the_others_in_its_batch(
        sqlite_store: SQLiteEventStore) -> None:
    committed_seen: list[int] = []

    def job(note: str, fail: bool) -> Any:
        async def work(session: Any) -> str:
            # The reader sees only committed rows: zero for every job proves they share one
            # transaction, so the failure really happened inside the batch of the others.
            row = await sqlite_store.read_db().fetchone("SELECT COUNT(*) AS n FROM events")
            committed_seen.append(row["n"])
            await session.append(note, 0, [Noted(note=note)])
            if fail:
                raise Boom(note)
            return note
        return work

    outcomes = await asyncio.gather(
        sqlite_store.transact(job("first", False)),
        sqlite_store.transact(job("failing", True)),
        sqlite_store.transact(job("third", False)),
        return_exceptions=True)
    assert outcomes[0] == "first" and outcomes[2] == "third"
    assert isinstance(outcomes[1], Boom)
    # first and failing, then (failing having written, the try is rolled back) first again
    # and third: each saw nothing committed, so all ran inside the one batch.
    assert committed_seen == [0, 0, 0, 0]
    recorded = await read_all(sqlite_store)
    assert [(r.position, r.stream_id) for r in recorded] == [(1, "first"), (2, "third")]
    assert (await verify_chain(sqlite_store.read_rows())).ok


async def test_a_caller_that_goes_away_does_not_stop_its_write(
        sqlite_store: SQLiteEventStore) -> None:
    started, go_on = asyncio.Event(), asyncio.Event()

    async def work(session: Any) -> list[RecordedEvent]:
        started.set()
        await go_on.wait()
        return await session.append("a", 0, [Noted(note="kept")])

    caller = asyncio.create_task(sqlite_store.transact(work))
    await started.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    go_on.set()
    # One writer, in order: once a later write returns, the abandoned one has committed.
    await sqlite_store.append("b", 0, [Noted(note="after")])
    assert notes(await read_all(sqlite_store)) == ["kept", "after"]


async def test_opening_the_store_again_and_again_never_fails(tmp_path: Path) -> None:
    """Opening runs PRAGMAs and a schema script back to back on the writer connection; a
    statement left open by one of them would fail the next COMMIT now and then."""
    codec = EventCodec()
    for attempt in range(200):  # a fresh file each time: turning on WAL writes to it
        store = SQLiteEventStore(tmp_path / f"open-{attempt}.db", codec)
        await store.open()
        await store.close()


async def test_a_write_that_arrives_while_the_store_closes_fails_instead_of_hanging(
    tmp_path: Path,
) -> None:
    store = SQLiteEventStore(tmp_path / "closing.db", EventCodec())
    await store.open()

    async def work(session: Any) -> int:
        return 1

    # close() queues its stop first; the write lands behind it, before the writer has ended.
    closed, late = await asyncio.wait_for(
        asyncio.gather(store.close(), store.transact(work), return_exceptions=True), 10)
    assert closed is None
    assert isinstance(late, StoreUnavailable)


async def test_a_long_background_read_holds_up_no_request_read(
        sqlite_store: SQLiteEventStore) -> None:
    """The verifier's walk and its whole-table checks read on `background_db()`. While such
    a read runs (held here inside SQLite by a function that waits), a request's read on
    `read_db()` is answered, and the background one sees what was committed."""
    await sqlite_store.transact(lambda s: s.append("notes", 0, [Noted(note="a")]))
    background = sqlite_store.background_db()
    async with held_inside(background) as long_read:
        row = await asyncio.wait_for(sqlite_store.read_db().fetchone("SELECT 1 AS one"), 10)
        assert row == {"one": 1} and not long_read.done()
    assert await long_read == {"held": 1}
    assert await background.fetchone("SELECT COUNT(*) AS events FROM events") == {"events": 1}
