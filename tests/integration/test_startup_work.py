"""A whole start of the app (store, log check, sweep, verifier, metrics' totals, sealing's
first pass) does the same database work on a log ten times longer: SQLite's own count of
the instructions it ran, and the statements, on every connection the start opened. The
totals it starts the metrics from are still the ledger's (tests/e2e/test_api_metrics.py:
across a restart)."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from ledger import LedgerService, ledger_store
from ledger.totals import ledger_totals
from ml import MLModelManager, MLService, default_models
from web.app import create_app
from web.config import Config
from web.keys import NODES_BUILT

ClientFactory = Callable[[Any], Coroutine[Any, Any, TestClient[Any, Any]]]
STEP = 100  # SQLite calls the progress handler every this many virtual machine instructions


async def grow(path: Path, rounds: int) -> None:
    """Three accounts (always the same ones), and per round a top-up, a direct charge, a
    prediction charged and one refused for lack of credits."""
    store = ledger_store(path)
    await store.open()
    try:
        ledger = LedgerService(store)
        ml = MLService(ledger, MLModelManager(default_models()))
        users = []
        for name in ("ada", "bob", "cy"):
            found = await store.read_db().fetchone(
                "SELECT user_id FROM accounts WHERE username = ?", (name,))
            users.append(int(found["user_id"]) if found else
                         (await ledger.open_account(name, "h")).id)
        for _ in range(rounds):
            await ledger.top_up(users[0], 10)
            await ledger.withdraw(users[0], 1, "a direct charge")
            await ml.process_task(users[0], 1, [1.5, 2.0])
            await ml.process_task(users[2], 1, [1.0])  # cy has no credits: rejected
    finally:
        await store.close()


class Work:
    """Counts what every SQLite connection opened from now on runs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.counts: Counter[str] = Counter()
        real = sqlite3.connect

        def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
            conn = real(*args, **kwargs)
            conn.set_progress_handler(self._step, STEP)
            conn.set_trace_callback(self._statement)
            return conn

        monkeypatch.setattr(sqlite3, "connect", connect)

    def _step(self) -> int:
        self.counts["steps"] += 1
        return 0  # go on

    def _statement(self, sql: str) -> None:
        self.counts["statements"] += 1


async def start_and_stop(config: Config, aiohttp_client: ClientFactory,
                         monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """The database work of one start, up to the first /healthz answer."""
    work = Work(monkeypatch)
    client = await aiohttp_client(create_app(config))
    health = await client.get("/healthz")
    assert health.status == 200
    # The sealer's first pass (an old log's Merkle nodes) runs beside serving; count it
    # whole, or the count depends on how far it got by the first answer.
    await client.app[NODES_BUILT].wait()
    done = Counter(work.counts)
    await client.close()
    monkeypatch.undo()
    return done


async def test_a_start_does_the_same_database_work_on_a_log_ten_times_longer(
        tmp_path: Path, aiohttp_client: ClientFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    config = Config(db_path=tmp_path / "c.db", cheap_password_hashing=True, verify_rate=0)
    await grow(config.db_path, 10)
    await start_and_stop(config, aiohttp_client, monkeypatch)  # verifies it all, once
    small = await start_and_stop(config, aiohttp_client, monkeypatch)
    await grow(config.db_path, 100)
    await start_and_stop(config, aiohttp_client, monkeypatch)  # the new tail, once
    big = await start_and_stop(config, aiohttp_client, monkeypatch)

    assert big["statements"] == small["statements"]
    # A few more B-tree levels may add an instruction here and there; a scan of the
    # transactions or tasks (about 330 more rows of each) would add thousands.
    assert abs(big["steps"] - small["steps"]) <= 10, (small, big)


async def test_the_totals_at_start_are_the_ledgers_own_sums(tmp_path: Path) -> None:
    """What the metrics start from equals the sums over every transaction and task."""
    await grow(tmp_path / "c.db", 7)
    store = ledger_store(tmp_path / "c.db")
    await store.open()
    try:
        db = store.read_db()
        totals = await ledger_totals(db)
        moved = {r["kind"]: int(r["s"]) for r in await db.fetchall(
            "SELECT kind, SUM(amount_credits) AS s FROM transactions GROUP BY kind")}
        tasks = {(int(r["model_id"]), str(r["status"])): int(r["n"]) for r in await db.fetchall(
            "SELECT model_id, status, COUNT(*) AS n FROM tasks GROUP BY model_id, status")}
    finally:
        await store.close()
    assert (totals.topped_up_credits, totals.charged_credits) == (moved["top_up"],
                                                                  -moved["charge"]) == (70, 21)
    assert totals.predictions == tasks == {(1, "completed"): 7, (1, "rejected"): 7}
    assert totals.items_predicted == 14
