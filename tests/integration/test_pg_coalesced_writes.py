"""The PostgreSQL adapter sends a job's writes together (one statement of data-modifying CTEs):
each job must still see its own writes in order, fail alone, and leave nothing when it fails."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from events import ConcurrencyError, Event, EventCodec, RecordedEvent, SqlSession, UniqueViolation
from events.postgres import PostgresEventStore
from events.sql_log import ROW_COLUMNS
from events.verify import verify_chain


@dataclass(frozen=True, kw_only=True)
class Noted(Event, type_name="Noted"):
    note: str

TABLES = """
CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tags (note_id INTEGER NOT NULL, tag TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);
"""


class Batches:
    """The CommitObserver: how many jobs each commit carried."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def batch_committed(self, jobs: int, seconds: float) -> None:
        self.sizes.append(jobs)

    def events_committed(self, events: Sequence[RecordedEvent]) -> None:
        pass


@pytest.fixture
async def store(pg_url: str) -> AsyncIterator[PostgresEventStore]:
    codec = EventCodec()
    codec.register(Noted)
    opened = PostgresEventStore(pg_url, codec, control_schema=TABLES)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


async def rows(store: PostgresEventStore, query: str) -> list[dict[str, Any]]:
    return await store.read_db().fetchall(query)


def note(note_id: int, tag: str, then_fail: bool = False) -> Any:
    async def work(s: SqlSession) -> int:
        await s.db.execute("INSERT INTO tags VALUES (?, ?)", (note_id, tag))
        await s.db.execute("INSERT INTO notes VALUES (?, ?)", (note_id, tag))
        if then_fail:
            raise ValueError("the job changed its mind")
        return note_id
    return work


async def test_a_unique_violation_in_a_coalesced_write_fails_only_its_job_of_the_batch(
        store: PostgresEventStore) -> None:
    batches = Batches()
    store.observer = batches
    outcomes = await asyncio.gather(
        store.transact(note(1, "first")), store.transact(note(1, "duplicate")),
        store.transact(note(2, "third")), return_exceptions=True)

    assert batches.sizes == [3], "the three jobs were meant to share one transaction"
    assert outcomes[0] == 1 and outcomes[2] == 2
    assert isinstance(outcomes[1], UniqueViolation), outcomes[1]
    assert await rows(store, "SELECT id, body FROM notes ORDER BY id") == [
        {"id": 1, "body": "first"}, {"id": 2, "body": "third"}]
    # The failed job's other write, sent in the same statement, went with it.
    assert await rows(store, "SELECT note_id, tag FROM tags ORDER BY note_id") == [
        {"note_id": 1, "tag": "first"}, {"note_id": 2, "tag": "third"}]


@pytest.mark.parametrize("jobs", [1, 3])
async def test_a_job_that_fails_after_queuing_writes_leaves_no_row(
        store: PostgresEventStore, jobs: int) -> None:
    """Alone (its own transaction, no savepoint) and inside a batch (its savepoint)."""
    works = [note(10 + k, f"kept {k}") for k in range(jobs - 1)]
    outcomes = await asyncio.gather(
        *(store.transact(w) for w in works),
        store.transact(note(99, "abandoned", then_fail=True)), return_exceptions=True)

    assert isinstance(outcomes[-1], ValueError)
    assert await rows(store, "SELECT id FROM notes ORDER BY id") == [
        {"id": 10 + k} for k in range(jobs - 1)]
    assert await rows(store, "SELECT tag FROM tags WHERE note_id = 99") == []
    assert await store.transact(note(99, "again")) == 99  # the writer goes on


async def test_writes_to_one_row_apply_in_the_order_the_job_made_them(
        store: PostgresEventStore) -> None:
    async def work(s: SqlSession) -> None:
        upsert = ("INSERT INTO counters VALUES (?, ?) "
                  "ON CONFLICT (id) DO UPDATE SET n = counters.n + excluded.n")
        await s.db.execute(upsert, (1, 1))
        await s.db.execute("UPDATE counters SET n = n * 10 WHERE id = ?", (1,))
        await s.db.execute(upsert, (1, 5))
        await s.db.execute(upsert, (1, 1))

    await store.transact(work)
    # In order: 1, ×10, +5, +1. Any other order, or one snapshot for all, gives another n.
    assert await rows(store, "SELECT n FROM counters") == [{"n": 16}]


async def test_a_read_after_a_queued_write_sees_it_and_a_read_of_another_table_is_exact(
        store: PostgresEventStore) -> None:
    async def work(s: SqlSession) -> tuple[Any, ...]:
        await s.db.execute("INSERT INTO notes VALUES (?, ?)", (1, "one"))
        seen = await s.db.fetchall("SELECT body FROM notes WHERE id = ?", (1,))
        await s.db.execute("INSERT INTO notes VALUES (?, ?)", (2, "two"))
        # tags is not written by the queued INSERT: this read rides on it, parameters
        # renumbered after the write's.
        other = await s.db.fetchall("SELECT tag FROM tags WHERE note_id = ?", (2,))
        after = await s.db.fetchone("SELECT COUNT(*) AS c FROM notes WHERE id >= ?", (1,))
        # A write that reads another queued write's table sees that write.
        await s.db.execute("INSERT INTO notes VALUES (?, ?)", (3, "three"))
        await s.db.execute("INSERT INTO tags SELECT id, body FROM notes WHERE id = ?", (3,))
        tagged = await s.db.fetchall("SELECT tag FROM tags")
        return seen, other, after, tagged

    seen, other, after, tagged = await store.transact(work)
    assert seen == [{"body": "one"}]
    assert other == []
    assert after == {"c": 2}
    assert tagged == [{"tag": "three"}]
    assert await rows(store, "SELECT id FROM notes ORDER BY id") == [
        {"id": 1}, {"id": 2}, {"id": 3}]


