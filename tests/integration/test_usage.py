"""Usage per day and model equals the charges of the credit history, on both stores: for random
histories and ranges (hypothesis), across time-zone changes, and after a rebuild from the log."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pgcluster import PgCluster

from ledger import LedgerService, Operation, Passwords, TaskDraft, UserService, ledger_store_at
from ledger.audit import audit
from ledger.usage import UsageReport
from ml import MLModelManager, MLService, default_models

T = TypeVar("T")
ZONES = ["UTC", "Europe/Moscow", "Asia/Kolkata", "Asia/Kathmandu", "America/New_York",
         "Europe/Berlin", "Pacific/Chatham"]
# Starts near daylight-saving changes (US in March, EU in October) and an ordinary day.
STARTS = [datetime(2026, 3, 7, 20, tzinfo=UTC), datetime(2026, 10, 24, 21, tzinfo=UTC),
          datetime(2026, 12, 1, 12, tzinfo=UTC)]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    """One store on its own event loop, shared by every example (each gets a new user)."""

    loop: asyncio.AbstractEventLoop
    clock: Clock
    ledger: LedgerService
    users: UserService
    ml: MLService
    location: str | Path
    names: Iterator[int]

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)


@pytest.fixture(params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    loop = asyncio.new_event_loop()
    cluster: PgCluster | None = None
    location: str | Path = tmp_path / "ledger.db"
    if request.param == "postgres":
        cluster = request.getfixturevalue("pg_cluster")
        location = loop.run_until_complete(cluster.create_database())
    clock = Clock(STARTS[0])
    store = ledger_store_at(location, clock=clock)
    loop.run_until_complete(store.open())
    ledger = LedgerService(store)
    try:
        yield World(loop, clock, ledger, UserService(ledger, Passwords.cheap()),
                    MLService(ledger, MLModelManager(default_models())), location,
                    itertools.count(1))
    finally:
        loop.run_until_complete(store.close())
        if cluster is not None:
            loop.run_until_complete(cluster.drop_database(str(location)))
        loop.close()


async def expected(ledger: LedgerService, user_id: int, first: date, last: date,
                   time_zone: str) -> dict[tuple[str, object], tuple[int, int, int]]:
    """The charges of the credit history whose local date is in [first, last], summed per
    day and per model, straight from the transactions and tasks."""
    from zoneinfo import ZoneInfo

    tasks = {t.id: t for t in await ledger.all_tasks(user_id)}
    sums: dict[tuple[str, object], tuple[int, int, int]] = {}
    for move in await ledger.all_transactions(user_id):
        day = datetime.fromisoformat(move.created_at).astimezone(ZoneInfo(time_zone)).date()
        if move.kind != "charge" or not first <= day <= last:
            continue
        task = tasks.get(move.task_id) if move.task_id is not None else None
        items = 0 if task is None else sum(o is not None for o in task.output_data or [])
        counts = (int(task is not None), items, -move.amount_credits)
        for key in (("day", day), ("model", None if task is None else task.model_id),
                    ("total", None)):
            sums[key] = tuple(a + b for a, b in zip(sums.get(key, (0, 0, 0)), counts,
                                                     strict=True))  # type: ignore[assignment]
    return sums


def as_sums(by_day: UsageReport, by_model: UsageReport) -> dict[tuple[str, object],
                                                               tuple[int, int, int]]:
    sums: dict[tuple[str, object], tuple[int, int, int]] = {}
    for row in by_day.rows:
        if row.credits or row.predictions:
            sums[("day", row.day)] = (row.predictions, row.items, row.credits)
    for row in by_model.rows:
        sums[("model", row.model_id)] = (row.predictions, row.items, row.credits)
    total = by_day.total
    assert total == by_model.total
    if total.credits or total.predictions:
        sums[("total", None)] = (total.predictions, total.items, total.credits)
    return sums


steps = st.lists(st.one_of(
    st.tuples(st.just("wait"), st.integers(1, 36 * 60)),  # minutes
    st.tuples(st.just("predict"), st.sampled_from([1, 2]),  # an invalid item is not charged
              st.lists(st.sampled_from([1, 2.5, "x"]), max_size=3).map(lambda i: [7, *i])),
    st.tuples(st.just("withdraw"), st.integers(1, 9)),
    st.tuples(st.just("zone"), st.sampled_from(ZONES)),
), min_size=1, max_size=25)


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=st.sampled_from(STARTS), history=steps,
       ranges=st.lists(st.tuples(st.integers(-2, 12), st.integers(0, 12)), min_size=1,
                       max_size=4))
def test_usage_sums_equal_the_charges_of_the_credit_history(
        world: World, start: datetime, history: list[tuple[Any, ...]],
        ranges: list[tuple[int, int]]) -> None:
    world.clock.now = start
    user_id = world.run(world.users.register(f"user{next(world.names)}", "correct horse")).id
    world.run(world.ledger.top_up(user_id, 1_000))
    zone = "UTC"
    for step in history:
        if step[0] == "wait":
            world.clock.now += timedelta(minutes=step[1])
        elif step[0] == "predict":
            world.run(world.ml.process_task(user_id, step[1], step[2]))
        elif step[0] == "withdraw":
            world.run(world.ledger.withdraw(user_id, step[1], "a direct charge"))
        else:
            zone = step[1]
            world.run(world.ledger.set_time_zone(user_id, zone))
    first_day = start.date()
    for offset, length in ranges:
        first = first_day + timedelta(days=offset)
        last = first + timedelta(days=length)
        by_day = world.run(world.ledger.usage(user_id, first, last, "day"))
        assert [row.day for row in by_day.rows] == [
            first + timedelta(days=n) for n in range(length + 1)]  # every day, zeros too
        by_model = world.run(world.ledger.usage(user_id, first, last, "model"))
        want = world.run(expected(world.ledger, user_id, first, last, zone))
        assert as_sums(by_day, by_model) == want


def test_a_zone_change_moves_past_charges_to_the_days_they_read_as_now(world: World) -> None:
    user_id = world.run(world.users.register("zoe", "correct horse")).id
    world.run(world.ledger.top_up(user_id, 100))
    for at, amount in ((datetime(2026, 12, 1, 18, 20, tzinfo=UTC), 1),  # 23:50 in Kolkata
                       (datetime(2026, 12, 1, 18, 40, tzinfo=UTC), 10),  # 00:10 on the 2nd
                       (datetime(2026, 12, 1, 22, 30, tzinfo=UTC), 100 - 11)):  # 01:30 Moscow
        world.clock.now = at
        world.run(world.ledger.withdraw(user_id, amount, "a direct charge"))

    def days() -> list[int]:
        report = world.run(world.ledger.usage(user_id, date(2026, 12, 1), date(2026, 12, 2)))
        return [row.credits for row in report.rows]

    assert days() == [100, 0]
    world.run(world.ledger.set_time_zone(user_id, "Asia/Kolkata"))
    assert days() == [1, 99]
    world.run(world.ledger.set_time_zone(user_id, "Europe/Moscow"))
    assert days() == [11, 89]
    world.run(world.ledger.set_time_zone(user_id, "UTC"))
    assert days() == [100, 0]
    world.clock.now = datetime(2026, 12, 1, 23, 59, tzinfo=UTC)
    assert world.run(world.ledger.today(user_id)) == date(2026, 12, 1)
    world.run(world.ledger.set_time_zone(user_id, "Asia/Kolkata"))
    assert world.run(world.ledger.today(user_id)) == date(2026, 12, 2)


def test_rows_the_model_could_not_predict_are_neither_charged_nor_counted(
        world: World) -> None:
    user_id = world.run(world.users.register("una", "correct horse")).id
    world.run(world.ledger.top_up(user_id, 100))
    draft = TaskDraft(model_id=1, input_data=[1, 2, 3], input_indexes=[0, 1, 2], invalid=[],
                      cost_credits=3)
    ticket = world.run(world.ledger.submit_task(user_id, draft, Operation(
        user_id=user_id, operation_id="op-1", kind="predict", fingerprint="f")))
    world.run(world.ledger.complete_task(
        user_id, ticket.task_id, [2.0, None, None], "2 rows unpredictable", cost_credits=1,
        unpredictable=[{"index": 1, "error": "no answer"}, {"index": 2, "error": "no answer"}]))
    day = STARTS[0].date()
    report = world.run(world.ledger.usage(user_id, day, day, "model"))
    assert [(r.model_id, r.predictions, r.items, r.credits) for r in report.rows] == [
        (1, 1, 1, 1)]
    want = world.run(expected(world.ledger, user_id, day, day, "UTC"))
    assert want[("model", 1)] == (1, 1, 1)


def test_the_usage_tables_are_equal_to_a_replay_of_the_log(tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    try:
        clock = Clock(STARTS[1])
        store = ledger_store_at(tmp_path / "ledger.db", clock=clock)
        loop.run_until_complete(store.open())
        ledger = LedgerService(store)
        ml = MLService(ledger, MLModelManager(default_models()))

        async def history() -> None:
            user_id = (await UserService(ledger, Passwords.cheap()).register(
                "ada", "correct horse")).id
            await ledger.top_up(user_id, 500)
            for hour in range(30):
                clock.now += timedelta(hours=1)
                await ml.process_task(user_id, 1 + hour % 2, [1, 2, "x"][: 1 + hour % 3])
                await ledger.withdraw(user_id, 1, "a direct charge")
                if hour == 12:
                    await ledger.set_time_zone(user_id, "Asia/Kathmandu")
            await store.close()

        loop.run_until_complete(history())
        report = loop.run_until_complete(audit(tmp_path / "ledger.db", show_progress=False))
        assert report.ok, report.render()
    finally:
        loop.close()
