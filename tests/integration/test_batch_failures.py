"""A batch of jobs in which some fail, on both stores: each failing job fails alone with its
own error and leaves no row, every other job commits exactly what it wrote, the chain has no
gap, and no job runs more than twice. Both stores run a batch without savepoints first; on
SQLite a job that fails before it changed a row costs the others nothing (they run once)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events import ConcurrencyError, Event, EventCodec, SqlSession, StoreUnavailable
from events.postgres import PostgresEventStore
from events.sqlite import SQLiteEventStore
from events.verify import verify_chain
from tests.integration.store_faults import fail_next_sqlite, kill_pg_writer
from tests.integration.test_pg_coalesced_writes import Batches
from tests.pgcluster import PgCluster

TABLES = """
CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
"""

KINDS = ("commits", "fails_before_writing", "fails_after_writing", "stale_version")


@dataclass(frozen=True, kw_only=True)
class Noted(Event, type_name="Noted"):
    note: str


class ChangedItsMind(Exception):
    """A job's own failure (a refused charge, say): the job fails, the batch goes on."""


class World:
    """A store of either kind on a loop of its own, so that hypothesis can call it."""

    def __init__(self, store: SQLiteEventStore | PostgresEventStore,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.store, self.loop = store, loop
        self.ids = itertools.count(1)
        self.runs: dict[int, int] = {}

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def job(self, note_id: int, kind: str) -> Any:
        async def work(s: SqlSession) -> int:
            self.runs[note_id] = self.runs.get(note_id, 0) + 1
            if kind == "fails_before_writing":
                raise ChangedItsMind(str(note_id))
            if kind == "stale_version":  # the append refuses it before writing anything
                await s.append(f"note-{note_id}", 7, [Noted(note=str(note_id))])
            await s.db.execute("INSERT INTO notes VALUES (?, ?)", (note_id, kind))
            await s.append(f"note-{note_id}", 0, [Noted(note=str(note_id))])
            if kind == "fails_after_writing":
                raise ChangedItsMind(str(note_id))
            return note_id
        return work


@pytest.fixture(params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    codec = EventCodec()
    codec.register(Noted)
    loop = asyncio.new_event_loop()
    url = None
    store: SQLiteEventStore | PostgresEventStore
    if request.param == "sqlite":
        store = SQLiteEventStore(tmp_path / "batches.db", codec, control_schema=TABLES)
    else:
        cluster: PgCluster = request.getfixturevalue("pg_cluster")
        url = loop.run_until_complete(cluster.create_database())
        store = PostgresEventStore(url, codec, control_schema=TABLES)
    loop.run_until_complete(store.open())
    try:
        yield World(store, loop)
    finally:
        loop.run_until_complete(store.close())
        if url is not None:
            loop.run_until_complete(cluster.drop_database(url))
        loop.close()


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=12))
def test_each_failing_job_fails_alone_and_the_others_commit_what_they_wrote(
        world: World, kinds: list[str]) -> None:
    store, batches = world.store, Batches()
    store.observer = batches
    ids = [next(world.ids) for _ in kinds]
    world.runs.clear()
    before = world.run(store.head_position())

    async def together() -> list[Any]:
        return await asyncio.gather(*(store.transact(world.job(i, k))
                                      for i, k in zip(ids, kinds, strict=True)),
                                    return_exceptions=True)

    outcomes = world.run(together())

    assert batches.sizes == [len(kinds)], "the jobs were meant to share one batch"
    expected = {"commits": int, "fails_before_writing": ChangedItsMind,
                "fails_after_writing": ChangedItsMind, "stale_version": ConcurrencyError}
    assert [type(o) for o in outcomes] == [expected[k] for k in kinds]
    committed = [i for i, k in zip(ids, kinds, strict=True) if k == "commits"]
    assert [o for o in outcomes if isinstance(o, int)] == committed
    notes = world.run(store.read_db().fetchall(
        "SELECT id, body FROM notes WHERE id >= ? ORDER BY id", (ids[0],)))
    assert notes == [{"id": i, "body": "commits"} for i in committed]
    assert world.run(_stream_ids_after(store, before)) == [f"note-{i}" for i in committed]
    report = world.run(verify_chain(store.read_rows()))
    assert report.ok and report.events == world.run(store.head_position()), report
    assert max(world.runs.values()) <= 2, world.runs
    if isinstance(store, SQLiteEventStore) and "fails_after_writing" not in kinds:
        assert set(world.runs.values()) == {1}, world.runs  # nothing to roll back: none ran twice


