"""Group commit under failure: when a batch's transaction is lost, no job in it may report
success, and the writer goes on serving the next batch."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from events import Event, EventCodec, SQLiteEventStore, SQLiteSession, StoreError, StoreUnavailable
from events.database import Database
from events.verify import verify_chain
from ledger import BalanceView, LedgerService, ledger_store
from ledger.audit import audit
from ledger.service import account_stream


async def test_a_store_failure_in_one_job_fails_every_top_up_of_its_batch(
        tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    store = ledger_store(path)
    await store.open()
    ledger = LedgerService(store)
    try:
        user = (await ledger.open_account("alice", "not-a-real-hash")).id
        versions_seen: list[int] = []

        async def failing(session: SQLiteSession) -> None:
            # The first top-up ran in this very transaction: its event is visible here, so
            # only the batch's failure path stands between it and a false "201 Created".
            versions_seen.append(await session.stream_version(account_stream(user)))
            raise StoreUnavailable("database or disk is full")

        outcomes = await asyncio.gather(
            ledger.top_up(user, 10, "key-1"), store.transact(failing),
            ledger.top_up(user, 20, "key-2"), return_exceptions=True)

        assert versions_seen == [2], "the jobs did not share one transaction"
        assert [type(o) for o in outcomes] == [StoreUnavailable] * 3, outcomes
        assert await ledger.get_balance(user) == BalanceView(balance_credits=0, held_credits=0)
        assert await store.head_position() == 1  # only AccountOpened
        unused = await store.read_db().fetchall("SELECT operation_id FROM operations")
        assert unused == [], "a key was recorded for a write that did not happen"

        # The keys were not used, so the client's retries apply each top-up exactly once.
        first = await ledger.top_up(user, 10, "key-1")
        assert (await ledger.top_up(user, 20, "key-2")).balance.balance_credits == 30
        assert await ledger.top_up(user, 10, "key-1") == first
        assert await ledger.get_balance(user) == BalanceView(balance_credits=30, held_credits=0)
    finally:
        await store.close()
    report = await audit(path, show_progress=False)
    assert report.ok, report.render()


@dataclass(frozen=True, kw_only=True)
class Noted(Event, type_name="Noted"):
    note: str


class ForeignKeyStore(SQLiteEventStore):
    """A store whose writer checks foreign keys, deferred to COMMIT by the schema below."""

    async def create_schema(self, db: Database) -> None:
        await db.execute("PRAGMA foreign_keys = ON")
        await super().create_schema(db)


DEFERRED_SCHEMA = """
CREATE TABLE IF NOT EXISTS parents (id INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS children (
    id        INTEGER PRIMARY KEY,
    parent_id INTEGER NOT NULL REFERENCES parents (id) DEFERRABLE INITIALLY DEFERRED
);
"""


async def test_a_batch_whose_commit_fails_reports_the_failure_to_every_job(
        tmp_path: Path) -> None:
    codec = EventCodec()
    codec.register(Noted)
    store = ForeignKeyStore(tmp_path / "events.db", codec, control_schema=DEFERRED_SCHEMA)
    await store.open()
    try:
        def job(note: str, orphan: bool = False) -> Any:
            async def work(session: SQLiteSession) -> str:
                await session.append(note, 0, [Noted(note=note)])
                if orphan:  # accepted now, refused only when the whole batch commits
                    await session.db.execute("INSERT INTO children VALUES (1, 404)")
                return note
            return work

        outcomes = await asyncio.gather(
            store.transact(job("first")), store.transact(job("orphan", orphan=True)),
            store.transact(job("third")), return_exceptions=True)

        assert all(isinstance(o, StoreError) for o in outcomes), outcomes
        assert all("FOREIGN KEY" in str(o) for o in outcomes), "not the COMMIT that failed"
        assert await store.head_position() == 0
        assert await store.read_db().fetchall("SELECT * FROM children") == []
        # The writer rolled back and lives on: the next batch commits at position 1.
        assert [r.position for r in await store.append("after", 0, [Noted(note="ok")])] == [1]
        assert (await verify_chain(store.read_rows())).events == 1
    finally:
        await store.close()
