"""Range reads over the history, on both stores: the account's calendar days at their edges
(UTC+3, a day of 23 hours, a change of zone), keyset pages, and a statement's arithmetic over
random histories (hypothesis)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import LedgerService, TaskDraft, ledger_store_at
from ledger.control import Operation
from ledger.history import DayRange, History, StatementTally, day_range
from ledger.views import TransactionView

pytestmark = pytest.mark.parametrize("ledger_at", ["sqlite", "postgres"], indirect=True)
T = TypeVar("T")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 30, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class World:
    """A store on a loop of its own, so hypothesis (synchronous) can drive it example by
    example; every example is a new account in the same store."""

    def __init__(self, where: str | Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.clock = Clock()
        self.store = ledger_store_at(where, clock=self.clock)
        self.run(self.store.open())
        self.ledger = LedgerService(self.store)
        self.history = History(self.ledger)

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(work)

    def close(self) -> None:
        self.run(self.store.close())
        self.loop.close()

    async def account(self, time_zone: str = "UTC") -> int:
        opened = await self.ledger.open_account(f"u{uuid.uuid4().hex[:12]}", "not-a-hash")
        if time_zone != "UTC":
            await self.ledger.set_time_zone(opened.id, time_zone)
        return opened.id

    async def at(self, when: datetime, amount: int, user_id: int) -> None:
        """A movement at `when`: a top-up (amount > 0) or a direct charge."""
        self.clock.now = when
        if amount > 0:
            await self.ledger.top_up(user_id, amount)
        else:
            await self.ledger.withdraw(user_id, -amount, "charge")

    async def rows(self, user_id: int, days: DayRange, page_size: int = 1000
                   ) -> list[TransactionView]:
        return [t async for page in self.history.transaction_pages(user_id, days, page_size)
                for t in page]


@pytest.fixture
def world(ledger_at: str | Path) -> Iterator[World]:
    made = World(ledger_at)
    try:
        yield made
    finally:
        made.close()


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def test_moscow_days_begin_at_21_utc(world: World) -> None:
    async def check() -> None:
        user = await world.account("Europe/Moscow")
        await world.at(utc(2026, 11, 30, 20, 59, 59, 999999), 10, user)  # 23:59:59.999999
        await world.at(utc(2026, 11, 30, 21), 20, user)  # 00:00 on 1 December in Moscow
        await world.at(utc(2026, 12, 1, 20, 59, 59), -5, user)
        await world.at(utc(2026, 12, 1, 21), 40, user)  # 2 December already
        december_1 = await world.history.days(user, date(2026, 12, 1), date(2026, 12, 1))
        assert (december_1.start, december_1.end) == (utc(2026, 11, 30, 21), utc(2026, 12, 1, 21))
        assert [t.amount_credits for t in await world.rows(user, december_1)] == [20, -5]
        assert await world.history.opening_balance(user, december_1) == 10
        november = await world.history.days(user, None, date(2026, 11, 30))
        assert [t.amount_credits for t in await world.rows(user, november)] == [10]
        # The same instants read as UTC days once the zone changes: the range follows it.
        await world.ledger.set_time_zone(user, "UTC")
        utc_day = await world.history.days(user, date(2026, 12, 1), date(2026, 12, 1))
        assert [t.amount_credits for t in await world.rows(user, utc_day)] == [-5, 40]

    world.run(check())


def test_a_day_of_23_hours_in_new_york(world: World) -> None:
    async def check() -> None:
        user = await world.account("America/New_York")
        await world.at(utc(2026, 3, 8, 4, 59), 1, user)  # 23:59 EST on 7 March
        await world.at(utc(2026, 3, 8, 5), 2, user)  # midnight EST
        await world.at(utc(2026, 3, 9, 3, 59), 3, user)  # 23:59 EDT on 8 March
        await world.at(utc(2026, 3, 9, 4), 4, user)  # midnight EDT on 9 March
        days = await world.history.days(user, date(2026, 3, 8), date(2026, 3, 8))
        assert days.end is not None and days.start is not None
        assert days.end - days.start == timedelta(hours=23)
        assert [t.amount_credits for t in await world.rows(user, days)] == [2, 3]

    world.run(check())


def test_keyset_pages_give_every_row_once_in_order(world: World) -> None:
    async def check() -> None:
        user, other = await world.account(), await world.account()
        for n in range(1, 11):
            await world.at(utc(2026, 12, 1, n), n, user)
            await world.at(utc(2026, 12, 1, n), n, other)
        everything = day_range(None, None, "UTC")
        for size in (1, 3, 10, 11):
            pages = [p async for p in world.history.transaction_pages(user, everything, size)]
            assert all(len(p) <= size for p in pages)
            assert [t.amount_credits for p in pages for t in p] == list(range(1, 11))
        newest_first = await world.ledger.all_transactions(user)
        assert await world.rows(user, everything, 3) == list(reversed(newest_first))

    world.run(check())


# Movements over ten days: a day (0-9), a minute of that day, and an amount.
movements = st.lists(st.tuples(st.integers(0, 9), st.integers(0, 1439),
                               st.integers(-60, 100).filter(bool)), max_size=25)
zones = st.sampled_from(["UTC", "Europe/Moscow", "America/New_York", "Asia/Kolkata"])


@settings(max_examples=40, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture])
@given(moves=movements, tasks=st.lists(st.sampled_from(["completed", "failed", "rejected"]),
                                       max_size=4),
       zone=zones, first=st.integers(-1, 10), length=st.integers(0, 10))
def test_a_statement_adds_up_for_any_history(world: World, moves: list[tuple[int, int, int]],
                                             tasks: list[str], zone: str, first: int,
                                             length: int) -> None:
    async def check() -> None:
        user = await world.account(zone)
        start = utc(2026, 12, 1)
        for day, minute, amount in sorted(moves):
            when = start + timedelta(days=day, minutes=minute)
            balance = (await world.ledger.get_balance(user)).available_credits
            if amount < 0 and balance < -amount:
                amount = -balance or 1  # a charge never overdraws; a top-up instead
            await world.at(when, amount, user)
        for n, outcome in enumerate(tasks):  # predictions on the last day
            world.clock.now = start + timedelta(days=9, hours=23, minutes=n)
            await predict(world.ledger, user, outcome)
        first_day = date(2026, 12, 1) + timedelta(days=first)
        days = await world.history.days(user, first_day, first_day + timedelta(days=length))

        tally = StatementTally(await world.history.opening_balance(user, days))
        shown = [m async for page in world.history.movements(user, days, tally, page_size=4)
                 for m in page]
        totals = tally.totals()
        assert await world.history.totals(user, days) == totals  # the page's aggregate

        everything = list(reversed(await world.ledger.all_transactions(user)))
        assert days.start is not None and days.end is not None
        low, high = days.start.isoformat(timespec="microseconds"), days.end.isoformat(
            timespec="microseconds")
        before = [t for t in everything if t.created_at < low]
        assert shown == [t for t in everything if low <= t.created_at < high]
        assert totals.opening_credits == (before[-1].balance_after_credits if before else 0)
        assert totals.closing_credits == totals.opening_credits + sum(
            m.amount_credits for m in shown)
        assert totals.in_credits - totals.out_credits == sum(m.amount_credits for m in shown)
        running = totals.opening_credits
        for movement in shown:
            running += movement.amount_credits
            assert movement.balance_after_credits == running
        if not [t for t in everything if t.created_at >= high]:  # `to` reaches today
            live = await world.ledger.get_balance(user)
            assert totals.closing_credits == live.balance_credits

    world.run(check())


async def predict(ledger: LedgerService, user_id: int, outcome: str) -> None:
    """A prediction of 3 items that completes (a charge), fails, or cannot be paid."""
    balance = (await ledger.get_balance(user_id)).available_credits
    cost = balance + 1 if outcome == "rejected" else 3
    draft = TaskDraft(model_id=1, input_data=[1, 2, 3], input_indexes=[0, 1, 2], invalid=[],
                      cost_credits=cost)
    op = Operation(user_id=user_id, operation_id=uuid.uuid4().hex, kind="predict",
                   fingerprint="test")
    ticket = await ledger.submit_task(user_id, draft, op)
    if not ticket.run:
        return
    if outcome == "failed":
        await ledger.fail_task(user_id, ticket.task_id, "the model failed")
    else:
        await ledger.complete_task(user_id, ticket.task_id, [2, 4, 6], "prediction")
