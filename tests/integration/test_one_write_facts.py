"""The one-write path uses what it read in its own write (the stream's version, the account's
balance and time zone) instead of reading the log and the projections again, and keeps no
operations row for an id the server made. The rows it writes must still be the rows an
event-by-event replay gives, on both stores, wherever those reads would have mattered: an
account holding credits for a task still running, a time zone whose day is not UTC's, an
account row off its log."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from events import ConcurrencyError, SqlSession
from ledger import LedgerService, Operation, Passwords, TaskDraft, UserService, ledger_store_at
from ledger import account as decide
from ledger.audit import KEYS, audit
from ledger.events import TaskCompleted, TimeZoneSet
from ledger.projections import BALANCE_FACT
from ledger.queries import load_account
from ledger.service import _submitted, account_stream
from ml import MLModel, MLModelManager, MLService, ModelSpec, default_models

pytestmark = pytest.mark.parametrize("ledger_at", ["sqlite", "postgres"], indirect=True)

# Noon in UTC is 02:00 of the next day at UTC+14: a day counted in the wrong zone shows.
NOON = datetime(2026, 12, 1, 12, tzinfo=UTC)
FAR_EAST = "Pacific/Kiritimati"


async def tables(ledger: LedgerService) -> dict[str, list[dict[str, Any]]]:
    db = ledger.store.read_db()
    return {table: await db.fetchall(f"SELECT * FROM {table} ORDER BY {key}")
            for table, key in KEYS.items()}


async def operation_ids(ledger: LedgerService, user_id: int) -> list[str]:
    rows = await ledger.store.read_db().fetchall(
        "SELECT operation_id FROM operations WHERE user_id = ? AND kind = 'predict' "
        "ORDER BY operation_id",
        (user_id,))
    return [str(row["operation_id"]) for row in rows]


async def test_rows_equal_the_replay_with_a_hold_open_and_a_far_zone(
        ledger_at: str | Path) -> None:
    store = ledger_store_at(ledger_at, clock=lambda: NOON)
    await store.open()
    try:
        ledger = LedgerService(store)
        users = UserService(ledger, Passwords.cheap())
        ml = MLService(ledger, MLModelManager(default_models()))
        alice = (await users.register("alice", "correct horse")).id
        await ledger.top_up(alice, 100)
        await ledger.set_time_zone(alice, FAR_EAST)
        # A two-phase task still running: 7 credits held, so balance and available differ.
        ticket = await ledger.submit_task(alice, TaskDraft(
            model_id=1, input_data=[1.0] * 7, input_indexes=list(range(7)), invalid=[],
            cost_credits=7), Operation(user_id=alice, operation_id="slow", kind="predict",
                                       fingerprint="slow"))
        assert ticket.run
        first = await ml.process_task(alice, 1, [1.0, 2.0, 3.0])  # no key: a fresh id
        await ledger.withdraw(alice, 5, "a direct charge between two predictions")
        keyed = await ml.process_task(alice, 1, [4.0, 5.0], operation_id="api:k-1")
        again = await ml.process_task(alice, 1, [4.0, 5.0], operation_id="api:k-1")

        assert (first.status, keyed.status, again.status) == ("completed",) * 3
        assert again.task.id == keyed.task.id and again.balance == keyed.balance
        balance = await ledger.get_balance(alice)
        assert (balance.balance_credits, balance.held_credits) == (100 - 3 - 5 - 2, 7)
        history = await ledger.all_transactions(alice)
        assert [t.balance_after_credits for t in history] == [90, 92, 97, 100]
        usage = await ledger.usage(alice, date(2026, 12, 1), date(2026, 12, 2), "day")
        assert [(r.day, r.credits) for r in usage.rows] == [
            (date(2026, 12, 1), 0), (date(2026, 12, 2), 10)], "a day of the account's zone"
        # The keyed request keeps its row (retries replay it); the fresh id none at all.
        assert await operation_ids(ledger, alice) == ["api:k-1", "slow"]

        written = await tables(ledger)
        assert await store.rebuild_projections() > 0  # event by event, from the log
        assert await tables(ledger) == written
        report = await audit(ledger_at, show_progress=False)
        assert report.ok, report.render()
    finally:
        await store.close()


async def test_facts_reach_only_the_append_made_at_their_version(
        ledger_at: str | Path) -> None:
    """A writer that read the account, then appended twice: the facts it handed over
    describe the state before its first append, so the second must not be given them."""
    store = ledger_store_at(ledger_at)
    await store.open()
    try:
        ledger = LedgerService(store)
        alice = (await ledger.open_account("alice", "not-a-real-hash")).id
        await ledger.top_up(alice, 50)
        stream = account_stream(alice)
        draft = TaskDraft(model_id=1, input_data=[1.0, 2.0], input_indexes=[0, 1],
                          invalid=[], cost_credits=2)

        async def work(s: SqlSession) -> None:
            account = await load_account(s.db, alice)
            s.read_in_write(stream, account.version, {BALANCE_FACT: 1_000_000})  # wrong
            await s.append(stream, account.version,
                           [TimeZoneSet(user_id=alice, time_zone="Europe/Moscow")])
            account = await load_account(s.db, alice)
            submitted = await _submitted(s, alice, draft)
            await s.append(stream, account.version, decide.complete_at_once(
                account, submitted, "test", None, charged_credits=2, description="two",
                completed=TaskCompleted(user_id=alice, task_id=submitted.task_id,
                                        output_data=[2.0, 4.0], cost_credits=2,
                                        unpredictable=[])))

        await store.transact(work)
        history = await ledger.all_transactions(alice)
        assert [t.balance_after_credits for t in history] == [48, 50]
        written = await tables(ledger)
        await store.rebuild_projections()
        assert await tables(ledger) == written
    finally:
        await store.close()


@pytest.mark.parametrize("edit", [-1, +1], ids=["behind", "ahead"])
async def test_an_account_row_off_its_log_is_refused_and_writes_nothing(
        ledger_at: str | Path, edit: int) -> None:
    """The append no longer runs its own MAX(version): the account's read brings the log's
    version along. An accounts row edited behind its log, or ahead of it (which UNIQUE
    alone would let through as a gap in the stream's versions), is refused whole, as the
    separate read refused it; the two-phase path's first write too."""
    store = ledger_store_at(ledger_at)
    await store.open()
    try:
        ledger = LedgerService(store)
        ml = MLService(ledger, MLModelManager(default_models()))
        slow = MLService(ledger, MLModelManager(default_models()), one_transaction=False)
        alice = (await ledger.open_account("alice", "not-a-real-hash")).id
        await ledger.top_up(alice, 50)

        async def off(s: SqlSession) -> None:
            await s.db.execute("UPDATE accounts SET version = version + ? WHERE user_id = ?",
                               (edit, alice))

        await store.transact(off)
        head = await store.head_position()
        for service in (ml, slow):
            with pytest.raises(ConcurrencyError):
                await service.process_task(alice, 1, [1.0, 2.0])
        assert await store.head_position() == head
        assert (await ledger.get_balance(alice)).balance_credits == 50
        await store.rebuild_projections()  # the row as its log says: writes go through again
        for service in (ml, slow):
            assert (await service.process_task(alice, 1, [1.0, 2.0])).status == "completed"
        stream = [r.version async for r in store.read_stream(account_stream(alice))]
        assert stream == list(range(1, len(stream) + 1)), "a gap in the stream's versions"
        report = await audit(ledger_at, show_progress=False)
        assert report.ok, report.render()
    finally:
        await store.close()


class HalfPredictable(MLModel):
    """Predicts the positive rows; the others it cannot (NaN): charged for half the quote."""

    def predict(self, data: list[Any]) -> list[Any]:
        return [x * 2 if x > 0 else math.nan for x in data]


@pytest.mark.parametrize("one_transaction", [True, False], ids=["one_write", "two_phase"])
async def test_a_keyed_retry_of_a_partly_charged_task_reports_what_was_charged(
        ledger_at: str | Path, one_transaction: bool) -> None:
    """Both paths store and replay the charge, not the quote, for a key's retry."""
    store = ledger_store_at(ledger_at)
    await store.open()
    try:
        ledger = LedgerService(store)
        users = UserService(ledger, Passwords.cheap())
        models = MLModelManager(default_models())
        models.register(ModelSpec(id=8, name="Half", description="half", factory=HalfPredictable,
                                  price_per_item_credits=2, max_items=10, one_transaction=True))
        ml = MLService(ledger, models, one_transaction=one_transaction)
        alice = (await users.register("alice", "correct horse")).id
        await ledger.top_up(alice, 40)

        first = await ml.process_task(alice, 8, [1, -1, 2], operation_id="api:k-1")
        again = await ml.process_task(alice, 8, [1, -1, 2], operation_id="api:k-1")

        assert (first.status, again.status) == ("completed", "completed")
        assert (first.cost_credits, first.quoted_credits) == (4, 4), "2 of 3 rows, 2 each"
        assert (again.cost_credits, again.quoted_credits) == (4, 4)
        assert (await ledger.get_balance(alice)).balance_credits == 36
        row = await store.read_db().fetchone(
            "SELECT outcome FROM operations WHERE operation_id = 'api:k-1'")
        assert row is not None and json.loads(row["outcome"])["cost"] == 4
    finally:
        await store.close()