async def _stream_ids_after(store: SQLiteEventStore | PostgresEventStore,
                            position: int) -> list[str]:
    return [row.stream_id async for row in store.read_rows(position + 1)]


# A job that fails with its own error takes the transaction down, and then the ROLLBACK
# fails too: the disk (SQLite) or the writer's connection (PostgreSQL, its backend killed
# while the job ran) gives out. Nothing of the batch may be committed, no job may be told it
# committed when it did not, and no job may be handed another job's error: a refused charge
# of one user must never reach another user's prediction as theirs. The store then serves on.
FAULTY = ("commits", "commits", "fails_after_writing", "commits")


def _break_the_rollback(world: World, note_id: int) -> Any:
    """The job `note_id` of FAULTY's failing kind, and a fault that makes its ROLLBACK fail."""
    store = world.store
    if isinstance(store, SQLiteEventStore):  # the next ROLLBACK meets a disk I/O error
        fail_next_sqlite(store, "ROLLBACK")
        return world.job(note_id, "fails_after_writing")

    async def work(s: SqlSession) -> int:  # PostgreSQL: a real fault, from another session
        world.runs[note_id] = world.runs.get(note_id, 0) + 1
        await s.db.execute("INSERT INTO notes VALUES (?, ?)", (note_id, "fails_after_writing"))
        await kill_pg_writer(store, s)
        raise ChangedItsMind(str(note_id))
    return work


def test_a_failed_rollback_commits_nothing_false_and_hands_no_job_another_jobs_error(
        world: World) -> None:
    store = world.store
    ids = [next(world.ids) for _ in FAULTY]
    world.runs.clear()
    jobs = [_break_the_rollback(world, i) if k == "fails_after_writing" else world.job(i, k)
            for i, k in zip(ids, FAULTY, strict=True)]
    before = world.run(store.head_position())

    async def together() -> list[Any]:
        return await asyncio.gather(*(store.transact(job) for job in jobs),
                                    return_exceptions=True)

    outcomes = world.run(together())

    mine = [o for o in outcomes if isinstance(o, ChangedItsMind)]
    assert [str(o) for o in mine] == [str(ids[2])], "a job was handed another job's error"
    committed = [o for o in outcomes if isinstance(o, int)]
    notes = world.run(store.read_db().fetchall(
        "SELECT id, body FROM notes WHERE id >= ? ORDER BY id", (ids[0],)))
    assert notes == [{"id": i, "body": "commits"} for i in committed]
    assert world.run(_stream_ids_after(store, before)) == [f"note-{i}" for i in committed]
    if isinstance(store, SQLiteEventStore):
        # The transaction stayed open until the store's own ROLLBACK: the other jobs fail
        # with the store (the last never ran); the third's error is still its own, and
        # true. Each may be sent again (an operation id makes that safe).
        assert [type(o) for o in outcomes] == [StoreUnavailable, StoreUnavailable,
                                               ChangedItsMind, StoreUnavailable]
        assert world.runs == dict.fromkeys(ids[:3], 1), world.runs
    else:
        # The writer's connection is made anew and the others run again on it, without
        # the failed job, as after any failed job: the first two twice, the last once.
        assert outcomes[:2] + outcomes[3:] == ids[:2] + ids[3:], outcomes
        assert world.runs == {ids[0]: 2, ids[1]: 2, ids[2]: 1, ids[3]: 1}, world.runs

    after = next(world.ids)  # and the store serves on, its chain whole
    assert world.run(store.transact(world.job(after, "commits"))) == after
    report = world.run(verify_chain(store.read_rows()))
    assert report.ok and report.events == world.run(store.head_position()), report
