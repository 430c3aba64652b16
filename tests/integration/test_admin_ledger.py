"""The operator's use cases on both stores: adjustments race-free and idempotent, suspension
releasing holds and refusing the account, and the audit replaying all of it."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from events import SQLiteEventStore, SqlSession
from ledger import BalanceView, InsufficientCredits, Operation, TaskDraft, UnknownHold
from ledger.admin import AdminService
from ledger.audit import audit
from ledger.errors import SuspendedAccount, SuspensionConflict
from tests.integration.store_faults import held_inside

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import Services

pytestmark = pytest.mark.parametrize("ledger_at", ["sqlite", "postgres"], indirect=True)


async def user_with(services: Services, name: str, credits: int) -> int:
    user_id = int((await services.users.register(name, "correct horse")).id)
    if credits:
        await services.ledger.top_up(user_id, credits)
    return user_id


async def test_concurrent_debits_never_take_the_available_balance_below_zero(
        services: Services, ledger_at: str | Path) -> None:
    admin = AdminService(services.ledger)
    operator = await user_with(services, "olga", 0)
    user_id = await user_with(services, "alice", 100)

    async def debit(i: int) -> bool:
        try:
            await admin.adjust(operator, user_id, -7, f"refund clawback {i}", f"k{i}")
        except InsufficientCredits:
            return False
        return True

    accepted = await asyncio.gather(*(debit(i) for i in range(30)))
    assert accepted.count(True) == 14  # 14 × 7 = 98 of the 100
    assert await services.ledger.get_balance(user_id) == BalanceView(balance_credits=2,
                                                                      held_credits=0)
    history = await services.ledger.all_transactions(user_id)
    assert [t.kind for t in history].count("adjustment") == 14
    assert (await admin.totals()).balanced
    report = await audit(ledger_at, show_progress=False)
    assert report.ok, report.render()


async def test_one_idempotency_key_sent_many_times_at_once_adjusts_once(
        services: Services, ledger_at: str | Path) -> None:
    admin = AdminService(services.ledger)
    operator = await user_with(services, "olga", 0)
    user_id = await user_with(services, "alice", 10)
    outcomes = await asyncio.gather(
        *(admin.adjust(operator, user_id, 25, "goodwill credit", "same-key") for _ in range(20)),
        return_exceptions=True)
    done = [o for o in outcomes if not isinstance(o, BaseException)]
    # Racers that found the first still running are told so (409); none adjusted again.
    assert done and all(o == done[0] for o in done)
    assert await services.ledger.get_balance(user_id) == BalanceView(balance_credits=35,
                                                                      held_credits=0)
    again = await admin.adjust(operator, user_id, 25, "goodwill credit", "same-key")
    assert again == done[0]
    assert len((await admin.actions()).data) == 1
    report = await audit(ledger_at, show_progress=False)
    assert report.ok, report.render()


async def test_a_debit_leaves_held_credits_alone(services: Services) -> None:
    admin = AdminService(services.ledger)
    operator = await user_with(services, "olga", 0)
    user_id = await user_with(services, "alice", 10)
    await services.ledger.submit_task(user_id, draft(6), op("t1", user_id))
    with pytest.raises(InsufficientCredits):
        await admin.adjust(operator, user_id, -5, "too much")  # only 4 are available
    await admin.adjust(operator, user_id, -4, "all that is free")
    assert await services.ledger.get_balance(user_id) == BalanceView(balance_credits=6,
                                                                      held_credits=6)


def draft(cost_credits: int) -> TaskDraft:
    return TaskDraft(model_id=1, input_data=[1.0], input_indexes=[0], invalid=[],
                     cost_credits=cost_credits)


def op(name: str, user_id: int) -> Operation:
    return Operation(user_id=user_id, operation_id=name, kind="predict", fingerprint=name)


async def test_suspension_releases_holds_refuses_the_account_and_resumes(
        services: Services, ledger_at: str | Path) -> None:
    admin = AdminService(services.ledger)
    operator = await user_with(services, "olga", 0)
    user_id = await user_with(services, "alice", 10)
    ticket = await services.ledger.submit_task(user_id, draft(6), op("t1", user_id))
    assert ticket.run
    await admin.suspend(operator, user_id, "chargeback under review")
    assert await services.ledger.get_balance(user_id) == BalanceView(balance_credits=10,
                                                                      held_credits=0)
    task = await services.ledger.find_task(user_id, ticket.task_id)
    assert task is not None and task.status == "failed"
    with pytest.raises(UnknownHold):  # the model finishing after the suspension charges nothing
        await services.ledger.complete_task(user_id, ticket.task_id, [2.0], "charge")
    with pytest.raises(SuspendedAccount):
        await services.ledger.submit_task(user_id, draft(1), op("t2", user_id))
    with pytest.raises(SuspendedAccount):
        await services.users.authenticate("alice", "correct horse")
    with pytest.raises(SuspensionConflict):
        await admin.suspend(operator, user_id, "twice")
    resumed = await admin.resume(operator, user_id, "cleared")
    assert not resumed.suspended
    assert await services.users.authenticate("alice", "correct horse") == user_id
    assert (await services.ledger.submit_task(user_id, draft(1), op("t3", user_id))).run
    kinds = [a.kind for a in (await admin.actions()).data]
    assert kinds == ["resume", "suspend"]
    report = await audit(ledger_at, show_progress=False)
    assert report.ok, report.render()


async def test_the_role_is_an_event_the_audit_replays(
        services: Services, ledger_at: str | Path) -> None:
    admin = AdminService(services.ledger)
    user_id = await user_with(services, "olga", 0)
    assert await admin.set_role("olga", True, "root")
    assert not await admin.set_role("OLGA", True, "root")  # granted once
    assert await admin.flags(user_id) == (True, False)
    assert await admin.set_role("olga", False, "root")
    assert await admin.flags(user_id) == (False, False)
    assert [a.kind for a in (await admin.actions()).data] == ["revoke", "grant"]
    report = await audit(ledger_at, show_progress=False)
    assert report.ok, report.render()


async def test_an_edited_suspension_or_adjustment_is_found_by_the_audit(
        services: Services, ledger_at: str | Path) -> None:
    """Someone lifts a suspension or changes an adjustment in the projections, not the log."""
    admin = AdminService(services.ledger)
    operator = await user_with(services, "olga", 0)
    user_id = await user_with(services, "alice", 10)
    await admin.adjust(operator, user_id, 5, "goodwill")
    await admin.suspend(operator, user_id, "chargeback")

    async def edit(s: SqlSession) -> None:  # the projections, not the log
        await s.db.execute("UPDATE account_flags SET suspended = 0")
        await s.db.execute("UPDATE operator_actions SET amount_credits = 500 "
                           "WHERE kind = 'adjustment'")

    await services.store.transact(edit)
    report = await audit(ledger_at, show_progress=False)
    assert not report.ok
    assert set(report.differences) == {"account_flags", "operator_actions"}
    assert user_id in report.accounts_differ


async def test_the_ledger_totals_read_apart_from_the_requests_reads(
        services: Services, ledger_at: str | Path) -> None:
    """The totals sum every system posting (about 1 s at 4.4M), so on SQLite they read on
    the store's background connection, not on the one requests' reads share: while that
    one is held (here inside SQLite, by a function that waits), the totals are answered."""
    if not isinstance(services.store, SQLiteEventStore):
        pytest.skip("PostgreSQL's reads each take a pool connection of their own")
    admin = AdminService(services.ledger)
    await user_with(services, "alice", 30)
    async with held_inside(services.store.read_db()) as hold:
        totals = await asyncio.wait_for(admin.totals(), 10)
        assert totals.top_ups_credits == 30 and totals.balanced and not hold.done()
    assert await hold == {"held": 1}
