"""Concurrent requests over HTTP: no overdraft, and one idempotency key charges exactly once,
even across a restart of the service on the same file."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from security_http import (
    Account,
    Client,
    MakeClient,
    balance,
    expect_documented,
    new_account,
    scalar,
)

# Both ways a fast model's prediction is charged: one write, or hold then settle.
PATHS = ["one_transaction", "two_phase"]
pytestmark = pytest.mark.parametrize("predict_path", PATHS, indirect=True)

PREDICTION = {"model_id": 1, "data": [1.0, 2.0, 3.0]}  # the Doubler: 1 credit an item
PREDICTION_COST = 3


async def post_predict(client: Client, account: Account, *, key: str | None = None
                       ) -> tuple[int, dict[str, Any]]:
    headers = {**account.auth, **({"Idempotency-Key": key} if key else {})}
    response = await client.post("/api/v1/predict", json=PREDICTION, headers=headers)
    await expect_documented(response)
    return response.status, await response.json(content_type=None)


def charges(db_path: Path, user_id: int) -> int:
    return int(scalar(db_path, "SELECT COUNT(*) FROM transactions WHERE user_id = ? "
                               "AND kind = 'charge'", (user_id,)))


async def test_concurrent_predictions_succeed_only_as_far_as_the_balance_goes(
        client: Client, db_path: Path) -> None:
    affordable, attempts = 7, 30
    alice = await new_account(client, "alice", credits=affordable * PREDICTION_COST)

    replies = await asyncio.gather(*(post_predict(client, alice) for _ in range(attempts)))

    statuses = Counter(status for status, _ in replies)
    assert statuses == {200: affordable, 402: attempts - affordable}
    assert all(body["code"] == "insufficient_balance" for status, body in replies
               if status == 402)
    assert await balance(client, alice) == {"balance": 0, "held": 0, "available": 0}
    assert charges(db_path, alice.id) == affordable
    assert scalar(db_path, "SELECT SUM(amount_credits) FROM postings") == 0  # double entry


async def test_one_idempotency_key_charges_once_under_fifty_concurrent_requests_and_a_restart(
        make_client: MakeClient, db_path: Path) -> None:
    client = await make_client()
    alice = await new_account(client, "alice", credits=100)

    replies = await asyncio.gather(*(post_predict(client, alice, key="order-42")
                                     for _ in range(50)))
    stored = await post_predict(client, alice, key="order-42")

    assert stored[0] == 200
    for status, body in replies:
        assert (status, body) == stored or (status, body["code"]) == (409, "request_in_progress")
    assert scalar(db_path, "SELECT COUNT(*) FROM tasks WHERE user_id = ?", (alice.id,)) == 1
    assert charges(db_path, alice.id) == 1
    assert (await balance(client, alice))["balance"] == 100 - PREDICTION_COST

    await client.close()  # the service stops; a new one opens the same file
    restarted = await make_client()
    retried = await post_predict(restarted, alice, key="order-42")

    assert json.dumps(retried, sort_keys=True) == json.dumps(stored, sort_keys=True)
    assert charges(db_path, alice.id) == 1
    assert (await balance(restarted, alice))["balance"] == 100 - PREDICTION_COST


async def test_a_reused_idempotency_key_with_another_body_is_refused_uncharged(
        client: Client, db_path: Path) -> None:
    alice = await new_account(client, "alice", credits=100)
    assert (await post_predict(client, alice, key="k1"))[0] == 200
    events = scalar(db_path, "SELECT COUNT(*) FROM events")

    response = await client.post("/api/v1/predict", headers={**alice.auth, "Idempotency-Key": "k1"},
                                 json={"model_id": 1, "data": [9.0]})

    assert response.status == 422
    assert (await response.json())["code"] == "idempotency_key_reused"
    assert scalar(db_path, "SELECT COUNT(*) FROM events") == events


async def test_concurrent_top_ups_with_one_key_credit_once(client: Client, db_path: Path) -> None:
    alice = await new_account(client, "alice")

    async def top_up() -> int:
        response = await client.post("/api/v1/balance/top-up", json={"amount": 500},
                                     headers={**alice.auth, "Idempotency-Key": "deposit-1"})
        return response.status

    statuses = await asyncio.gather(*(top_up() for _ in range(20)))

    assert set(statuses) == {201}  # a top-up decides inside one transaction: never in progress
    assert (await balance(client, alice))["balance"] == 500
    assert scalar(db_path, "SELECT COUNT(*) FROM transactions WHERE user_id = ?", (alice.id,)) == 1
