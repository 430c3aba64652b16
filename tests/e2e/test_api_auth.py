"""The API's accounts: register, log in, log out, and who may call what."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from cabinet_http import PASSWORD, api_signup, expect_problem

Client = TestClient[Any, Any]

PROTECTED = [
    ("POST", "/api/v1/auth/logout"),
    ("GET", "/api/v1/me"),
    ("GET", "/api/v1/balance"),
    ("POST", "/api/v1/balance/top-up"),
    ("GET", "/api/v1/transactions"),
    ("POST", "/api/v1/predict"),
    ("GET", "/api/v1/tasks"),
    ("GET", "/api/v1/tasks/1"),
]


async def register(client: Client, body: object) -> Any:
    return await client.post("/api/v1/auth/register", json=body)


async def test_register_creates_an_account_with_an_empty_balance(client: Client) -> None:
    response = await register(client, {"username": "alice", "password": PASSWORD})

    assert response.status == 201
    body = await response.json()
    assert body == {"id": body["id"], "username": "alice", "balance": 0}
    assert isinstance(body["id"], int)


async def test_a_taken_username_is_refused_whatever_its_case(client: Client) -> None:
    await api_signup(client, "alice")

    for taken in ("alice", "ALICE"):
        response = await register(client, {"username": taken, "password": PASSWORD})
        await expect_problem(response, 409, "username_taken")


@pytest.mark.parametrize("username", ["abc", "a" * 32, "Ann_B.c-9", "émile", "Иван_1"])
async def test_usernames_of_3_to_32_allowed_characters_are_accepted(
        client: Client, username: str) -> None:
    response = await register(client, {"username": username, "password": PASSWORD})
    assert response.status == 201, await response.text()


@pytest.mark.parametrize("username", ["ab", "a" * 33, "a<b", "two words", "", "iv\u200ban",
                                      "Ivанn"])
async def test_other_usernames_are_refused_with_a_message_for_the_field(
        client: Client, username: str) -> None:
    response = await register(client, {"username": username, "password": PASSWORD})
    body = await expect_problem(response, 422, "validation_error")
    assert set(body["errors"]) == {"username"}
    assert body["errors"]["username"][0]


@pytest.mark.parametrize(("password", "accepted"), [
    ("x" * 7, False), ("x" * 8, True), ("x" * 256, True), ("x" * 257, False)])
async def test_passwords_must_be_8_to_256_characters(
        client: Client, password: str, accepted: bool) -> None:
    response = await register(client, {"username": "alice", "password": password})
    if accepted:
        assert response.status == 201
    else:
        body = await expect_problem(response, 422, "validation_error")
        assert set(body["errors"]) == {"password"}


async def test_every_missing_field_gets_its_own_message(client: Client) -> None:
    body = await expect_problem(await register(client, {}), 422, "validation_error")
    assert set(body["errors"]) == {"username", "password"}


async def test_a_client_cannot_set_its_own_balance_at_registration(client: Client) -> None:
    response = await register(client, {"username": "alice", "password": PASSWORD,
                                       "balance": 1_000_000})
    body = await expect_problem(response, 422, "validation_error")
    assert set(body["errors"]) == {"balance"}
    login = await client.post("/api/v1/auth/login",
                              json={"username": "alice", "password": PASSWORD})
    assert login.status == 401, "the refused registration must not create the account"


async def test_a_body_that_is_not_a_json_object_is_refused(client: Client) -> None:
    await expect_problem(await register(client, ["alice", PASSWORD]), 422, "validation_error")
    malformed = await client.post("/api/v1/auth/register", data="{not json",
                                  headers={"Content-Type": "application/json"})
    await expect_problem(malformed, 400, "malformed_json")
    form = await client.post("/api/v1/auth/register",
                             data={"username": "alice", "password": PASSWORD})
    await expect_problem(form, 415, "unsupported_media_type")


async def test_login_returns_a_bearer_token_that_opens_the_api(client: Client) -> None:
    await register(client, {"username": "alice", "password": PASSWORD})

    response = await client.post("/api/v1/auth/login",
                                 json={"username": "alice", "password": PASSWORD})

    assert response.status == 200
    body = await response.json()
    assert set(body) == {"access_token", "token_type", "expires_at"}
    assert body["token_type"] == "bearer"
    assert datetime.fromisoformat(body["expires_at"]) > datetime.now().astimezone()
    me = await client.get("/api/v1/me",
                          headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status == 200
    assert (await me.json())["username"] == "alice"


async def test_unknown_user_and_wrong_password_get_the_same_answer(client: Client) -> None:
    await api_signup(client, "alice")

    wrong_password = await client.post("/api/v1/auth/login",
                                       json={"username": "alice", "password": "not it at all"})
    unknown_user = await client.post("/api/v1/auth/login",
                                     json={"username": "nobody", "password": PASSWORD})

    first = await expect_problem(wrong_password, 401, "invalid_credentials")
    second = await expect_problem(unknown_user, 401, "invalid_credentials")
    assert first == second


async def test_logout_revokes_the_token_at_once(client: Client) -> None:
    alice = await api_signup(client, "alice")

    response = await client.post("/api/v1/auth/logout", headers=alice.auth)

    assert response.status == 204
    assert await response.read() == b""
    after = await client.get("/api/v1/me", headers=alice.auth)
    await expect_problem(after, 401, "unauthorized")
    again = await client.post("/api/v1/auth/logout", headers=alice.auth)
    await expect_problem(again, 401, "unauthorized")


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize("authorization", [None, "Bearer not-a-real-token", "Basic YTpi",
                                           "Bearer "])
async def test_every_account_endpoint_needs_a_valid_bearer_token(
        client: Client, method: str, path: str, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await client.request(method, path, headers=headers, json={})

    await expect_problem(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_me_describes_the_caller(client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=70)

    response = await client.get("/api/v1/me", headers=alice.auth)

    assert response.status == 200
    body = await response.json()
    assert body == {"id": alice.id, "username": "alice", "balance": 70, "held": 0,
                    "available": 70, "created_at": body["created_at"], "time_zone": "UTC"}
    datetime.fromisoformat(body["created_at"])
