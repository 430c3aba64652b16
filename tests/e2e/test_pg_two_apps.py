"""Two app processes on one PostgreSQL database (two create_app in one test process): what a
user and an operator see does not depend on which process answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from cabinet_http import ApiUser, api_signup, page_signup, replace_cookies, session_cookie

from events.leases import LeaseLiveness
from ledger import TaskDraft
from ledger.control import Operation
from web.app import create_app, sweep_orphaned_holds
from web.config import Config
from web.keys import LEDGER, LIVENESS

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
