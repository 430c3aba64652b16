"""The API's predictions: models, JSON and CSV requests, charges, limits, tasks, retries."""

from __future__ import annotations

import io
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from cabinet_http import ApiUser, api_signup, expect_problem

Client = TestClient[Any, Any]


async def predict(client: Client, user: ApiUser, model_id: object, data: object,
                  key: str | None = None) -> Any:
    headers = user.auth if key is None else {**user.auth, "Idempotency-Key": key}
    return await client.post("/api/v1/predict", json={"model_id": model_id, "data": data},
                             headers=headers)


async def upload(client: Client, user: ApiUser, csv_text: str | bytes,
                 model_id: str = "1") -> Any:
    form = FormData()
    form.add_field("model_id", model_id)
    content = csv_text.encode() if isinstance(csv_text, str) else csv_text
    form.add_field("file", io.BytesIO(content), filename="values.csv",
                   content_type="text/csv")
    return await client.post("/api/v1/predict", data=form, headers=user.auth)


async def account(client: Client, user: ApiUser) -> dict[str, Any]:
    """What the user can see of their money: balance and every movement."""
    balance = await (await client.get("/api/v1/balance", headers=user.auth)).json()
    moves = await (await client.get("/api/v1/transactions?limit=100",
                                    headers=user.auth)).json()
    return {"balance": balance, "movements": moves["data"]}


async def task_list(client: Client, user: ApiUser, query: str = "") -> dict[str, Any]:
    response = await client.get(f"/api/v1/tasks{query}", headers=user.auth)
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


async def test_models_are_listed_with_prices_and_limits_without_logging_in(
        client: Client) -> None:
    response = await client.get("/api/v1/models")

    assert response.status == 200
    models = (await response.json())["data"]
    assert [(m["id"], m["name"], m["price_per_item"], m["max_items"]) for m in models] == [
        (1, "Doubler", 1, 1000), (2, "Linear trend", 2, 500),
        (3, "Diabetes progression", 3, 5000), (4, "Iris species", 1, 5000)]
    assert all(m["description"] for m in models)


async def test_valid_items_are_predicted_and_charged_and_invalid_ones_explained(
        client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=100)

    response = await predict(client, alice, 1, [1, "x", None, 2.5, True])

    assert response.status == 200
    body = await response.json()
    assert body["predictions"] == [{"index": 0, "input": 1.0, "output": 2.0},
                                   {"index": 3, "input": 2.5, "output": 5.0}]
    assert [(i["index"], i["value"]) for i in body["invalid"]] == [
        (1, "x"), (2, None), (4, True)]
    assert all(i["error"] for i in body["invalid"])
    assert body["cost"] == 2
    assert body["balance"] == {"balance": 98, "held": 0, "available": 98}
    assert body["task"]["status"] == "completed"
    charge = (await account(client, alice))["movements"][0]
    assert charge == {**charge, "kind": "charge", "amount": -2, "balance_after": 98,
                      "task_id": body["task"]["id"]}


async def test_the_price_is_per_valid_item_of_the_chosen_model(client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=100)

    body = await (await predict(client, alice, 2, [1, 2, 3])).json()

    assert [p["output"] for p in body["predictions"]] == [4.0, 7.0, 10.0]
    assert body["cost"] == 6
    assert body["balance"]["balance"] == 94


async def test_a_csv_upload_with_a_header_row_is_predicted(client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=100)

    response = await upload(client, alice, "value\n1\n2.5\nabc\n-4\n")

    assert response.status == 200, await response.text()
    body = await response.json()
    assert [(p["input"], p["output"]) for p in body["predictions"]] == [
        (1.0, 2.0), (2.5, 5.0), (-4.0, -8.0)]
    assert [(i["value"], i["error"]) for i in body["invalid"]] == [("abc", "not a number")]
    assert body["cost"] == 3


async def test_a_csv_upload_without_a_header_takes_every_cell(client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=100)

    body = await (await upload(client, alice, "1, 2\n3,4\n", model_id="2")).json()

    assert [p["input"] for p in body["predictions"]] == [1.0, 2.0, 3.0, 4.0]
    assert body["invalid"] == []
    assert body["cost"] == 8
    # Without the space, "1,2" could be the one number 1.2 of a Russian spreadsheet's column:
    # refused, and nothing charged (ambiguous_decimal_comma, tests/e2e/test_api_russian_input).
    await expect_problem(await upload(client, alice, "1,2\n3,4\n", model_id="2"), 422,
                         "ambiguous_decimal_comma")
    assert (await account(client, alice))["balance"]["balance"] == 92


@pytest.mark.parametrize("model_id", ["", "one", "1.5", "-1"])
async def test_an_upload_needs_a_whole_model_id(client: Client, model_id: str) -> None:
    alice = await api_signup(client, "alice", top_up=100)
    body = await expect_problem(await upload(client, alice, "1\n", model_id=model_id),
                                422, "validation_error")
    assert set(body["errors"]) == {"model_id"}


async def test_a_file_that_is_not_text_is_refused(client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=100)
    response = await upload(client, alice, b"\xff\xfe\x00binary")
    await expect_problem(response, 422, "validation_error")
    assert (await account(client, alice))["balance"]["balance"] == 100


async def test_too_few_credits_is_402_and_nothing_is_charged(client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=2)
    before = await account(client, alice)

    response = await predict(client, alice, 1, [1, 2, 3])

    body = await expect_problem(response, 402, "insufficient_balance")
    assert body["cost"] == 3
    assert body["balance"] == {"balance": 2, "held": 0, "available": 2}
    assert await account(client, alice) == before


