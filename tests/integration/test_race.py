"""Many requests at once against one balance: none may overdraw it, none may be lost."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from ledger import BalanceView, InsufficientCredits
from ledger.audit import audit
from ml import MLTask

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import Services

# The same use cases on both stores (see conftest's `ledger_at`), and on both ways a fast
# model's prediction is charged (conftest's `predict_path`).
PATHS = ["one_transaction", "two_phase"]
pytestmark = [pytest.mark.parametrize("ledger_at", ["sqlite", "postgres"], indirect=True),
              pytest.mark.parametrize("predict_path", PATHS, indirect=True)]

PRICE = 3  # three items on the Doubler, at 1 credit each


async def new_user(services: Services, credits: int) -> int:
    user_id = int((await services.users.register("alice", "correct horse")).id)
    await services.ledger.top_up(user_id, credits)
    return user_id


async def test_concurrent_predictions_charge_exactly_what_the_balance_covers(
        services: Services, ledger_at: str | Path) -> None:
    requests, covered = 40, 13
    user_id = await new_user(services, covered * PRICE + PRICE - 1)
    results = await asyncio.gather(*(services.ml.process_task(user_id, 1, [i, i + 1, i + 2])
                                     for i in range(requests)))
    statuses = [r.status for r in results]
    assert statuses.count("completed") == covered
    assert statuses.count("rejected") == requests - covered
    assert all(r.cost_credits == (PRICE if r.status == "completed" else 0) for r in results)
    assert all(r.balance.available_credits >= 0 for r in results)
    assert await services.ledger.get_balance(user_id) == BalanceView(
        balance_credits=PRICE - 1, held_credits=0)
    tasks = await MLTask.get_user_tasks(services.ledger, user_id)
    assert len(tasks) == requests
    assert sum(t.cost for t in tasks) == covered * PRICE
    report = await audit(ledger_at, show_progress=False)
    assert report.ok, report.render()


async def test_concurrent_withdrawals_and_predictions_never_overdraw(
        services: Services, ledger_at: str | Path) -> None:
    user_id = await new_user(services, 50)

    async def withdraw() -> tuple[int, bool]:
        try:
            await services.ledger.withdraw(user_id, 4, "Charge")
        except InsufficientCredits:
            return 4, False
        return 4, True

    async def predict(i: int) -> tuple[int, bool]:
        result = await services.ml.process_task(user_id, 1, [i, i, i])
        return PRICE, result.status == "completed"

    outcomes = await asyncio.gather(*(withdraw() if i % 2 else predict(i) for i in range(30)))
    spent = sum(cost for cost, accepted in outcomes if accepted)
    refused = [cost for cost, accepted in outcomes if not accepted]
    assert refused, "the balance was meant to run out"
    left = 50 - spent
    assert 0 <= left < min(refused)  # every refusal was for want of credits, none too early
    assert await services.ledger.get_balance(user_id) == BalanceView(
        balance_credits=left, held_credits=0)
    report = await audit(ledger_at, show_progress=False)
    assert report.ok, report.render()


async def test_a_top_up_retried_many_times_at_once_is_deposited_once(
        services: Services) -> None:
    user_id = int((await services.users.register("alice", "correct horse")).id)
    outcomes = await asyncio.gather(*(services.ledger.top_up(user_id, 70, "op-1")
                                      for _ in range(20)))
    assert all(outcome == outcomes[0] for outcome in outcomes)
    assert (await services.ledger.get_balance(user_id)).balance_credits == 70
    row = await services.store.read_db().fetchone(
        "SELECT COUNT(*) AS n FROM events WHERE type_name = 'CreditsDeposited'")
    assert row == {"n": 1}
