"""The API's time zone and spend limits: set, read, enforced as 402 spend_limit_reached,
and hostile values refused with nothing written."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from cabinet_http import ApiUser, api_signup, expect_problem

Client = TestClient[Any, Any]


async def put_limits(client: Client, user: ApiUser, body: object) -> Any:
    return await client.put("/api/v1/limits", json=body, headers=user.auth)


async def limits_of(client: Client, user: ApiUser) -> dict[str, Any]:
    response = await client.get("/api/v1/limits", headers=user.auth)
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def predict(client: Client, user: ApiUser) -> Any:
    return await client.post("/api/v1/predict", json={"model_id": 1, "data": [1, 2, 3]},
                             headers=user.auth)


async def test_a_new_account_is_in_utc_without_limits(client: Client) -> None:
    alice = await api_signup(client, "alice")
    me = await (await client.get("/api/v1/me", headers=alice.auth)).json()
    assert me["time_zone"] == "UTC"
    body = await limits_of(client, alice)
    assert body["time_zone"] == "UTC"
    assert (body["daily_credits"], body["monthly_credits"]) == (None, None)
    assert body["day"]["spent"] == 0 and body["day"]["left"] is None


async def test_the_time_zone_is_set_and_shown(client: Client) -> None:
    alice = await api_signup(client, "alice")
    response = await client.put("/api/v1/me", json={"time_zone": "Europe/Moscow"},
                                headers=alice.auth)
    assert response.status == 200, await response.text()
    assert (await response.json())["time_zone"] == "Europe/Moscow"
    me = await (await client.get("/api/v1/me", headers=alice.auth)).json()
    assert me["time_zone"] == "Europe/Moscow"
    # Moscow's days end at 21:00 UTC.
    assert (await limits_of(client, alice))["day"]["resets_at"].endswith("T21:00:00+00:00")


async def test_a_prediction_past_the_daily_limit_is_402_spend_limit_reached(
        client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=100)
    response = await put_limits(client, alice, {"daily_credits": 5, "monthly_credits": None})
    assert response.status == 200, await response.text()
    assert (await predict(client, alice)).status == 200

    problem = await expect_problem(await predict(client, alice), 402, "spend_limit_reached")

    assert (problem["limit"], problem["limit_credits"], problem["left"], problem["cost"]) == (
        "daily", 5, 2, 3)
    assert problem["resets_at"].endswith("T00:00:00+00:00")
    assert problem["task"]["status"] == "rejected"
    assert problem["balance"] == {"balance": 97, "held": 0, "available": 97}
    body = await limits_of(client, alice)
    assert (body["day"]["spent"], body["day"]["left"], body["month"]["spent"]) == (3, 2, 3)
    balance = await (await client.get("/api/v1/balance", headers=alice.auth)).json()
    assert balance["balance"] == 97


async def test_a_retry_with_the_same_key_gets_the_same_refusal(client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=100)
    await put_limits(client, alice, {"daily_credits": 2, "monthly_credits": 100})
    headers = {**alice.auth, "Idempotency-Key": "k-1"}
    first = await client.post("/api/v1/predict", json={"model_id": 1, "data": [1, 2, 3]},
                              headers=headers)
    again = await client.post("/api/v1/predict", json={"model_id": 1, "data": [1, 2, 3]},
                              headers=headers)
    assert (await expect_problem(first, 402, "spend_limit_reached")) == (
        await expect_problem(again, 402, "spend_limit_reached"))


async def test_limits_belong_to_their_account(client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=100)
    bob = await api_signup(client, "bob", top_up=100)
    await put_limits(client, alice, {"daily_credits": 0, "monthly_credits": None})
    assert (await predict(client, bob)).status == 200
    assert (await limits_of(client, bob))["daily_credits"] is None


@pytest.mark.parametrize("body", [
    {"daily_credits": -1, "monthly_credits": None}, {"daily_credits": True,
                                                     "monthly_credits": None},
    {"daily_credits": 1.5, "monthly_credits": None}, {"daily_credits": "5",
                                                      "monthly_credits": None},
    {"daily_credits": 10**13, "monthly_credits": None}, {"daily_credits": 5},
    {"daily_credits": None, "monthly_credits": None, "weekly_credits": 3}, [5, 5], 7])
async def test_a_hostile_limit_is_422_and_nothing_is_written(client: Client,
                                                             body: object) -> None:
    alice = await api_signup(client, "alice")
    await expect_problem(await put_limits(client, alice, body), 422, "validation_error")
    assert (await limits_of(client, alice))["daily_credits"] is None


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "../../../etc/passwd", "europe/moscow",
                                  "UTC\x00", 3, None, ["UTC"], "A" * 65])
async def test_a_hostile_time_zone_is_422_and_nothing_is_written(client: Client,
                                                                 zone: object) -> None:
    alice = await api_signup(client, "alice")
    response = await client.put("/api/v1/me", json={"time_zone": zone}, headers=alice.auth)
    await expect_problem(response, 422, "validation_error")
    me = await (await client.get("/api/v1/me", headers=alice.auth)).json()
    assert me["time_zone"] == "UTC"


async def test_limits_need_a_token(client: Client) -> None:
    await expect_problem(await client.get("/api/v1/limits"), 401, "unauthorized")
    await expect_problem(await client.put("/api/v1/limits", json={}), 401, "unauthorized")


async def make_key(client: Client, user: ApiUser, **fields: Any) -> dict[str, str]:
    response = await client.post("/api/v1/keys", json={"name": "batch", "scope": "predict",
                                                       **fields}, headers=user.auth)
    assert response.status == 201, await response.text()
    body: dict[str, str] = await response.json()
    return {"Authorization": f"Bearer {body['key']}"}


async def test_a_keys_monthly_limit_refuses_that_key_only(client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=100)
    key = await make_key(client, alice, monthly_limit_credits=4)
    body = {"model_id": 1, "data": [1, 2, 3]}
    assert (await client.post("/api/v1/predict", json=body, headers=key)).status == 200
    problem = await expect_problem(await client.post("/api/v1/predict", json=body,
                                                     headers=key), 402, "spend_limit_reached")
    assert (problem["limit"], problem["limit_credits"], problem["left"]) == ("key_monthly", 4, 1)
    assert (await predict(client, alice)).status == 200  # the login has no such limit
    other = await make_key(client, alice)
    assert (await client.post("/api/v1/predict", json=body, headers=other)).status == 200
    assert (await limits_of(client, alice))["month"]["spent"] == 9


async def test_a_key_reads_limits_but_cannot_change_them_or_the_time_zone(
        client: Client) -> None:
    alice = await api_signup(client, "alice")
    key = await make_key(client, alice)
    assert (await client.get("/api/v1/limits", headers=key)).status == 200
    await expect_problem(await client.put("/api/v1/limits", json={
        "daily_credits": None, "monthly_credits": None}, headers=key), 403, "login_required")
    await expect_problem(await client.put("/api/v1/me", json={"time_zone": "UTC"},
                                          headers=key), 403, "login_required")


async def test_a_limits_change_is_in_the_security_log(client: Client) -> None:
    alice = await api_signup(client, "alice")
    await put_limits(client, alice, {"daily_credits": 1_000, "monthly_credits": None})
    page = await (await client.get("/api/v1/security-events", headers=alice.auth)).json()
    entry = next(e for e in page["data"] if e["kind"] == "limits_changed")
    assert entry["detail"] == "daily 1,000, monthly none"
