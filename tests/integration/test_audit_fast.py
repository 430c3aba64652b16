"""The audit's fast path on every kind of event the ledger writes, on both stores: its
in-memory fold gives the very rows the projectors wrote, an honest log passes on it with
one process or two, and a changed row sends the audit to the projectors' replay."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from events.database import InlineDatabase
from ledger import LedgerService, Passwords, UserService, audit_fast, ledger_store_at
from ledger.admin import AdminService
from ledger.audit import _table_spec, audit, snapshot_postgres
from ledger.audit_jobs import tables
from ledger.control import Operation
from ledger.keys import KeyService
from ledger.projections import ledger_projectors
from ledger.service import TaskDraft
from ledger.spend import KeyLimit
from ledger.usernames import username_key
from ledger.views import BalanceView
from ml import MLModelManager, MLService, default_models

pytestmark = pytest.mark.parametrize("ledger_at", ["sqlite", "postgres"], indirect=True)


class Clock:
    """The store's clock, moved by the history: charges on two local days of one account."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)


@dataclass(frozen=True)
class Services:
    ledger: LedgerService
    users: UserService
    ml: MLService
    clock: Clock


async def every_kind_of_event(services: Services) -> None:
    """Accounts (one named in Cyrillic, whose key is not its lower case), top-ups, a charge,
    limits, a time zone, keys made and revoked, predictions settled (in part, with rows the
    model could not predict), failed and rejected; an operator's adjustments both ways, a
    suspension that releases an open hold, a role granted while suspended, a resume, roles
    granted and revoked from the command line; charges on two local days of a Moscow account,
    and a time zone changed after charges (usage's days folded again)."""
    ledger, ml = services.ledger, services.ml
    alice = int((await services.users.register("Alice", "correct horse")).id)
    bob = int((await services.users.register("bob", "correct horse")).id)
    carol = int((await services.users.register("carol", "correct horse")).id)
    await ledger.top_up(alice, 500)
    await ledger.top_up(bob, 100)
    await ledger.set_time_zone(alice, "Europe/Moscow")
    await ledger.set_limits(alice, 400, None)
    await ledger.set_limits(bob, None, 1000)
    keys = KeyService(ledger)
    issued = await keys.create(alice, name="ci", scope="predict", monthly_limit_credits=50)
    await ml.process_task(alice, 1, [1, 2.5, 1e-7],
                          key=KeyLimit(key_id=issued.view.id, monthly_limit_credits=50))
    await keys.revoke(alice, issued.view.id)
    await keys.create(bob, name="reader", scope="read", expires_in_days=30)
    services.clock.advance(30)  # 21:20 UTC: midnight has passed in Moscow, not in UTC
    await ml.process_task(alice, 1, [4])
    await ml.process_task(alice, 1, [1e308])  # fails: the output overflows
    await ml.process_task(carol, 1, [1])  # rejected: no credits
    draft = TaskDraft(model_id=1, input_data=[1.0, None, 3.0], input_indexes=[0, 1, 2],
                      invalid=[{"index": 3, "reason": "not a number"}], cost_credits=3)
    ticket = await ledger.submit_task(bob, draft, Operation(
        user_id=bob, operation_id=uuid.uuid4().hex, kind="predict", fingerprint="test"))
    await ledger.complete_task(bob, ticket.task_id, [2.0, None, 6.0], "partly predicted",
                               cost_credits=2,
                               unpredictable=[{"index": 1, "reason": "the model said no"}])
    await ledger.withdraw(bob, 5, "Charge")
    assert username_key("Сергей") != "сергей"  # с, е and р are keyed as Latin look-alikes
    sergei = int((await services.users.register("Сергей", "correct horse")).id)
    admin = AdminService(ledger)
    assert await admin.set_role("Alice", True, "root")
    await admin.adjust(alice, sergei, 40, "goodwill for the outage")
    held = await ledger.submit_task(sergei, TaskDraft(
        model_id=1, input_data=[1.0], input_indexes=[0], invalid=[], cost_credits=4),
        Operation(user_id=sergei, operation_id=uuid.uuid4().hex, kind="predict",
                  fingerprint="test"))
    await admin.suspend(alice, sergei, "chargeback under review")
    assert await admin.set_role("СЕРГЕЙ", True, "root")  # its flags keep the suspension
    await admin.resume(alice, sergei, "chargeback withdrawn")
    await admin.adjust(alice, sergei, -15, "the goodwill was too generous")
    assert await admin.set_role("сергей", False, "root")  # its flags keep the resume's reason
    assert await admin.set_role("bob", True, "root")
    assert await admin.set_role("bob", False, "root")
    assert await ledger.get_balance(sergei) == BalanceView(balance_credits=25, held_credits=0)
    task = await ledger.find_task(sergei, held.task_id)
    assert task is not None and task.status == "failed"
    await ledger.set_time_zone(bob, "Asia/Tokyo")  # bob's charges move to the next day
    await ledger.submit_task(bob, TaskDraft(  # left open: a hold still held
        model_id=1, input_data=[2.0], input_indexes=[0], invalid=[], cost_credits=4),
        Operation(user_id=bob, operation_id=uuid.uuid4().hex, kind="predict",
                  fingerprint="test"))


