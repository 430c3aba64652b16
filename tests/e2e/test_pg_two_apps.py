"""Two app processes on one PostgreSQL database (two create_app in one test process): what a
user and an operator see does not depend on which process answers."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from cabinet_http import (
    PASSWORD,
    ApiUser,
    api_signup,
    expect_problem,
    page_signup,
    replace_cookies,
    session_cookie,
    submit,
)

from events.leases import LeaseLiveness
from ledger import TaskDraft
from ledger.audit import audit
from ledger.control import Operation
from ml import MLModel, MLModelManager, ModelSpec
from web.app import create_app, sweep_orphaned_holds
from web.config import Config
from web.keys import LEDGER, LIVENESS
from web.throttle import PAIR

Client = TestClient[Any, Any]
MakeClient = Callable[..., Awaitable[Client]]


def pg_config(url: str, tmp_path: Path, **settings: Any) -> Config:
    # db_path is unused on PostgreSQL; it points into tmp_path so nothing lands elsewhere.
    return Config(database_url=url, db_path=tmp_path / "unused.db",
                  cheap_password_hashing=True, **settings)


@pytest.fixture
async def two(pg_url: str, aiohttp_client: MakeClient, tmp_path: Path) -> tuple[Client, Client]:
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


async def open_hold(app: Any, user_id: int, cost_credits: int) -> int:
    """A task this app's process started and has not finished: credits on hold."""
    ticket = await app[LEDGER].submit_task(
        user_id, TaskDraft(model_id=1, input_data=[1.0], input_indexes=[0], invalid=[],
                           cost_credits=cost_credits),
        Operation(user_id=user_id, operation_id=f"hold-{cost_credits}", kind="predict",
                  fingerprint="f"))
    assert ticket.run
    return int(ticket.task_id)


async def eventually(check: Callable[[], Awaitable[bool]], within_s: float = 15) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.05)
    return False


async def nothing_held(client: Client, user: ApiUser) -> bool:
    return await held(client, user) == 0


async def held(client: Client, user: ApiUser) -> int:
    response = await client.get("/api/v1/balance", headers=user.auth)
    assert response.status == 200, await response.text()
    return int((await response.json())["held"])


async def test_the_holds_of_a_process_whose_lease_ran_out_are_released_by_another(
        pg_url: str, aiohttp_client: MakeClient, tmp_path: Path) -> None:
    short = {"lease_s": 1.0, "sweep_s": 0.2}
    a = await aiohttp_client(create_app(pg_config(pg_url, tmp_path, **short)))
    b = await aiohttp_client(create_app(pg_config(pg_url, tmp_path, **short)))
    user = await api_signup(b, "ada", top_up=10)
    task_id = await open_hold(a.server.app, user.id, 4)
    # While A renews its lease, B leaves A's task alone, however often it sweeps.
    await sweep_orphaned_holds(b.server.app[LEDGER], b.server.app[LIVENESS])
    assert await held(b, user) == 4
    liveness = a.server.app[LIVENESS]
    assert isinstance(liveness, LeaseLiveness)
    liveness.stop_heartbeat()  # A froze or was killed: its lease is no longer renewed
    # B's own sweeper does it, within a lease and a sweep; polled, with a deadline.
    assert await eventually(lambda: nothing_held(b, user)), "B released A's hold"
    task = await b.get(f"/api/v1/tasks/{task_id}", headers=user.auth)
    body = await task.json()
    assert body["status"] == "failed" and "interrupted" in body["error"], body
    balance = await (await b.get("/api/v1/balance", headers=user.auth)).json()
    assert balance["balance"] == 10, "nothing was charged for the interrupted task"


async def test_one_idempotency_key_sent_to_both_processes_at_once_charges_once(
        two: tuple[Client, Client]) -> None:
    a, b = two
    user = await api_signup(a, "ada", top_up=100)
    headers = {**user.auth, "Idempotency-Key": "predict-once"}
    body = {"model_id": 1, "data": [1.0, 2.0, 3.0]}
    for _ in range(3):  # the same key, again and again, to both at once
        replies = await asyncio.gather(*(
            client.post("/api/v1/predict", json=body, headers=headers)
            for client in (a, b, a, b)))
        statuses = [r.status for r in replies]
        # One runs; the others get its stored reply, or 409 while it is still running.
        assert 200 in statuses and set(statuses) <= {200, 409}, statuses
    first = await (await a.post("/api/v1/predict", json=body, headers=headers)).json()
    again = await (await b.post("/api/v1/predict", json=body, headers=headers)).json()
    assert first == again, "both processes give the one stored reply"
    cost = first["cost"]
    balance = await (await b.get("/api/v1/balance", headers=user.auth)).json()
    assert balance == {"balance": 100 - cost, "held": 0, "available": 100 - cost}
    tasks = await (await a.get("/api/v1/tasks", headers=user.auth)).json()
    assert len(tasks["data"]) == 1, "one task for one key"


