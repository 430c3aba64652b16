"""PostgreSQL's credential generation (events/pg_generation.py) when processes misbehave: a
writer waits for the live processes and for no dead one, a process that cannot hear the
server stops vouching, and one that missed a notice catches up before it renews."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import asyncpg  # type: ignore[import-untyped]
import pytest

from events import SqlSession, StoreUnavailable
from events.pg_generation import LAGGARDS, PgGeneration
from events.postgres import PostgresEventStore


@dataclass
class Clock:
    """A process's monotonic clock, moved by the test."""

    now: float = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(pg_store: PostgresEventStore) -> PostgresEventStore:
    return pg_store


@pytest.fixture
async def watchers(store: PostgresEventStore
                   ) -> AsyncIterator[Callable[..., Awaitable[PgGeneration]]]:
    """Start watchers on one database (as processes would); all stopped at the end."""
    started: list[PgGeneration] = []

    async def start(**options: object) -> PgGeneration:
        read_db = options.pop("read_db", store.read_db)
        generation = PgGeneration(store.connect, read_db, **options)  # type: ignore[arg-type]
        await generation.start()
        started.append(generation)
        return generation

    yield start
    for generation in started:
        await generation.stop()


async def nothing(s: SqlSession) -> str:
    return "written"


async def counter(store: PostgresEventStore) -> int:
    row = await store.read_db().fetchone("SELECT generation FROM credential_generation")
    assert row is not None
    return int(row["generation"])


async def test_a_write_returns_once_every_live_process_took_the_new_word(
        store: PostgresEventStore, watchers: Callable[..., Awaitable[PgGeneration]]
) -> None:
    # Clocks that never move: the leases never run out, so only acknowledgements can end
    # the writer's wait (a lost one would hang it until the timeout below).
    a = await watchers(lease_s=60.0, monotonic=Clock())
    b = await watchers(lease_s=60.0, monotonic=Clock())
    before_a, before_b = a.current(), b.current()
    assert before_a is not None and before_b is not None

    assert await asyncio.wait_for(a.changing(store.transact, nothing), 30) == "written"
    assert a.current() not in (None, before_a)
    assert b.current() not in (None, before_b), "B was not told before the write returned"
    laggards = await store.read_db().fetchone(LAGGARDS, (await counter(store),))
    assert laggards is not None and laggards["n"] == 0


async def test_a_write_waits_for_a_process_that_is_slow_to_take_the_notice(
        store: PostgresEventStore, watchers: Callable[..., Awaitable[PgGeneration]]
) -> None:
    """In one process the notice often lands before the commit's reply; here B holds it, as
    a busy process on another machine would, and the write must wait for B."""
    a = await watchers(lease_s=60.0, monotonic=Clock())
    b = await watchers(lease_s=60.0, monotonic=Clock())
    before, heard = b.current(), asyncio.Queue[int]()
    take = b._take
    b._take = heard.put_nowait  # type: ignore[method-assign]

    async def write() -> bytes | None:
        await a.changing(store.transact, nothing)
        return b.current()  # B's word as the writer returns

    writing = asyncio.create_task(write())
    take(await asyncio.wait_for(heard.get(), 30))  # B takes the notice only now
    assert await asyncio.wait_for(writing, 30) not in (None, before)


async def test_a_write_that_fails_changes_no_word(
        store: PostgresEventStore, watchers: Callable[..., Awaitable[PgGeneration]]
) -> None:
    a = await watchers(lease_s=60.0, monotonic=Clock())
    word, generation = a.current(), await counter(store)

    async def fails(s: SqlSession) -> None:
        await s.db.execute("UPDATE tokens SET revoked_at = 'x'")
        raise ValueError("the revocation's own check failed")

    with pytest.raises(ValueError):
        await a.changing(store.transact, fails)
    assert (a.current(), await counter(store)) == (word, generation)


