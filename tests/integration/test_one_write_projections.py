"""A task decided in one write has its projection rows written once, in their final state:
they must be exactly the rows an event-by-event replay of the log gives, on both stores."""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING, Any

import pytest

from ledger import account as decide
from ledger.audit import KEYS, audit
from ml import MLModel, MLModelManager, MLService, ModelSpec, default_models

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import Services

pytestmark = pytest.mark.parametrize("ledger_at", ["sqlite", "postgres"], indirect=True)


class HalfUnpredictable(MLModel):
    """Predicts the positive numbers; NaN (uncharged, reported) for the rest."""

    def predict(self, data: list[float]) -> list[float]:
        return [x * 2 if x > 0 else math.nan for x in data]


class Exploding(MLModel):
    def predict(self, data: list[float]) -> list[float]:
        raise RuntimeError("out of memory")


def one_write_models() -> MLModelManager:
    manager = MLModelManager(default_models())
    for model_id, model in ((8, HalfUnpredictable), (9, Exploding)):
        manager.register(ModelSpec(id=model_id, name=model.__name__, description="test",
                                   price_per_item_credits=2, max_items=10, factory=model,
                                   one_transaction=True))
    return manager


async def tables(services: Services) -> dict[str, list[dict[str, Any]]]:
    db = services.store.read_db()
    return {table: await db.fetchall(f"SELECT * FROM {table} ORDER BY {key}")
            for table, key in KEYS.items()}


async def test_one_write_rows_equal_an_event_by_event_replay(
        services: Services, ledger_at: str | Path) -> None:
    ml = MLService(services.ledger, one_write_models())
    user_id = int((await services.users.register("alice", "correct horse")).id)
    await services.ledger.top_up(user_id, 40)
    results = [await ml.process_task(user_id, model_id, data) for model_id, data in [
        (1, [1, 2, 3]), (8, [1, -1, "x", 2]), (9, [5, 6]), (2, [1] * 10), (8, [3] * 10),
        (8, [-1])]]
    assert [r.status for r in results] == [
        "completed", "completed", "failed", "completed", "rejected", "failed"]
    assert [r.cost_credits for r in results] == [3, 4, 0, 20, 0, 0]
    assert results[1].invalid == sorted(results[1].invalid, key=lambda e: e["index"])
    assert {e["index"] for e in results[1].invalid} == {1, 2}  # NaN output; not a number
    balance = await services.ledger.get_balance(user_id)
    assert (balance.balance_credits, balance.held_credits) == (40 - 27, 0)

    written = await tables(services)
    assert await services.store.rebuild_projections() > 0  # event by event, from the log
    assert await tables(services) == written
    report = await audit(ledger_at, show_progress=False)
    assert report.ok, report.render()


async def test_one_write_replies_show_the_rows_and_balance_as_stored(
        services: Services) -> None:
    """The one-write path builds its reply from the events it wrote, not a read back: the
    task and the balance must be what a read of the projections gives, for every ending
    (charged, part charged, failed, refused for the balance, refused by a limit), and for
    several predictions decided in one transaction (their ids taken one after another)."""
    ml = MLService(services.ledger, one_write_models())
    user_id = int((await services.users.register("alice", "correct horse")).id)
    other = int((await services.users.register("bob", "correct horse")).id)
    await services.ledger.top_up(user_id, 30)
    await services.ledger.top_up(other, 100)
    results = [await ml.process_task(user_id, model_id, data) for model_id, data in [
        (1, [1, 2, 3]), (8, [1, -1, "x", 2]), (9, [5, 6]), (2, [1] * 10)]]
    await services.ledger.set_limits(other, 3, None)
    asked = [(user_id, [1, 2]), (other, [1, 2]), (user_id, [7] * 10), (other, [1, 2]),
             (user_id, [1])]
    together = await asyncio.gather(*(ml.process_task(owner, 1, data)
                                      for owner, data in asked))
    assert [r.status for r in results] == ["completed", "completed", "failed", "completed"]
    assert [r.status for r in together][::2] == ["completed", "rejected", "completed"]
    assert sorted(r.status for r in together[1::2]) == ["completed", "rejected"]
    assert sorted(t.task.id for t in together) == list(range(5, 10))
    owners = [user_id] * len(results) + [owner for owner, _ in asked]
    for owner, result in zip(owners, results + together, strict=True):
        assert result.task == await services.ledger.find_task(owner, result.task.id)
    for who in (user_id, other):  # each one's last write (ids are taken in write order)
        last = max((r for o, r in zip(owners, results + together, strict=True) if o == who),
                   key=lambda r: r.task.id)
        assert last.balance == await services.ledger.get_balance(who)
    assert any(r.refusal is not None for r in together[1::2])  # the daily limit of 3


async def test_a_log_of_both_shapes_serves_rebuilds_and_audits_alike(
        services: Services, ledger_at: str | Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The version before TaskCompletedAtOnce wrote a task completed in one write as its four
    events (submitted, held, settled, completed). A log holding both shapes must give the
    same rows for either, rebuild to them event by event, and audit clean."""
    ml = MLService(services.ledger, one_write_models())
    user_id = int((await services.users.register("alice", "correct horse")).id)
    await services.ledger.top_up(user_id, 40)
    composite = decide.complete_at_once
    monkeypatch.setattr(decide, "complete_at_once",  # as the previous version wrote it
                        lambda *args, **kwargs: list(composite(*args, **kwargs)[0].parts()))
    before = await ml.process_task(user_id, 8, [1, -1, 2])
    monkeypatch.setattr(decide, "complete_at_once", composite)
    after = await ml.process_task(user_id, 8, [1, -1, 2])
    assert await type_names(services) == [
        "AccountOpened", "CreditsDeposited", "TaskSubmitted", "CreditsHeld", "HoldSettled",
        "TaskCompleted", "TaskCompletedAtOnce"]
    assert (before.status, before.cost_credits, before.task.output_data) == (
        after.status, after.cost_credits, after.task.output_data) == ("completed", 4,
                                                                      [2, None, 4])
    assert before.predictions == after.predictions
    assert before.invalid == after.invalid and before.invalid  # -1: unpredictable, uncharged
    assert after.balance == await services.ledger.get_balance(user_id)
    assert (after.balance.balance_credits, after.balance.held_credits) == (40 - 8, 0)

    written = await tables(services)
    tasks = [{k: v for k, v in row.items() if k not in ("id", "created_at", "updated_at")}
             for row in written["tasks"]]
    assert tasks[0] == tasks[1]  # the same row from either shape
    holds = [{k: v for k, v in row.items() if k not in ("task_id", "opened_at")}
             for row in written["holds"]]
    assert holds[0] == holds[1]
    assert await services.store.rebuild_projections() == 7
    assert await tables(services) == written
    report = await audit(ledger_at, show_progress=False)
    assert report.ok, report.render()


async def type_names(services: Services) -> list[str]:
    rows = await services.store.read_db().fetchall(
        "SELECT type_name FROM events ORDER BY position")
    return [row["type_name"] for row in rows]
