"""End-to-end fixtures: the real app factory on a real SQLite file, served over real HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from web.app import create_app
from web.config import Config


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(db_path=tmp_path / "cabinet.db", cheap_password_hashing=True)


@pytest.fixture
async def client(aiohttp_client: Any, config: Config) -> TestClient[Any, Any]:
    """A client with its own cookie jar, talking to a server started by create_app."""
    return await aiohttp_client(create_app(config))