async def test_a_check_violation_in_a_coalesced_write_fails_its_job_and_spares_the_batch(
        store: PostgresEventStore) -> None:
    """An error that is a bug in the job's SQL surfaces at the flush and is still its own."""
    async def bad(s: SqlSession) -> None:
        await s.db.execute("INSERT INTO notes VALUES (?, ?)", (5, "five"))
        await s.db.execute("INSERT INTO counters VALUES (?, NULL)", (5,))  # n is NOT NULL

    outcomes = await asyncio.gather(
        store.transact(note(4, "four")), store.transact(bad), store.transact(note(6, "six")),
        return_exceptions=True)
    assert outcomes[0] == 4 and outcomes[2] == 6
    assert isinstance(outcomes[1], Exception) and "null" in str(outcomes[1]).lower()
    assert await rows(store, "SELECT id FROM notes ORDER BY id") == [{"id": 4}, {"id": 6}]


async def test_an_append_whose_row_is_taken_is_still_a_concurrency_error_and_fails_alone(
        store: PostgresEventStore) -> None:
    """The log's INSERT is queued too; its unique violation must come back as the append's
    ConcurrencyError (what the ledger retries), not as a bare UniqueViolation."""
    batches = Batches()
    store.observer = batches

    async def first(s: SqlSession) -> int:
        return len(await s.append("note-1", 0, [Noted(note="first")]))

    async def squatter(s: SqlSession) -> None:
        # Takes version 2 of the stream behind the batch's back (the batch still believes
        # the stream is at version 1), far from the positions the batch hands out.
        await s.db.execute(
            f"INSERT INTO events ({ROW_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (1_000_000, "note-1", 2, "Noted", 1, '{"note":"squat"}', "{}", "t", "x"))

    async def second(s: SqlSession) -> int:
        recorded = await s.append("note-1", 1, [Noted(note="second")])
        await s.db.execute("INSERT INTO notes VALUES (?, ?)", (7, "after the append"))
        return len(recorded)

    async def third(s: SqlSession) -> int:
        return len(await s.append("note-2", 0, [Noted(note="third")]))

    outcomes = await asyncio.gather(
        store.transact(first), store.transact(squatter), store.transact(second),
        store.transact(third), return_exceptions=True)

    assert batches.sizes == [4]
    assert outcomes[0] == 1 and outcomes[1] is None and outcomes[3] == 1
    failed = outcomes[2]
    assert isinstance(failed, ConcurrencyError), failed
    assert (failed.stream_id, failed.expected_version) == ("note-1", 1)
    assert await rows(store, "SELECT id FROM notes") == []  # its other write went with it
    assert await rows(store, "SELECT stream_id, version FROM events ORDER BY position") == [
        {"stream_id": "note-1", "version": 1}, {"stream_id": "note-2", "version": 1},
        {"stream_id": "note-1", "version": 2}]


    async def own_rows() -> AsyncIterator[Any]:
        async for row in store.read_rows():
            if row.position < 1_000_000:
                yield row

    report = await verify_chain(own_rows())  # the batch's own rows chain: no gap, no fork
    assert report.ok and report.events == 2, report


async def test_a_batch_of_many_failing_jobs_fails_each_alone_and_runs_each_at_most_twice(
        store: PostgresEventStore) -> None:
    """A batch runs first without savepoints; after a failure the rest run in savepoints, so
    ten refused jobs cost one re-run of the batch, not ten."""
    batches = Batches()
    store.observer = batches
    runs: dict[int, int] = {}

    def counted(note_id: int, fail: bool) -> Any:
        inner = note(note_id, f"note {note_id}", then_fail=fail)

        async def work(s: SqlSession) -> int:
            runs[note_id] = runs.get(note_id, 0) + 1
            result: int = await inner(s)
            return result
        return work

    jobs = [counted(k, fail=k % 2 == 1) for k in range(20)]
    outcomes = await asyncio.gather(*(store.transact(j) for j in jobs), return_exceptions=True)

    assert batches.sizes == [20]
    assert [o if isinstance(o, int) else type(o) for o in outcomes] == [
        k if k % 2 == 0 else ValueError for k in range(20)]
    assert max(runs.values()) <= 2, runs
    assert await rows(store, "SELECT id FROM notes ORDER BY id") == [
        {"id": k} for k in range(0, 20, 2)]
    assert await rows(store, "SELECT note_id FROM tags ORDER BY note_id") == [
        {"note_id": k} for k in range(0, 20, 2)]