async def test_a_frozen_process_is_waited_for_only_until_its_lease_ran_out(
        store: PostgresEventStore, watchers: Callable[..., Awaitable[PgGeneration]]
) -> None:
    frozen_clock = Clock()
    a = await watchers(lease_s=0.6)
    b = await watchers(lease_s=0.6, monotonic=frozen_clock)
    assert b.current() is not None
    b.freeze()  # hung: it hears nothing, acknowledges nothing, renews nothing

    await asyncio.wait_for(a.changing(store.transact, nothing), 30)
    # The writer returned, and not before B's lease had run out on the server's clock...
    row = await store.read_db().fetchone(
        "SELECT lease_until <= clock_timestamp() AS expired FROM credential_watchers "
        "WHERE watcher = ?", (b.watcher,))
    assert row is not None and row["expired"]
    # ...by when B, on its own clock, had stopped vouching for the word it held.
    frozen_clock.now += 0.6 - b.margin_s
    assert b.current() is None


async def test_after_a_lapse_nothing_cached_before_it_is_good(
        store: PostgresEventStore, watchers: Callable[..., Awaitable[PgGeneration]]
) -> None:
    """A revocation during the lapse may not have waited for this process: what it held
    from before must not come back with the next renewal, even if the counter looks the
    same."""
    clock = Clock()
    b = await watchers(lease_s=3.0, monotonic=clock)
    before = b.current()
    clock.now += 3.0  # beats stalled (a busy loop, a paused VM) past the lease
    assert b.current() is None
    await b.beat()
    assert b.current() not in (None, before)


async def test_a_process_that_missed_a_notice_catches_up_before_it_renews(
        store: PostgresEventStore, watchers: Callable[..., Awaitable[PgGeneration]],
        pg_url: str) -> None:
    b = await watchers(lease_s=60.0, monotonic=Clock())
    before = b.current()
    conn = await asyncpg.connect(pg_url)  # a bump whose NOTIFY never came
    try:
        await conn.execute("UPDATE credential_generation SET generation = generation + 1")
    finally:
        await conn.close()
    assert b.current() == before  # nothing told it yet
    await b.beat()
    assert b.current() not in (None, before)
    laggards = await store.read_db().fetchone(LAGGARDS, (await counter(store),))
    assert laggards is not None and laggards["n"] == 0, "its row says what it has seen"


async def test_a_lost_connection_stops_the_word_at_once_and_the_next_beat_attaches_again(
        store: PostgresEventStore, watchers: Callable[..., Awaitable[PgGeneration]],
        pg_url: str) -> None:
    b = await watchers(lease_s=60.0, monotonic=Clock())
    before = b.current()
    assert before is not None
    conn = await asyncpg.connect(pg_url)
    try:
        lost = asyncio.Event()
        assert b._conn is not None
        b._conn.add_termination_listener(lambda _: lost.set())
        await conn.execute("SELECT pg_terminate_backend($1)", b._conn.get_server_pid())
        await asyncio.wait_for(lost.wait(), 30)
    finally:
        await conn.close()
    assert b.current() is None
    await b.beat()
    assert b.current() not in (None, before), "a new epoch: notices may have been missed"


async def test_while_a_process_of_an_older_version_is_about_nothing_is_vouched_for(
        store: PostgresEventStore, watchers: Callable[..., Awaitable[PgGeneration]]) -> None:
    """An older process holds a lease and revokes without bumping: no cache may trust the
    counter while it lives."""
    b = await watchers(lease_s=60.0, monotonic=Clock())
    before = b.current()
    await store.read_db().execute(
        "INSERT INTO owner_leases VALUES ('old-version', clock_timestamp(), "
        "clock_timestamp(), clock_timestamp() + interval '1 minute')")
    await b.beat()
    assert b.current() is None
    await store.read_db().execute("DELETE FROM owner_leases WHERE owner = 'old-version'")
    await b.beat()
    assert b.current() not in (None, before)


async def test_a_write_whose_acknowledgements_cannot_be_read_still_returns_its_result(
        store: PostgresEventStore, watchers: Callable[..., Awaitable[PgGeneration]]) -> None:
    """The revocation committed: an unreadable table is waited out (a lease), not a 5xx."""
    class Away:
        async def fetchone(self, *args: object) -> None:
            raise StoreUnavailable("the pool is gone")

    before = await counter(store)
    a = await watchers(lease_s=0.3, read_db=lambda: Away())
    assert await asyncio.wait_for(a.changing(store.transact, nothing), 30) == "written"
    assert await counter(store) == before + 1