async def test_no_valid_item_is_422_with_the_reasons_and_nothing_is_charged(
        client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=10)
    before = await account(client, alice)

    response = await predict(client, alice, 1, ["a", None, [1], {"x": 1}])

    body = await expect_problem(response, 422, "no_valid_data")
    assert [i["index"] for i in body["invalid"]] == [0, 1, 2, 3]
    assert all(i["error"] for i in body["invalid"])
    assert await account(client, alice) == before
    assert (await task_list(client, alice))["data"] == []


async def test_an_empty_request_is_refused(client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=10)
    await expect_problem(await predict(client, alice, 1, []), 422, "empty_input")


async def test_an_unknown_model_is_404(client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=10)
    await expect_problem(await predict(client, alice, 99, [1]), 404, "model_not_found")


@pytest.mark.parametrize(("model_id", "data"), [
    ("1", [1]), (True, [1]), (1, "1,2"), (1, None), (None, [1])])
async def test_a_malformed_prediction_request_is_refused(
        client: Client, model_id: object, data: object) -> None:
    alice = await api_signup(client, "alice", top_up=10)
    await expect_problem(await predict(client, alice, model_id, data), 422,
                         "validation_error")
    assert (await account(client, alice))["balance"]["balance"] == 10


async def test_more_items_than_the_model_takes_is_413_and_nothing_is_charged(
        client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=10_000)

    response = await predict(client, alice, 2, [1] * 501)

    body = await expect_problem(response, 413, "too_many_items")
    assert body["max_items"] == 500
    assert (await account(client, alice))["balance"]["balance"] == 10_000
    assert (await predict(client, alice, 2, [1] * 500)).status == 200


async def test_a_body_over_2_mib_is_413(client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=10)
    body = b'{"model_id": 1, "data": [' + b"1," * (1024 * 1024) + b"1]}"

    response = await client.post("/api/v1/predict", data=io.BytesIO(body), headers={
        **alice.auth, "Content-Type": "application/json"})

    await expect_problem(response, 413, "payload_too_large")
    assert (await account(client, alice))["balance"]["balance"] == 10


async def test_an_uploaded_file_over_the_limit_is_413(client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=10)

    response = await upload(client, alice, "1\n" * 600_000)

    await expect_problem(response, 413, "payload_too_large")
    assert (await account(client, alice))["balance"]["balance"] == 10


async def test_a_retried_prediction_returns_the_first_answer_and_charges_once(
        client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=10)

    first = await predict(client, alice, 1, [1, "x", 3], key="predict-1")
    retry = await predict(client, alice, 1, [1, "x", 3], key="predict-1")

    assert (first.status, retry.status) == (200, 200)
    assert await retry.json() == await first.json()
    money = await account(client, alice)
    assert money["balance"]["balance"] == 8
    assert [m["kind"] for m in money["movements"]] == ["charge", "top_up"]
    assert len((await task_list(client, alice))["data"]) == 1


async def test_a_retried_refusal_for_lack_of_credits_is_the_same_refusal(
        client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=1)

    first = await predict(client, alice, 1, [1, 2], key="too-dear")
    retry = await predict(client, alice, 1, [1, 2], key="too-dear")

    assert await expect_problem(retry, 402, "insufficient_balance") == await first.json()


async def test_a_prediction_key_reused_for_another_request_is_refused(
        client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=10)
    await predict(client, alice, 1, [1, 2], key="predict-1")

    reused = await predict(client, alice, 1, [1, 2, 3], key="predict-1")

    await expect_problem(reused, 422, "idempotency_key_reused")
    assert (await account(client, alice))["balance"]["balance"] == 8


async def test_two_users_may_use_the_same_prediction_key(client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=10)
    bob = await api_signup(client, "bob", top_up=10)

    by_alice = await predict(client, alice, 1, [1], key="same")
    by_bob = await predict(client, bob, 2, [1, 2], key="same")

    assert (by_alice.status, by_bob.status) == (200, 200)
    assert (await account(client, alice))["balance"]["balance"] == 9
    assert (await account(client, bob))["balance"]["balance"] == 6


async def test_tasks_are_listed_newest_first_and_page_by_cursor(client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=100)
    ids = [(await (await predict(client, alice, 1, [n])).json())["task"]["id"]
           for n in range(1, 4)]

    first = await task_list(client, alice, "?limit=2")
    rest = await task_list(client, alice, f"?limit=2&starting_after={first['data'][-1]['id']}")

    assert [t["id"] for t in first["data"] + rest["data"]] == ids[::-1]
    assert (first["has_more"], rest["has_more"]) == (True, False)
    assert first["data"][0] == {**first["data"][0], "model_id": 1, "status": "completed",
                                "input_data": [3.0], "output_data": [6.0], "cost": 1}
    await expect_problem(await client.get("/api/v1/tasks?limit=0", headers=alice.auth),
                         422, "validation_error")


async def test_a_task_is_shown_to_its_owner_only(client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=10)
    bob = await api_signup(client, "bob", top_up=10)
    task = (await (await predict(client, alice, 1, [1, "bad"])).json())["task"]

    own = await client.get(f"/api/v1/tasks/{task['id']}", headers=alice.auth)
    other = await client.get(f"/api/v1/tasks/{task['id']}", headers=bob.auth)
    missing = await client.get("/api/v1/tasks/999999", headers=alice.auth)
    nonsense = await client.get("/api/v1/tasks/abc", headers=alice.auth)

    assert own.status == 200
    assert await own.json() == task
    assert (await own.json())["invalid"][0]["value"] == "bad"
    for response in (other, missing, nonsense):
        await expect_problem(response, 404, "task_not_found")
    assert (await task_list(client, bob))["data"] == []
