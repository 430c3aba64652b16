"""The API's credits: balance, top-ups, the credit history and its paging, idempotency."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from cabinet_http import ApiUser, api_signup, expect_problem

Client = TestClient[Any, Any]


async def top_up(client: Client, user: ApiUser, amount: object,
                 key: str | None = None) -> Any:
    headers = user.auth if key is None else {**user.auth, "Idempotency-Key": key}
    return await client.post("/api/v1/balance/top-up", json={"amount": amount},
                             headers=headers)


async def balance_of(client: Client, user: ApiUser) -> dict[str, int]:
    response = await client.get("/api/v1/balance", headers=user.auth)
    assert response.status == 200
    body: dict[str, int] = await response.json()
    return body


async def history(client: Client, user: ApiUser, query: str = "") -> Any:
    return await client.get(f"/api/v1/transactions{query}", headers=user.auth)


async def test_a_new_account_has_nothing(client: Client) -> None:
    alice = await api_signup(client, "alice")

    assert await balance_of(client, alice) == {"balance": 0, "held": 0, "available": 0}
    page = await history(client, alice)
    assert await page.json() == {"data": [], "has_more": False}


async def test_top_up_adds_credits_and_records_the_movement(client: Client) -> None:
    alice = await api_signup(client, "alice")

    response = await top_up(client, alice, 250)

    assert response.status == 201
    body = await response.json()
    assert body["balance"] == {"balance": 250, "held": 0, "available": 250}
    assert body["transaction"] == {**body["transaction"], "kind": "top_up", "amount": 250,
                                   "balance_after": 250, "task_id": None}
    assert await balance_of(client, alice) == body["balance"]
    listed = await (await history(client, alice)).json()
    assert listed["data"] == [body["transaction"]]


@pytest.mark.parametrize("amount", [1, 1_000_000])
async def test_the_smallest_and_largest_top_ups_are_accepted(client: Client,
                                                             amount: int) -> None:
    alice = await api_signup(client, "alice")
    assert (await top_up(client, alice, amount)).status == 201
    assert (await balance_of(client, alice))["balance"] == amount


@pytest.mark.parametrize("amount", [True, 10.0, 10.5, "10", None, 0, -5, 1_000_001, [10]])
async def test_an_amount_that_is_not_a_whole_number_in_range_is_refused(
        client: Client, amount: object) -> None:
    alice = await api_signup(client, "alice")

    body = await expect_problem(await top_up(client, alice, amount), 422, "validation_error")

    assert body["errors"]["amount"]
    assert (await balance_of(client, alice))["balance"] == 0


async def test_a_missing_amount_is_refused(client: Client) -> None:
    alice = await api_signup(client, "alice")
    response = await client.post("/api/v1/balance/top-up", json={}, headers=alice.auth)
    body = await expect_problem(response, 422, "validation_error")
    assert set(body["errors"]) == {"amount"}


async def test_the_history_is_newest_first_with_a_running_balance(client: Client) -> None:
    alice = await api_signup(client, "alice")
    for amount in (10, 20, 30):
        await top_up(client, alice, amount)

    data = (await (await history(client, alice)).json())["data"]

    assert [(t["amount"], t["balance_after"]) for t in data] == [(30, 60), (20, 30), (10, 10)]
    assert set(data[0]) == {"id", "kind", "amount", "balance_after", "description", "task_id",
                            "created_at"}


async def test_cursor_paging_walks_every_movement_exactly_once(client: Client) -> None:
    alice = await api_signup(client, "alice")
    for amount in range(1, 8):
        await top_up(client, alice, amount)

    seen: list[dict[str, Any]] = []
    pages, query = 0, "?limit=3"
    while True:
        page = await (await history(client, alice, query)).json()
        pages += 1
        assert len(page["data"]) <= 3
        seen += page["data"]
        if not page["has_more"]:
            break
        query = f"?limit=3&starting_after={page['data'][-1]['id']}"

    assert pages == 3
    assert [t["amount"] for t in seen] == [7, 6, 5, 4, 3, 2, 1]
    assert len({t["id"] for t in seen}) == 7


async def test_the_default_page_is_20_and_the_largest_100(client: Client) -> None:
    alice = await api_signup(client, "alice")
    for _ in range(21):
        await top_up(client, alice, 1)

    default = await (await history(client, alice)).json()
    largest = await (await history(client, alice, "?limit=100")).json()

    assert (len(default["data"]), default["has_more"]) == (20, True)
    assert (len(largest["data"]), largest["has_more"]) == (21, False)


@pytest.mark.parametrize("query", ["?limit=0", "?limit=101", "?limit=ten", "?limit=-1",
                                   "?starting_after=0", "?starting_after=abc"])
async def test_a_bad_page_request_is_refused(client: Client, query: str) -> None:
    alice = await api_signup(client, "alice")
    body = await expect_problem(await history(client, alice, query), 422, "validation_error")
    assert body["errors"]


async def test_each_user_sees_only_their_own_movements(client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=10)
    bob = await api_signup(client, "bob", top_up=99)

    alices = (await (await history(client, alice)).json())["data"]
    bobs = (await (await history(client, bob)).json())["data"]

    assert [t["amount"] for t in alices] == [10]
    assert [t["amount"] for t in bobs] == [99]


async def test_a_retried_top_up_returns_the_first_answer_and_credits_once(
        client: Client) -> None:
    alice = await api_signup(client, "alice")

    first = await top_up(client, alice, 40, key="top-up-1")
    retry = await top_up(client, alice, 40, key="top-up-1")

    assert (first.status, retry.status) == (201, 201)
    assert await retry.json() == await first.json()
    assert (await balance_of(client, alice))["balance"] == 40
    assert len((await (await history(client, alice)).json())["data"]) == 1


async def test_a_key_reused_for_another_amount_is_refused(client: Client) -> None:
    alice = await api_signup(client, "alice")
    await top_up(client, alice, 40, key="top-up-1")

    reused = await top_up(client, alice, 41, key="top-up-1")

    await expect_problem(reused, 422, "idempotency_key_reused")
    assert (await balance_of(client, alice))["balance"] == 40


async def test_two_users_may_use_the_same_key(client: Client) -> None:
    alice = await api_signup(client, "alice")
    bob = await api_signup(client, "bob")

    assert (await top_up(client, alice, 40, key="same")).status == 201
    assert (await top_up(client, bob, 7, key="same")).status == 201

    assert (await balance_of(client, alice))["balance"] == 40
    assert (await balance_of(client, bob))["balance"] == 7


@pytest.mark.parametrize("key", ["", "has space", "é", "k" * 256])
async def test_a_malformed_idempotency_key_is_refused(client: Client, key: str) -> None:
    alice = await api_signup(client, "alice")
    response = await client.post("/api/v1/balance/top-up", json={"amount": 5},
                                 headers={**alice.auth, "Idempotency-Key": key})
    await expect_problem(response, 422, "validation_error")
    assert (await balance_of(client, alice))["balance"] == 0