async def test_a_token_revoked_on_one_process_is_refused_by_the_other_at_once(
        two: tuple[Client, Client]) -> None:
    a, b = two
    user = await api_signup(a, "ada")
    assert (await b.get("/api/v1/me", headers=user.auth)).status == 200
    assert (await a.post("/api/v1/auth/logout", headers=user.auth)).status == 204
    await expect_problem(await b.get("/api/v1/me", headers=user.auth), 401, "unauthorized")


async def test_a_session_ended_on_one_process_is_refused_by_the_other_at_once(
        two: tuple[Client, Client]) -> None:
    a, b = two
    await page_signup(a, "ada")
    stolen = session_cookie(a)  # a copy of the cookie, kept by someone else
    replace_cookies(b, stolen)
    assert (await b.get("/cabinet", allow_redirects=False)).status == 200
    logout = await submit(a, "/cabinet", "/logout", {})
    assert logout.status == 303
    response = await b.get("/cabinet", allow_redirects=False)
    assert response.status == 303, "B checks the session in the database, not in the cookie"


async def test_login_failures_on_both_processes_count_against_one_limit(
        two: tuple[Client, Client]) -> None:
    a, b = two
    await api_signup(a, "ada")

    async def log_in(client: Client, password: str) -> Any:
        return await client.post("/api/v1/auth/login",
                                 json={"username": "ada", "password": password})

    for n in range(PAIR.failures + 1):  # alternating, so each process sees about half
        await expect_problem(await log_in((a, b)[n % 2], "wrong password"), 401,
                             "invalid_credentials")
    for client in (a, b):
        locked = await log_in(client, PASSWORD)
        await expect_problem(locked, 429, "too_many_attempts")
        assert 0 < int(locked.headers["Retry-After"]) <= PAIR.lock_s


class Gate(MLModel):
    """A model that runs until the test lets it finish."""

    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()

    def predict(self, data: list[float]) -> list[float]:
        self.entered.set()
        self.release.wait(timeout=30)
        return data


async def test_a_process_presumed_dead_that_finishes_after_all_charges_nothing(
        pg_url: str, aiohttp_client: MakeClient, tmp_path: Path) -> None:
    gate = Gate()
    gated = MLModelManager([ModelSpec(id=1, name="Gate", description="waits",
                                      price_per_item_credits=1, max_items=10,
                                      factory=lambda: gate)])
    short = {"lease_s": 1.0, "sweep_s": 0.2}
    a = await aiohttp_client(create_app(pg_config(pg_url, tmp_path, **short), gated))
    b = await aiohttp_client(create_app(pg_config(pg_url, tmp_path, **short)))
    user = await api_signup(b, "ada", top_up=10)
    headers = {**user.auth, "Idempotency-Key": "slow-one"}
    body = {"model_id": 1, "data": [1.0, 2.0]}
    running = asyncio.create_task(a.post("/api/v1/predict", json=body, headers=headers))
    try:
        assert await asyncio.to_thread(gate.entered.wait, 10), "A's model is running"
        assert await held(b, user) == 2
        liveness = a.server.app[LIVENESS]
        assert isinstance(liveness, LeaseLiveness)
        liveness.stop_heartbeat()  # A stalls long enough to be presumed dead
        assert await eventually(lambda: nothing_held(b, user)), "B released A's hold"
    finally:
        gate.release.set()
    late = await running  # A's model finishes after all; its hold is no longer there
    await expect_problem(late, 503, "service_unavailable")
    replay = await expect_problem(  # the stored outcome: the task failed, as a model failure
        await b.post("/api/v1/predict", json=body, headers=headers), 502, "prediction_failed")
    assert replay["task"]["status"] == "failed" and replay["task"]["cost"] == 0
    balance = await (await b.get("/api/v1/balance", headers=user.auth)).json()
    assert balance == {"balance": 10, "held": 0, "available": 10}, "resolved once, uncharged"
    assert (await audit(pg_url, show_progress=False)).ok
