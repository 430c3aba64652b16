"""On PostgreSQL a serving process checks a bearer token from its cache (no database trip),
and a logout through another process is refused by it at once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from cabinet_http import api_signup, expect_problem

from ledger import control
from web.app import create_app
from web.config import Config

Client = TestClient[Any, Any]
MakeClient = Callable[..., Awaitable[Client]]


async def test_a_token_is_read_once_and_a_logout_elsewhere_ends_it_at_once(
        pg_url: str, aiohttp_client: MakeClient, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = [await aiohttp_client(create_app(Config(
        database_url=pg_url, db_path=tmp_path / "unused.db", cheap_password_hashing=True)))
        for _ in range(2)]
    user = await api_signup(a, "ada", top_up=100)
    reads: list[str] = []
    find_token = control.find_token

    async def counted(*args: Any) -> Any:
        reads.append("token")
        return await find_token(*args)

    monkeypatch.setattr(control, "find_token", counted)
    for _ in range(5):
        response = await b.get("/api/v1/balance", headers=user.auth)
        assert response.status == 200, await response.text()
    assert reads == ["token"], "B read the token once, then served it from its cache"

    assert (await a.post("/api/v1/auth/logout", headers=user.auth)).status in (200, 204)
    await expect_problem(await b.get("/api/v1/balance", headers=user.auth), 401,
                         "unauthorized")
