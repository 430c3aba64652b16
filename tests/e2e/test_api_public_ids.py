"""Public ids tell nothing: tasks and transactions are shown as tsk_/txn_ opaque ids, so a new
user's first task is not "#46"; the old plain numbers still resolve for existing links."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from cabinet_http import ApiUser, api_signup, expect_problem

from web.keys import PUBLIC_IDS
from web.public_ids import TASK, TRANSACTION, PublicIdCodec

Client = TestClient[Any, Any]
TASK_ID, TRANSACTION_ID = re.compile(r"tsk_[0-9a-z]{13}"), re.compile(r"txn_[0-9a-z]{13}")


async def predict(client: Client, user: ApiUser) -> dict[str, Any]:
    response = await client.post("/api/v1/predict", json={"model_id": 1, "data": [1, 2]},
                                 headers=user.auth)
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def get_json(client: Client, user: ApiUser, path: str) -> Any:
    response = await client.get(path, headers=user.auth)
    assert response.status == 200, await response.text()
    return await response.json()


def number(client: Client, prefix: str, public_id: str) -> int:
    """The stored global number behind a public id (what the server alone can read)."""
    found = client.server.app[PUBLIC_IDS].parse(prefix, public_id)
    assert found is not None
    return found


async def test_a_new_users_first_ids_say_nothing_about_other_users(client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=100)
    for _ in range(3):
        await predict(client, alice)
    bob = await api_signup(client, "bob", top_up=100)

    task = (await predict(client, bob))["task"]
    moves = (await get_json(client, bob, "/api/v1/transactions"))["data"]

    assert TASK_ID.fullmatch(task["id"])
    assert [m["task_id"] for m in moves] == [task["id"], None]
    assert all(TRANSACTION_ID.fullmatch(m["id"]) for m in moves)
    # Underneath, the numbers are global: bob's first task comes after alice's three ...
    assert number(client, TASK, task["id"]) == 4
    first_move = number(client, TRANSACTION, moves[-1]["id"])
    assert first_move > 4
    # ... and nothing of that shows: the texts are not numbers, and without the server's
    # key (here: a guessed one) they do not decode to them.
    assert not task["id"][4:].isdigit() and not moves[-1]["id"][4:].isdigit()
    guess = PublicIdCodec(b"\x00" * 32)
    assert guess.decode(TASK, task["id"]) != 4
    assert guess.decode(TRANSACTION, moves[-1]["id"]) != first_move
    alice_tasks = [t["id"] for t in (await get_json(client, alice, "/api/v1/tasks"))["data"]]
    assert task["id"] not in alice_tasks and len(set(alice_tasks)) == 3
    assert all(TASK_ID.fullmatch(t) for t in alice_tasks)


async def test_old_plain_numbers_still_resolve_and_cursors_take_both(client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=100)
    tasks = [(await predict(client, alice))["task"] for _ in range(3)]
    newest, middle = tasks[-1], tasks[1]

    for shown in (newest["id"], str(number(client, TASK, newest["id"]))):
        assert await get_json(client, alice, f"/api/v1/tasks/{shown}") == newest

    by_id = await get_json(client, alice, f"/api/v1/tasks?starting_after={middle['id']}")
    plain = number(client, TASK, middle["id"])
    by_number = await get_json(client, alice, f"/api/v1/tasks?starting_after={plain}")
    assert by_id == by_number == {"data": [tasks[0]], "has_more": False}

    moves = (await get_json(client, alice, "/api/v1/transactions?limit=2"))["data"]
    cursor = moves[-1]["id"]
    rest = await get_json(client, alice, f"/api/v1/transactions?starting_after={cursor}")
    plain = number(client, TRANSACTION, cursor)
    assert rest == await get_json(client, alice,
                                  f"/api/v1/transactions?starting_after={plain}")
    assert len(moves) + len(rest["data"]) == 4  # three charges and the top-up


async def test_another_users_task_is_404_by_either_id(client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=100)
    bob = await api_signup(client, "bob")
    task_id = (await predict(client, alice))["task"]["id"]

    for shown in (task_id, str(number(client, TASK, task_id))):
        await expect_problem(await client.get(f"/api/v1/tasks/{shown}", headers=bob.auth),
                             404, "task_not_found")


@pytest.mark.parametrize("shown", ["tsk_zzzzzzzzzzzzz", "tsk_0", "txn_0000000000000", "0",
                                   "-1", "1" * 19, "%E2%91%A0", "tsk_" + "a" * 30, "x"])
async def test_garbage_task_ids_are_404(client: Client, shown: str) -> None:
    alice = await api_signup(client, "alice")
    await expect_problem(await client.get(f"/api/v1/tasks/{shown}", headers=alice.auth),
                         404, "task_not_found")


@pytest.mark.parametrize("path", ["/api/v1/tasks", "/api/v1/transactions"])
@pytest.mark.parametrize("cursor", ["tsk_zzzzzzzzzzzzz", "abc", "0", "1" * 19, "a" * 41])
async def test_garbage_cursors_are_422(client: Client, path: str, cursor: str) -> None:
    alice = await api_signup(client, "alice")
    response = await client.get(f"{path}?starting_after={cursor}", headers=alice.auth)
    await expect_problem(response, 422, "validation_error")


async def test_a_task_id_is_not_a_transaction_cursor(client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=100)
    task_id = (await predict(client, alice))["task"]["id"]
    response = await client.get(f"/api/v1/transactions?starting_after={task_id}",
                                headers=alice.auth)
    await expect_problem(response, 422, "validation_error")
