"""Isolation between users: another user's task is "not found", exactly like a task that does
not exist, over the API and on the pages; lists and idempotency keys are per user."""

from __future__ import annotations

from pathlib import Path

from security_http import (
    Account,
    Client,
    balance,
    expect_problem,
    new_account,
    page_login,
    scalar,
)

from web.keys import PUBLIC_IDS
from web.public_ids import TASK

SECRET = 123456.0  # an input only alice sent


async def alices_task(client: Client, alice: Account, key: str | None = None) -> str:
    headers = {**alice.auth, **({"Idempotency-Key": key} if key else {})}
    response = await client.post("/api/v1/predict", headers=headers,
                                 json={"model_id": 1, "data": [SECRET]})
    assert response.status == 200
    task_id: str = (await response.json())["task"]["id"]
    return task_id


def missing_task(client: Client, task_id: str) -> str:
    """The public id of a task that does not exist (1000 after this one)."""
    ids = client.server.app[PUBLIC_IDS]
    number = ids.parse(TASK, task_id)
    assert number is not None
    return ids.task(number + 1000)


async def test_another_users_task_is_not_found_over_the_api_as_if_it_did_not_exist(
        client: Client) -> None:
    alice = await new_account(client, "alice", credits=10)
    bob = await new_account(client, "bob", credits=10)
    task_id = await alices_task(client, alice)

    theirs = await client.get(f"/api/v1/tasks/{task_id}", headers=bob.auth)
    missing = await client.get(f"/api/v1/tasks/{missing_task(client, task_id)}",
                               headers=bob.auth)
    own = await client.get(f"/api/v1/tasks/{task_id}", headers=alice.auth)

    theirs_body = await expect_problem(theirs, 404, "task_not_found")
    missing_body = await expect_problem(missing, 404, "task_not_found")
    assert {**theirs_body, "detail": ""} == {**missing_body, "detail": ""}
    assert str(SECRET) not in theirs_body["detail"]
    assert own.status == 200


async def test_another_users_task_is_not_found_on_the_page(client: Client) -> None:
    alice = await new_account(client, "alice", credits=10)
    await new_account(client, "bob")
    task_id = await alices_task(client, alice)
    await page_login(client, "bob")

    other = missing_task(client, task_id)
    theirs = await client.get(f"/cabinet/tasks/{task_id}")
    missing = await client.get(f"/cabinet/tasks/{other}")

    assert (theirs.status, missing.status) == (404, 404)
    page = await theirs.text()
    assert "123456" not in page
    # The pages may differ only by the address asked for (the language switcher links back).
    assert page.replace(str(task_id), "ID") == (await missing.text()).replace(str(other), "ID")


async def test_lists_and_balances_show_only_the_callers_own(client: Client) -> None:
    alice = await new_account(client, "alice", credits=10)
    bob = await new_account(client, "bob", credits=7)
    await alices_task(client, alice)

    tasks = await (await client.get("/api/v1/tasks", headers=bob.auth)).json()
    moves = await (await client.get("/api/v1/transactions", headers=bob.auth)).json()
    await page_login(client, "bob")
    cabinet = await (await client.get("/cabinet")).text()

    assert tasks == {"data": [], "has_more": False}
    assert [(m["kind"], m["amount"]) for m in moves["data"]] == [("top_up", 7)]
    assert await balance(client, bob) == {"balance": 7, "held": 0, "available": 7}
    assert "123456" not in cabinet


async def test_the_same_idempotency_key_from_another_user_is_their_own_request(
        client: Client, db_path: Path) -> None:
    alice = await new_account(client, "alice", credits=10)
    bob = await new_account(client, "bob", credits=10)
    alice_task = await alices_task(client, alice, key="shared-key")

    response = await client.post("/api/v1/predict", json={"model_id": 1, "data": [SECRET]},
                                 headers={**bob.auth, "Idempotency-Key": "shared-key"})

    result = await response.json()
    assert response.status == 200
    assert result["task"]["id"] != alice_task  # not alice's stored reply
    assert (await balance(client, alice))["balance"] == 9
    assert (await balance(client, bob))["balance"] == 9
    assert scalar(db_path, "SELECT COUNT(*) FROM tasks") == 2
