"""Two app processes on one database (two create_app in one test process), on one SQLite
file and on PostgreSQL: an operator's suspension through one holds in the other at once,
and so does a granted or revoked role."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from cabinet_http import api_signup, expect_problem, page_signup
from pgcluster import fresh_database

from ledger.audit import audit
from web.app import create_app
from web.config import Config
from web.keys import ADMIN

Client = TestClient[Any, Any]
MakeClient = Callable[..., Awaitable[Client]]


@pytest.fixture(params=["sqlite", "postgres"])
async def where(request: pytest.FixtureRequest, tmp_path: Path
                ) -> AsyncIterator[str | Path]:
    if request.param == "sqlite":
        yield tmp_path / "shared.db"
        return
    async with fresh_database(request.getfixturevalue("pg_cluster")) as url:
        yield url


@pytest.fixture
async def two(where: str | Path, aiohttp_client: MakeClient,
              tmp_path: Path) -> tuple[Client, Client, str | Path]:
    """Process A and process B: each its own store, writer, sweeper and cookie jar."""
    if isinstance(where, str):
        config = Config(database_url=where, db_path=tmp_path / "unused.db",
                        cheap_password_hashing=True)
    else:
        config = Config(db_path=where, cheap_password_hashing=True)
    first = await aiohttp_client(create_app(config))
    second = await aiohttp_client(create_app(config))
    return first, second, where


async def test_a_suspension_through_one_process_is_refused_by_the_other_at_once(
        two: tuple[Client, Client, str | Path]) -> None:
    a, b, where = two
    olga = await api_signup(b, "olga")
    assert await b.app[ADMIN].set_role("olga", True, "test")
    ada = await api_signup(a, "ada", top_up=10)
    made = await a.post("/api/v1/keys", json={"name": "k", "scope": "predict"},
                        headers=ada.auth)
    key = {"Authorization": f"Bearer {(await made.json())['key']}"}
    await page_signup(a, "bob")
    bob = (await a.app[ADMIN].users(q="bob")).data[0].id
    for headers in (ada.auth, key):  # A answers them before the suspension
        assert (await a.get("/api/v1/balance", headers=headers)).status == 200
    for user_id in (ada.id, bob):
        done = await b.post(f"/api/v1/admin/users/{user_id}/suspend",
                            json={"reason": "stolen card"}, headers=olga.auth)
        assert done.status == 200, await done.text()
    for headers in (ada.auth, key):
        await expect_problem(await a.get("/api/v1/balance", headers=headers), 401,
                             "account_suspended")
        await expect_problem(await a.post("/api/v1/predict", json={
            "model_id": 1, "data": [1]}, headers=headers), 401, "account_suspended")
    cabinet = await a.get("/cabinet", allow_redirects=False)
    assert cabinet.status == 303  # bob's page session on A reads as signed out
    resumed = await a.post(f"/api/v1/admin/users/{ada.id}/resume",
                           json={"reason": "card found"}, headers=olga.auth)
    assert resumed.status == 200, await resumed.text()  # the operator's token works on A
    assert (await b.get("/api/v1/balance", headers=key)).status == 200
    await b.app[ADMIN].set_role("olga", False, "test")
    await expect_problem(await a.get("/api/v1/admin/users", headers=olga.auth), 403,
                         "operator_only")
    report = await audit(where, show_progress=False)
    assert report.ok, report.render()
