"""Security tests: the real app factory on a real SQLite file, spoken to over HTTP on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from security_http import Client, MakeClient, app_config

from web.app import create_app


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "x.db"


@pytest.fixture
def make_client(aiohttp_client: Any, db_path: Path, predict_path: str) -> MakeClient:
    """An app on `db_path` (or on another file), with settings overridden per test."""

    async def make(*, app: web.Application | None = None, **overrides: Any) -> Client:
        overrides.setdefault("one_transaction", predict_path == "one_transaction")
        client: Client = await aiohttp_client(app or create_app(app_config(db_path, **overrides)))
        return client

    return make


@pytest.fixture
async def client(make_client: MakeClient) -> Client:
    return await make_client()
