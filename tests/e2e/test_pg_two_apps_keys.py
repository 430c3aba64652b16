"""API keys and the password on two app processes sharing one PostgreSQL database: a change
made through one process holds on the other at once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from cabinet_http import PASSWORD, api_signup, expect_problem

from web.app import create_app
from web.config import Config

Client = TestClient[Any, Any]
MakeClient = Callable[..., Awaitable[Client]]


@pytest.fixture
async def two(pg_url: str, aiohttp_client: MakeClient, tmp_path: Path) -> tuple[Client, Client]:
    def config() -> Config:
        return Config(database_url=pg_url, db_path=tmp_path / "unused.db",
                      cheap_password_hashing=True)
    return (await aiohttp_client(create_app(config())),
            await aiohttp_client(create_app(config())))


async def test_a_key_revoked_on_one_process_is_refused_by_the_other_at_once(
        two: tuple[Client, Client]) -> None:
    a, b = two
    ada = await api_signup(a, "ada", top_up=10)
    made = await a.post("/api/v1/keys", json={"name": "ci", "scope": "predict"},
                        headers=ada.auth)
    key = await made.json()
    auth = {"Authorization": f"Bearer {key['key']}"}
    assert (await b.get("/api/v1/balance", headers=auth)).status == 200, "B knows A's key"
    assert (await b.post("/api/v1/predict", json={"model_id": 1, "data": [1]},
                         headers=auth)).status == 200

    revoked = await a.delete(f"/api/v1/keys/{key['id']}", headers=ada.auth)
    assert revoked.status == 204
    await expect_problem(await b.get("/api/v1/balance", headers=auth), 401, "unauthorized")
    await expect_problem(await a.get("/api/v1/balance", headers=auth), 401, "unauthorized")
    listed = await (await b.get("/api/v1/keys", headers=ada.auth)).json()
    assert listed["data"][0]["revoked_at"] is not None


async def test_a_password_changed_on_one_process_ends_tokens_on_the_other(
        two: tuple[Client, Client]) -> None:
    a, b = two
    ada = await api_signup(a, "ada")
    other = await b.post("/api/v1/auth/login", json={"username": "ada", "password": PASSWORD})
    other_auth = {"Authorization": f"Bearer {(await other.json())['access_token']}"}
    changed = await a.post("/api/v1/auth/password", headers=ada.auth, json={
        "current_password": PASSWORD, "new_password": "another good passphrase"})
    assert changed.status == 204
    await expect_problem(await b.get("/api/v1/me", headers=other_auth), 401, "unauthorized")
    assert (await b.get("/api/v1/me", headers=ada.auth)).status == 200
    log = await (await b.get("/api/v1/security-events", headers=ada.auth)).json()
    assert log["data"][0]["kind"] == "password_changed"
