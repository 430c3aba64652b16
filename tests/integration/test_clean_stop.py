"""The stop main.py runs on SIGTERM (web/server.py), with a model held mid-prediction: a
request in flight finishes within the grace period and is charged; one still running when
the grace runs out is cut off and its hold released as events, before the store closes."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sqlite3
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from ml import MLModel, MLModelManager
from ml.registry import ModelSpec
from web.app import create_app
from web.config import Config
from web.server import CabinetRunner

PASSWORD = "correct horse battery"
POLLS, POLL_S = 2000, 0.005


class Gate(MLModel):
    """Predicts (times two) only once the test opens the gate."""

    def __init__(self, gate: threading.Event) -> None:
        self.gate = gate

    def predict(self, data: list[float]) -> list[float]:
        assert self.gate.wait(30), "the test never opened the gate"
        return [value * 2 for value in data]


@dataclass
class Running:
    runner: CabinetRunner
    url: str
    db: Path
    gate: threading.Event


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return conn.execute(sql).fetchall()


async def until(condition: object) -> None:
    for _ in range(POLLS):
        if callable(condition) and condition():
            return
        await asyncio.sleep(POLL_S)  # a poll interval, bounded by POLLS
    raise AssertionError("the condition never held")


@pytest.fixture
async def running(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Running]:
    gate = threading.Event()
    models = MLModelManager([ModelSpec(id=1, name="gated", description="test",
                                       price_per_item_credits=1, max_items=10,
                                       factory=lambda: Gate(gate))])
    port, db = free_port(), tmp_path / "stop.db"
    config = Config(db_path=db, cheap_password_hashing=True, port=port,
                    shutdown_grace_s=float(request.param), verify_rate=0)
    runner = CabinetRunner(create_app(config, models), shutdown_timeout=config.shutdown_grace_s)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield Running(runner, f"http://127.0.0.1:{port}/api/v1", db, gate)
    finally:
        gate.set()
        await runner.cleanup()


async def funded_token(http: aiohttp.ClientSession, base: str) -> str:
    await http.post(f"{base}/auth/register", json={"username": "ada", "password": PASSWORD})
    login = await http.post(f"{base}/auth/login", json={"username": "ada", "password": PASSWORD})
    token = (await login.json())["access_token"]
    top_up = await http.post(f"{base}/balance/top-up", json={"amount": 10},
                             headers={"Authorization": f"Bearer {token}"})
    assert top_up.status == 201
    return str(token)


def listening(url: str) -> bool:
    port = int(url.split(":")[2].split("/")[0])
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("running", [10.0], indirect=True)
async def test_a_request_in_flight_finishes_within_the_grace(running: Running) -> None:
    async with aiohttp.ClientSession() as http:
        token = await funded_token(http, running.url)
        predicting = asyncio.ensure_future(http.post(
            f"{running.url}/predict", json={"model_id": 1, "data": [1, 2]},
            headers={"Authorization": f"Bearer {token}"}))
        await until(lambda: rows(running.db, "SELECT 1 FROM holds WHERE status = 'open'"))
        stopping = asyncio.ensure_future(running.runner.cleanup())
        await until(lambda: not listening(running.url))  # no new connections from here on
        running.gate.set()
        reply = await predicting
        assert reply.status == 200 and (await reply.json())["cost"] == 2
        await stopping
    assert rows(running.db, "SELECT status FROM holds") == [("settled",)]
    assert rows(running.db, "SELECT status FROM tasks") == [("completed",)]


@pytest.mark.parametrize("running", [0.2], indirect=True)
async def test_a_request_past_the_grace_is_cut_off_and_its_hold_released(
        running: Running) -> None:
    async with aiohttp.ClientSession() as http:
        token = await funded_token(http, running.url)
        predicting = asyncio.ensure_future(http.post(
            f"{running.url}/predict", json={"model_id": 1, "data": [1, 2]},
            headers={"Authorization": f"Bearer {token}"}))
        await until(lambda: rows(running.db, "SELECT 1 FROM holds WHERE status = 'open'"))
        await running.runner.cleanup()
        with pytest.raises(aiohttp.ClientError):
            await predicting
    assert rows(running.db, "SELECT status FROM holds") == [("released",)]
    assert rows(running.db, "SELECT status, error FROM tasks") == [
        ("failed", "stopped: the service shut down while it ran")]
    assert rows(running.db, "SELECT balance_credits, held_credits FROM accounts") == [(10, 0)]
