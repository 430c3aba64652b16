"""What processes on one PostgreSQL database share: owner leases (who counts as alive when
processes run on many machines) and secrets made once; and a damaged log refused at start-up
there, as on SQLite."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from events import SqlEventStore, StoreCorrupted
from events.leases import FileLiveness, LeaseLiveness
from ledger import LedgerService, postgres_ledger_store
from ledger.shared import shared_secret
from web.app import check_log


@pytest.fixture
def store(pg_store: SqlEventStore) -> SqlEventStore:
    return pg_store


async def test_a_live_lease_is_alive_and_a_clean_stop_is_dead_at_once(
        store: SqlEventStore) -> None:
    mine, theirs = LeaseLiveness(store.read_db, judge_after_s=0), LeaseLiveness(store.read_db)
    owner = await theirs.start()
    await mine.start()
    try:
        assert await mine.is_alive(owner)
        await theirs.stop()  # its holds may be released by the next sweep, not a lease later
        assert not await mine.is_alive(owner)
        assert not await mine.is_alive("an-owner-that-never-had-a-lease")
        assert await mine.is_alive(mine.owner)
    finally:
        await mine.stop()


async def test_a_lease_is_timed_by_the_server_and_runs_out_without_heartbeats(
        store: SqlEventStore) -> None:
    frozen = LeaseLiveness(store.read_db, lease_s=30)
    watcher = LeaseLiveness(store.read_db, judge_after_s=0)
    await watcher.start()
    owner = await frozen.start()
    frozen.stop_heartbeat()
    assert await watcher.is_alive(owner)
    # Thirty seconds later, by the server's clock (moved here by moving the lease back).
    await store.read_db().execute(
        "UPDATE owner_leases SET expires_at = clock_timestamp() - interval '1 second' "
        "WHERE owner = ?", (owner,))
    assert not await watcher.is_alive(owner)
    await frozen.renew()  # a process that comes back renews; new holds are safe again
    assert await watcher.is_alive(owner)
    await watcher.stop()


async def test_a_process_just_back_from_an_outage_declares_nobody_dead(
        store: SqlEventStore) -> None:
    # Every lease ran out while the server was away, the living processes' too; the first
    # to come back must not release the holds of those that have not renewed yet.
    gone = LeaseLiveness(store.read_db)
    owner = await gone.start()
    gone.stop_heartbeat()
    await store.read_db().execute(
        "UPDATE owner_leases SET expires_at = clock_timestamp() - interval '1 second'")
    now = [100.0]
    back = LeaseLiveness(store.read_db, lease_s=30, clock=lambda: now[0])
    await back.start()  # renewed only just now
    assert await back.is_alive(owner), "in doubt until its own lease has run for two beats"
    for _ in range(2):  # two beats later (the beats themselves, by hand)
        now[0] += back.heartbeat_s
        await back.renew()
    assert not await back.is_alive(owner)
    await back.stop()


async def test_leases_of_owners_dead_for_a_day_are_forgotten(store: SqlEventStore) -> None:
    old, sweeper = LeaseLiveness(store.read_db), LeaseLiveness(store.read_db)
    await old.start()
    old.stop_heartbeat()
    await store.read_db().execute(
        "UPDATE owner_leases SET expires_at = clock_timestamp() - interval '2 days'")
    await sweeper.start()
    await sweeper.forget_the_long_dead()
    rows = await store.read_db().fetchall("SELECT owner FROM owner_leases")
    assert [r["owner"] for r in rows] == [sweeper.owner]
    await sweeper.stop()


async def test_file_liveness_on_sqlite_keeps_its_meaning(tmp_path: Path) -> None:
    first, second = FileLiveness(tmp_path / "l.db"), FileLiveness(tmp_path / "l.db")
    owner = await first.start()
    await second.start()
    assert await second.is_alive(owner)
    await first.stop()
    assert not await second.is_alive(owner)
    await second.stop()


async def test_a_database_whose_chain_was_edited_is_refused_at_start_up(
        store: SqlEventStore, pg_url: str) -> None:
    ledger = LedgerService(store)
    alice = (await ledger.open_account("alice", "h")).id
    await ledger.top_up(alice, 100)
    await check_log(store)  # an honest log passes
    admin = await asyncpg.connect(pg_url)  # the superuser: it may drop the triggers
    try:
        await admin.execute("DROP TRIGGER events_no_update ON events")
        await admin.execute("UPDATE events SET data = replace(data, '100', '900') "
                            "WHERE type_name = 'CreditsDeposited'")
    finally:
        await admin.close()
    with pytest.raises(StoreCorrupted, match="broken at position 2"):
        await check_log(store)


async def test_processes_asking_at_once_for_a_secret_all_get_the_one_made_first(
        store: SqlEventStore, pg_url: str) -> None:
    other = postgres_ledger_store(pg_url)  # a second process, with its own pool
    await other.open()
    try:
        keys = await asyncio.gather(*(shared_secret(s.read_db(), "session_key")
                                      for s in [store, other] * 8))
        assert len(set(keys)) == 1 and len(keys[0]) == 32
        assert await shared_secret(other.read_db(), "session_key") == keys[0]  # and after
        assert await shared_secret(other.read_db(), "another") != keys[0]
    finally:
        await other.close()
