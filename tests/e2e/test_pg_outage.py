"""The app on PostgreSQL while the server goes away and comes back: writes answer 503 at once,
what needs no database is still served, nothing is half-written, and it recovers by itself."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient
from cabinet_http import ApiUser, api_signup, expect_problem
from pgcluster import PgCluster
from test_pg_two_apps import Gate, eventually, nothing_held

from events.postgres import WRITE_LOCK
from ledger.audit import audit
from ml import MLModelManager, ModelSpec
from web.app import create_app
from web.config import Config

Client = TestClient[Any, Any]


async def top_up(client: Client, user: ApiUser, amount: int, key: str) -> Any:
    return await client.post("/api/v1/balance/top-up", json={"amount": amount},
                             headers={**user.auth, "Idempotency-Key": key})


async def answers_within(seconds: float, request: Awaitable[Any]) -> Any:
    started = time.monotonic()
    response = await request
    assert time.monotonic() - started < seconds, "an outage is told at once, not waited out"
    return response


async def test_writes_answer_503_while_the_server_is_down_and_work_again_after(
        pg_durable_cluster: PgCluster, aiohttp_client: Callable[..., Awaitable[Client]],
        tmp_path: Path) -> None:
    url = await pg_durable_cluster.create_database()
    config = Config(database_url=url, db_path=tmp_path / "unused.db",
                    cheap_password_hashing=True)
    client = await aiohttp_client(create_app(config))
    ada = await api_signup(client, "ada", top_up=10)

    pg_durable_cluster.stop("immediate")  # a crash of the server, mid-service
    refused = await answers_within(5, top_up(client, ada, 5, "during-outage"))
    await expect_problem(refused, 503, "service_unavailable")
    await expect_problem(await answers_within(5, client.post("/api/v1/predict", json={
        "model_id": 1, "data": [1.0]}, headers=ada.auth)), 503, "service_unavailable")
    await expect_problem(await answers_within(5, client.post("/api/v1/auth/login", json={
        "username": "ada", "password": "whatever it is"})), 503, "service_unavailable")
    # What needs no database is still served.
    for path in ("/healthz", "/api/v1/models", "/", "/login"):
        assert (await answers_within(5, client.get(path))).status == 200, path
    await expect_problem(await client.get("/api/v1/balance", headers=ada.auth), 503,
                         "service_unavailable")

    pg_durable_cluster.start_server()
    # Back by itself: the same key now runs once; the refused attempt left nothing behind.
    again = await top_up(client, ada, 5, "during-outage")
    assert again.status == 201, await again.text()
    balance = await (await client.get("/api/v1/balance", headers=ada.auth)).json()
    assert balance["balance"] == 15
    history = await (await client.get("/api/v1/transactions", headers=ada.auth)).json()
    assert [t["amount"] for t in history["data"]] == [5, 10]
    assert (await audit(url, show_progress=False)).ok


async def test_a_prediction_cut_by_an_outage_is_released_after_and_its_key_says_so(
        pg_durable_cluster: PgCluster, aiohttp_client: Callable[..., Awaitable[Client]],
        tmp_path: Path) -> None:
    gate = Gate()
    gated = MLModelManager([ModelSpec(id=1, name="Gate", description="waits",
                                      price_per_item_credits=1, max_items=10,
                                      factory=lambda: gate)])
    url = await pg_durable_cluster.create_database()
    config = Config(database_url=url, db_path=tmp_path / "unused.db",
                    cheap_password_hashing=True, sweep_s=0.2, stale_hold_s=1.0)
    client = await aiohttp_client(create_app(config, gated))
    ada = await api_signup(client, "ada", top_up=10)
    headers = {**ada.auth, "Idempotency-Key": "cut-short"}
    body = {"model_id": 1, "data": [1.0, 2.0]}
    running = asyncio.create_task(client.post("/api/v1/predict", json=body, headers=headers))
    try:
        assert await asyncio.to_thread(gate.entered.wait, 10), "the model is running"
        await asyncio.to_thread(pg_durable_cluster.stop, "immediate")
    finally:
        gate.release.set()
    # The model finished, but its result cannot be written: told at once, nothing charged.
    await expect_problem(await running, 503, "service_unavailable")
    await asyncio.to_thread(pg_durable_cluster.start_server)
    # The hold nobody will settle is released by the process itself (stale_hold_s), and the
    # key then gives the stored failure instead of 409 request_in_progress.
    assert await eventually(lambda: nothing_held(client, ada)), "the hold was released"
    replay = await expect_problem(
        await client.post("/api/v1/predict", json=body, headers=headers), 502,
        "prediction_failed")
    assert replay["task"]["status"] == "failed" and "abandoned" in replay["task"]["error"]
    balance = await (await client.get("/api/v1/balance", headers=ada.auth)).json()
    assert balance == {"balance": 10, "held": 0, "available": 10}
    assert (await audit(url, show_progress=False)).ok


async def test_a_write_lock_held_elsewhere_fails_writes_at_the_lock_timeout_and_reads_go_on(
        pg_url: str, aiohttp_client: Callable[..., Awaitable[Client]], tmp_path: Path) -> None:
    config = Config(database_url=pg_url, db_path=tmp_path / "unused.db",
                    cheap_password_hashing=True)
    client = await aiohttp_client(create_app(config))
    ada = await api_signup(client, "ada", top_up=10)
    stuck = await asyncpg.connect(pg_url)  # a process stuck inside its write transaction
    try:
        await stuck.execute(f"SELECT pg_advisory_lock({WRITE_LOCK})")
        # lock_timeout is 5 s: the write is refused then, not left hanging.
        refused = await answers_within(9, top_up(client, ada, 5, "behind-the-lock"))
        await expect_problem(refused, 503, "service_unavailable")
        balance = await answers_within(2, client.get("/api/v1/balance", headers=ada.auth))
        assert (await balance.json())["balance"] == 10, "reads do not wait for the write lock"
    finally:
        await stuck.close()
    assert (await top_up(client, ada, 5, "behind-the-lock")).status == 201
    assert (await (await client.get("/api/v1/balance", headers=ada.auth)).json())[
        "balance"] == 15
