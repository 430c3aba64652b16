"""Two app processes on one PostgreSQL database (two create_app in one test process): what a
user and an operator see does not depend on which process answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from cabinet_http import page_signup, replace_cookies, session_cookie

from web.app import create_app
from web.config import Config

Client = TestClient[Any, Any]
MakeClient = Callable[..., Awaitable[Client]]


def pg_config(url: str, tmp_path: Path, **settings: Any) -> Config:
    # db_path is unused on PostgreSQL; it points into tmp_path so nothing lands elsewhere.
    return Config(database_url=url, db_path=tmp_path / "unused.db",
                  cheap_password_hashing=True, **settings)


@pytest.fixture
async def two(aiohttp_client: MakeClient, pg_url: str, tmp_path: Path) -> tuple[Client, Client]:
    """Process A and process B, each with its own pool, writer, sweeper and cookie jar."""
    first = await aiohttp_client(create_app(pg_config(pg_url, tmp_path)))
    second = await aiohttp_client(create_app(pg_config(pg_url, tmp_path)))
    return first, second


async def test_a_user_logged_in_through_one_process_stays_logged_in_on_the_other(
        two: tuple[Client, Client]) -> None:
    a, b = two
    await page_signup(a, "ada")
    replace_cookies(b, session_cookie(a))
    response = await b.get("/cabinet", allow_redirects=False)
    assert response.status == 200, "B decrypts A's cookie: one key for every process"
    assert "ada" in await response.text()
