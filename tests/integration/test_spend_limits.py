"""Spend limits enforced in the hold's write transaction, on both stores: periods in the
account's time zone, holds counted, releases not, keys' own limits, races, the audit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ledger import InvalidSetting, KeyLimit, LedgerService, Passwords, UserService, ledger_store_at
from ledger.audit import audit
from ml import MLModelManager, MLService, default_models

pytestmark = pytest.mark.parametrize("ledger_at", ["sqlite", "postgres"], indirect=True)

PRICE = 3  # three items on the Doubler, at 1 credit each


class Clock:
    """The store's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass(frozen=True)
class World:
    clock: Clock
    ledger: LedgerService
    ml: MLService
    user_id: int


@pytest.fixture
async def world(ledger_at: str | Path) -> AsyncIterator[World]:
    clock = Clock(datetime(2026, 12, 1, 12, tzinfo=UTC))
    store = ledger_store_at(ledger_at, clock=clock)
    await store.open()
    ledger = LedgerService(store)
    try:
        user = await UserService(ledger, Passwords.cheap()).register("alice", "correct horse")
        await ledger.top_up(user.id, 1_000)
        yield World(clock, ledger, MLService(ledger, MLModelManager(default_models())),
                    user.id)
    finally:
        await store.close()


async def predict(w: World, key: KeyLimit | None = None) -> str:
    result = await w.ml.process_task(w.user_id, 1, [1, 2, 3], key=key)
    return result.status


async def test_a_prediction_past_the_daily_limit_is_rejected_and_charges_nothing(
        world: World) -> None:
    await world.ledger.set_limits(world.user_id, 7, None)
    assert [await predict(world) for _ in range(3)] == ["completed", "completed", "rejected"]

    rejected = (await world.ledger.tasks_page(world.user_id, limit=1)).data[0]
    assert (rejected.status, rejected.error, rejected.cost_credits) == (
        "rejected", "spend_limit_reached", 0)
    assert (await world.ledger.get_balance(world.user_id)).balance_credits == 1_000 - 6
    view = await world.ledger.limits(world.user_id)
    assert (view.daily.spent_credits, view.daily.left_credits) == (6, 1)
    assert view.daily.resets_at == datetime(2026, 12, 2, tzinfo=UTC)


async def test_the_refusal_names_the_limit_what_is_left_and_when_it_resets(
        world: World) -> None:
    await world.ledger.set_time_zone(world.user_id, "Europe/Moscow")
    await world.ledger.set_limits(world.user_id, None, 4)
    assert await predict(world) == "completed"
    result = await world.ml.process_task(world.user_id, 1, [1, 2, 3])
    assert result.refusal is not None
    assert (result.refusal.limit, result.refusal.left_credits, result.refusal.resets_at) == (
        "monthly", 1, datetime(2026, 12, 31, 21, tzinfo=UTC))


async def test_the_day_resets_exactly_at_local_midnight(world: World) -> None:
    await world.ledger.set_time_zone(world.user_id, "Europe/Moscow")
    await world.ledger.set_limits(world.user_id, 3, None)
    world.clock.now = datetime(2026, 12, 1, 20, 59, 59, tzinfo=UTC)  # 23:59:59 in Moscow
    assert [await predict(world), await predict(world)] == ["completed", "rejected"]
    world.clock.now = datetime(2026, 12, 1, 21, tzinfo=UTC)  # midnight in Moscow
    assert await predict(world) == "completed"
    assert (await world.ledger.limits(world.user_id)).daily.spent_credits == 3


async def test_an_open_hold_is_counted_while_its_model_runs(world: World) -> None:
    from ledger import Operation, TaskDraft

    await world.ledger.set_limits(world.user_id, 5, None)
    draft = TaskDraft(model_id=1, input_data=[1, 2, 3], input_indexes=[0, 1, 2], invalid=[],
                      cost_credits=3)
    ticket = await world.ledger.submit_task(
        world.user_id, draft, Operation(user_id=world.user_id, operation_id="a",
                                        kind="predict", fingerprint="x"))
    assert ticket.run
    assert (await world.ledger.limits(world.user_id)).daily.spent_credits == 3
    assert await predict(world) == "rejected"  # 3 held + 3 > 5
    await world.ledger.fail_task(world.user_id, ticket.task_id, "gone")
    assert (await world.ledger.limits(world.user_id)).daily.spent_credits == 0
    assert await predict(world) == "completed"


