"""Holds nobody will settle are released: a settle that could not be written, a model that
hangs. Credits are never kept on hold for ever, and nothing is charged for either."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

import ml.service
from ledger import BalanceView, TaskDraft
from ledger.control import Operation
from ml import MLModel, MLModelManager, MLService, ModelSpec

if TYPE_CHECKING:
    from conftest import Services


async def hold_one(services: Services) -> tuple[int, int]:
    user = int((await services.users.register("ada", "correct horse")).id)
    await services.ledger.top_up(user, 10)
    ticket = await services.ledger.submit_task(
        user, TaskDraft(model_id=1, input_data=[1.0], input_indexes=[0], invalid=[],
                        cost_credits=4),
        Operation(user_id=user, operation_id="k", kind="predict", fingerprint="f"))
    assert ticket.run
    return user, ticket.task_id


async def test_a_running_or_fresh_hold_of_this_process_is_left_alone(services: Services) -> None:
    user, _task_id = await hold_one(services)
    ledger = services.ledger
    assert await ledger.release_orphaned_holds(lambda owner: True, lambda t: True,
                                               stale_after=timedelta(0)) == 0
    assert await ledger.release_orphaned_holds(lambda owner: True, lambda t: False,
                                               stale_after=timedelta(minutes=5)) == 0
    assert await ledger.get_balance(user) == BalanceView(balance_credits=10, held_credits=4)


async def test_an_abandoned_hold_of_this_process_is_released_uncharged(services: Services) -> None:
    user, task_id = await hold_one(services)
    released = await services.ledger.release_orphaned_holds(
        lambda owner: True, lambda t: False, stale_after=timedelta(0))
    assert released == 1
    assert await services.ledger.get_balance(user) == BalanceView(balance_credits=10,
                                                                      held_credits=0)
    task = await services.store.read_db().fetchone("SELECT status, error FROM tasks WHERE id = ?",
                                                   (task_id,))
    assert task is not None and task["status"] == "failed" and "abandoned" in task["error"]
    # The client's retry now gets the stored failure, not "still running" for ever.
    op = await services.store.read_db().fetchone(
        "SELECT status FROM operations WHERE user_id = ? AND operation_id = 'k'", (user,))
    assert op is not None and op["status"] == "done"


class Hanging(MLModel):
    def __init__(self) -> None:
        self.release = threading.Event()

    def predict(self, data: list[float]) -> list[float]:
        self.release.wait(timeout=10)
        return data


async def test_a_model_that_hangs_fails_its_task_and_charges_nothing(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ml.service, "PREDICT_TIMEOUT_S", 0.2)
    hanging = Hanging()
    manager = MLModelManager([ModelSpec(id=1, name="Hang", description="never answers",
                                        price_per_item_credits=1, max_items=10,
                                        factory=lambda: hanging)])
    service = MLService(services.ledger, manager)
    user = int((await services.users.register("bob", "correct horse")).id)
    await services.ledger.top_up(user, 5)
    try:
        result = await service.process_task(user, 1, [1, 2])
    finally:
        hanging.release.set()
    assert result.status == "failed"
    assert "longer than" in result.task.error
    assert result.cost_credits == 0
    assert result.balance == BalanceView(balance_credits=5, held_credits=0)
    assert service.running == set()