@pytest.fixture
async def audited(ledger_at: str | Path) -> AsyncIterator[str | Path]:
    clock = Clock(datetime(2026, 12, 1, 20, 50, tzinfo=UTC))  # 23:50 in Moscow
    store = ledger_store_at(ledger_at, clock=clock)
    await store.open()
    ledger = LedgerService(store)
    try:
        await every_kind_of_event(Services(
            ledger, UserService(ledger, Passwords.cheap()),
            MLService(ledger, MLModelManager(default_models())), clock))
    finally:
        await store.close()
    yield ledger_at


@pytest.mark.parametrize("jobs", [1, 2])
async def test_an_honest_log_of_every_kind_of_event_passes_on_the_fast_path(
        audited: str | Path, jobs: int) -> None:
    report = await audit(audited, show_progress=False, jobs=jobs)
    assert report.ok and report.fast_path, report.render()
    assert report.balances == 4 and report.events > 30


async def test_the_fold_gives_the_rows_the_projectors_wrote(
        audited: str | Path, tmp_path: Path) -> None:
    if not isinstance(audited, Path):  # what the audit of a PostgreSQL ledger folds
        copy = tmp_path / "snapshot.db"
        await snapshot_postgres(audited, copy)
        audited = copy
    uri = f"file:{audited}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as conn:
        fold, _, events = audit_fast._fold(conn, "", None)
        assert events == conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        for table in tables():
            live = conn.execute(f"SELECT * FROM {table}").fetchall()
            assert live, f"the history writes no row of {table}"
            assert sorted(fold.rows(table), key=repr) == sorted(live, key=repr), table
    db = await InlineDatabase.connect_inline(tmp_path / "replay.db")
    try:
        await db.executescript("\n".join(p.schema for p in ledger_projectors()))
        await db.execute("ATTACH DATABASE ? AS live", (uri,))
        specs = [await _table_spec(db, table) for table in tables()]
    finally:
        await db.close()
    assert audit_fast.audit_group(uri, "", None, specs) == audit_fast.GroupResult(True, events)


CHANGES = {
    "tasks": "UPDATE tasks SET output_data = '[2.0,null,7.0]' WHERE status = 'completed' "
             "AND cost_credits = 2",
    # SQLite's lower() leaves Cyrillic as it is: the key the projector did not write.
    "accounts": "UPDATE accounts SET username_key = lower(username) WHERE username = 'Сергей'",
    "account_flags": "UPDATE account_flags SET suspended = 1 WHERE reason IS NULL "
                     "AND is_operator = 0",
    "operator_actions": "UPDATE operator_actions SET amount_credits = 400 "
                        "WHERE kind = 'adjustment' AND amount_credits = 40",
    "transactions": "UPDATE transactions SET description = 'goodwill' "
                    "WHERE kind = 'adjustment' AND amount_credits = 40",
    "usage_days": "UPDATE usage_days SET day = day - 1 WHERE model_id = 0",  # bob's charge
}


@pytest.mark.parametrize("table", list(CHANGES))
async def test_a_changed_row_sends_the_audit_to_the_projectors(
        audited: str | Path, table: str) -> None:
    if not isinstance(audited, Path):
        pytest.skip("the row is changed in the SQLite file")
    with closing(sqlite3.connect(audited)) as conn:
        assert conn.execute(CHANGES[table]).rowcount == 1
        conn.commit()
    report = await audit(audited, show_progress=False, jobs=1)
    assert not report.ok and not report.fast_path
    assert list(report.differences) == [table]


@pytest.mark.parametrize("jobs", [1, 2])
async def test_a_hold_of_a_status_its_check_refuses_sends_the_audit_to_the_projectors(
        audited: str | Path, jobs: int) -> None:
    """The groups find holds by their (status, user_id) index: a row written past the CHECK
    with another status is in no group's rows, so the plan must see it."""
    if not isinstance(audited, Path):
        pytest.skip("the row is written into the SQLite file")
    with closing(sqlite3.connect(audited)) as conn:
        conn.execute("PRAGMA ignore_check_constraints = ON")
        conn.execute("INSERT INTO holds SELECT task_id + 1000, user_id, amount_credits, owner, "
                     "'lost', opened_at FROM holds LIMIT 1")
        conn.commit()
    report = await audit(audited, show_progress=False, jobs=jobs)
    assert not report.ok and not report.fast_path
    assert list(report.differences) == ["holds"]
