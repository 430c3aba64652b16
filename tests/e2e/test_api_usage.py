"""GET /api/v1/usage over real HTTP: every day of the range with zeros, per model, the sums of
the credit history's charges, bad ranges refused as problems, other users' usage unseen."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from cabinet_http import ApiUser, api_signup, expect_problem

Client = TestClient[Any, Any]


async def predict(client: Client, user: ApiUser, model_id: int, data: list[Any]) -> None:
    response = await client.post("/api/v1/predict", json={"model_id": model_id, "data": data},
                                 headers=user.auth)
    assert response.status == 200, await response.text()


async def usage(client: Client, user: ApiUser, **query: str) -> dict[str, Any]:
    response = await client.get("/api/v1/usage", params=query, headers=user.auth)
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def test_usage_per_day_and_model_sums_the_charges_of_the_credit_history(
        client: Client, database_url: str | None) -> None:
    alice = await api_signup(client, "alice", top_up=100)
    await predict(client, alice, 1, [1, 2, 3])  # 3 items at 1 credit
    await predict(client, alice, 2, [1, "x"])  # 1 item at 2 credits; "x" is not charged

    month = await usage(client, alice)  # this month up to today, per day
    today = date.fromisoformat(month["to"])
    assert month["from"] == str(today.replace(day=1)) and month["group_by"] == "day"
    assert [row["date"] for row in month["data"]] == [
        str(today.replace(day=1) + timedelta(days=n)) for n in range(today.day)]
    assert month["data"][-1] == {"date": str(today), "predictions": 2, "items": 4,
                                 "credits": 5}
    assert all(row["credits"] == 0 for row in month["data"][:-1])  # zeros included
    assert month["total"] == {"predictions": 2, "items": 4, "credits": 5}

    moves = (await (await client.get("/api/v1/transactions", headers=alice.auth)).json())["data"]
    assert -sum(m["amount"] for m in moves if m["amount"] < 0) == month["total"]["credits"]

    by_model = await usage(client, alice, group_by="model", **{"from": str(today),
                                                               "to": str(today)})
    assert by_model["data"] == [
        {"model_id": 1, "model": "Doubler", "predictions": 1, "items": 3, "credits": 3},
        {"model_id": 2, "model": "Linear trend", "predictions": 1, "items": 1, "credits": 2}]
    assert by_model["total"] == month["total"] and by_model["time_zone"] == "UTC"

    bob = await api_signup(client, "bob")
    assert (await usage(client, bob))["total"] == {"predictions": 0, "items": 0, "credits": 0}


async def test_a_year_is_one_row_a_day(client: Client, database_url: str | None) -> None:
    alice = await api_signup(client, "alice")
    year = await usage(client, alice, **{"from": "2024-01-01", "to": "2024-12-31"})
    assert len(year["data"]) == 366 and year["data"][59]["date"] == "2024-02-29"


@pytest.mark.parametrize(("query", "field"), [
    ({"from": "2026-12-05", "to": "2026-12-01"}, "from"),
    ({"from": "2025-01-01", "to": "2026-01-02"}, "to"),  # 367 days: one too many
    ({"from": "2026-13-01"}, "from"),
    ({"to": "1.12.2026"}, "to"),
    ({"to": ""}, "to"),
    ({"group_by": "week"}, "group_by"),
])
async def test_a_bad_range_is_a_422_problem_naming_the_field(
        client: Client, database_url: str | None, query: dict[str, str], field: str) -> None:
    alice = await api_signup(client, "alice")
    response = await client.get("/api/v1/usage", params=query, headers=alice.auth)
    body = await expect_problem(response, 422, "validation_error")
    assert list(body["errors"]) == [field]


async def test_usage_needs_a_token(client: Client, database_url: str | None) -> None:
    await expect_problem(await client.get("/api/v1/usage"), 401, "unauthorized")


async def test_the_reasons_follow_accept_language_and_the_code_does_not(
        client: Client, database_url: str | None) -> None:
    alice = await api_signup(client, "alice")
    response = await client.get("/api/v1/usage", params={"from": "2026-12-05", "to": "2026-12-01"},
                                headers={**alice.auth, "Accept-Language": "ru"})
    body = await expect_problem(response, 422, "validation_error")
    assert body["errors"] == {"from": ["Первый день не может быть позже последнего."]}