async def test_a_keys_monthly_limit_counts_only_that_keys_spending(world: World) -> None:
    key = KeyLimit(key_id="key_0000000000000001", monthly_limit_credits=3)
    assert await predict(world) == "completed"  # a login's spending: not the key's
    assert [await predict(world, key), await predict(world, key)] == ["completed", "rejected"]
    other = KeyLimit(key_id="key_0000000000000002", monthly_limit_credits=3)
    assert await predict(world, other) == "completed"
    result = await world.ml.process_task(world.user_id, 1, [1, 2, 3], key=key)
    assert result.refusal is not None and result.refusal.limit == "key_monthly"


async def test_changing_the_time_zone_mid_month_moves_the_periods_not_the_spending(
        world: World) -> None:
    await world.ledger.set_limits(world.user_id, None, 6)
    world.clock.now = datetime(2026, 11, 30, 22, tzinfo=UTC)  # still November in UTC
    assert await predict(world) == "completed"
    world.clock.now = datetime(2026, 12, 1, 1, tzinfo=UTC)
    assert await predict(world) == "completed"
    assert (await world.ledger.limits(world.user_id)).monthly.spent_credits == 3
    # In Moscow both were spent in December (01:00 and 04:00 on the 1st).
    await world.ledger.set_time_zone(world.user_id, "Europe/Moscow")
    assert (await world.ledger.limits(world.user_id)).monthly.spent_credits == 6
    assert await predict(world) == "rejected"


@pytest.mark.parametrize("daily, monthly", [(-1, None), (True, None), (None, 1.5),
                                            (10**12 + 1, None), ("5", None)])
async def test_a_bad_limit_is_refused_and_nothing_is_written(
        world: World, daily: object, monthly: object) -> None:
    before = await world.ledger.store.read_db().fetchone("SELECT COUNT(*) AS n FROM events")
    with pytest.raises(InvalidSetting):
        await world.ledger.set_limits(world.user_id, daily, monthly)  # type: ignore[arg-type]
    with pytest.raises(InvalidSetting):
        await world.ledger.set_time_zone(world.user_id, "Mars/Olympus")
    after = await world.ledger.store.read_db().fetchone("SELECT COUNT(*) AS n FROM events")
    assert before == after


async def test_fifty_concurrent_predictions_spend_exactly_what_the_daily_limit_covers(
        world: World, ledger_at: str | Path) -> None:
    covered = 13
    await world.ledger.set_limits(world.user_id, covered * PRICE + PRICE - 1, None)
    statuses = await asyncio.gather(*(predict(world) for _ in range(50)))
    assert statuses.count("completed") == covered
    assert statuses.count("rejected") == 50 - covered
    view = await world.ledger.limits(world.user_id)
    assert view.daily.spent_credits == covered * PRICE <= view.daily.limit_credits  # type: ignore[operator]
    tasks = await world.ledger.all_tasks(world.user_id)
    assert {t.error for t in tasks if t.status == "rejected"} == {"spend_limit_reached"}
    report = await audit(ledger_at, show_progress=False)
    assert report.ok, report.render()


async def test_a_clock_a_moment_behind_still_checks_the_day_its_hold_may_land_in(
        world: World) -> None:
    # Another process, its clock a second ahead, already spent tomorrow's limit.
    await world.ledger.set_limits(world.user_id, 3, None)
    world.clock.now = datetime(2026, 12, 2, 0, 0, 1, tzinfo=UTC)
    assert await predict(world) == "completed"
    world.clock.now = datetime(2026, 12, 2, tzinfo=UTC) - timedelta(seconds=1)
    assert (await world.ledger.limits(world.user_id)).daily.spent_credits == 0
    assert await predict(world) == "rejected"
