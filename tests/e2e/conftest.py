"""End-to-end fixtures: the real app factory on a real SQLite file, served over real HTTP.

The API modules (test_api_*.py) run twice, once on the SQLite file and once on a fresh
PostgreSQL database of the session's throwaway cluster; the pages stay on SQLite.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from browser_kit import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS
from pgcluster import fresh_database
from playwright.async_api import Browser, async_playwright

from web.app import create_app
from web.config import Config


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if (metafunc.definition.path.name.startswith("test_api_")
            and "database_url" in metafunc.fixturenames):
        metafunc.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


@pytest.fixture
async def database_url(request: pytest.FixtureRequest) -> AsyncIterator[str | None]:
    """None for the SQLite file; under the "postgres" parameter, a fresh database's URL."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield None
        return
    async with fresh_database(request.getfixturevalue("pg_cluster")) as url:
        yield url


@pytest.fixture
def config(tmp_path: Path, database_url: str | None) -> Config:
    return Config(db_path=tmp_path / "cabinet.db", cheap_password_hashing=True,
                  database_url=database_url)


@pytest.fixture
async def client(config: Config, aiohttp_client: Any) -> TestClient[Any, Any]:
    """A client with its own cookie jar, talking to a server started by create_app. (The
    config comes first, so the server stops before a PostgreSQL database is dropped.)"""
    return await aiohttp_client(create_app(config))


# -- the browser tests (test_browser_*.py): Debian's chromium driven by Playwright ---------------

@pytest.fixture
def chromium() -> Path:
    """Debian's chromium; only a developer's machine may go without it."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing, and CI must run the browser test")
        pytest.skip(f"{CHROMIUM} is missing (outside CI)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(chromium),
                                                    args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def base_url(aiohttp_server: Any, config: Config) -> str:
    server: TestServer = await aiohttp_server(create_app(config))
    return str(server.make_url("")).rstrip("/")
