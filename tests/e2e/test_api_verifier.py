"""The background verifier: an edit made while the service runs is found, named by position
in the health report and the problem, and stops writes while reads go on. On both stores."""

from __future__ import annotations

import contextlib
import sqlite3
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # ships no type hints
from aiohttp.test_utils import TestClient
from cabinet_http import api_signup, expect_problem

from web.config import Config
from web.keys import VERIFIER

Client = TestClient[Any, Any]


async def tamper_with_a_deposit(config: Config) -> int:
    """As someone with database access does it: the guard trigger dropped, an amount raised."""
    find = ("SELECT position FROM events WHERE type_name = 'CreditsDeposited' "
            "ORDER BY position LIMIT 1")
    edit = ("UPDATE events SET data = replace(data, '\"amount_credits\":100', "
            "'\"amount_credits\":900') WHERE position = {}")
    if config.database_url is None:
        with contextlib.closing(sqlite3.connect(config.db_path, isolation_level=None)) as db:
            (position,) = db.execute(find).fetchone()
            db.execute("DROP TRIGGER events_no_update")
            assert db.execute(edit.format(position)).rowcount == 1
        return int(position)
    admin = await asyncpg.connect(config.database_url)  # the test cluster's superuser
    try:
        position = await admin.fetchval(find)
        await admin.execute("DROP TRIGGER events_no_update ON events")
        assert await admin.execute(edit.format(position)) == "UPDATE 1"
    finally:
        await admin.close()
    return int(position)


async def test_an_edit_made_while_serving_is_found_and_stops_writes(
        client: Client, config: Config) -> None:
    alice = await api_signup(client, "alice", top_up=100)
    verifier = client.app[VERIFIER]
    verifier.min_pass_interval_s = 0  # a new pass at every step, not once a minute
    await verifier.step(rows=1_000)  # an honest pass
    health = await (await client.get("/healthz")).json()
    assert health["status"] == "ok" and health["first_break"] is None
    assert health["verified_through"] >= 2 and health["last_full_pass_at"] is not None

    position = await tamper_with_a_deposit(config)
    await verifier.step(rows=1_000)

    health = await (await client.get("/healthz")).json()
    assert health["status"] == "ledger_damaged"
    assert health["first_break"]["position"] == position
    refused = await client.post("/api/v1/balance/top-up", json={"amount": 5},
                                headers=alice.auth)
    problem = await expect_problem(refused, 503, "ledger_damaged")
    assert problem["position"] == position
    assert f"position {position}" in problem["detail"]
    balance = await client.get("/api/v1/balance", headers=alice.auth)
    assert balance.status == 200, await balance.text()


async def test_the_first_pass_checks_the_projections_too(client: Client, config: Config) -> None:
    await api_signup(client, "bob", top_up=100)
    verifier = client.app[VERIFIER]
    verifier.min_pass_interval_s = 0  # a new pass at every step, not once a minute
    store_db = config.database_url
    if store_db is None:
        with contextlib.closing(sqlite3.connect(config.db_path, isolation_level=None)) as db:
            db.execute("UPDATE accounts SET balance_credits = 5000")
    else:
        admin = await asyncpg.connect(store_db)
        try:
            await admin.execute("UPDATE accounts SET balance_credits = 5000")
        finally:
            await admin.close()
    await verifier.step(rows=1_000)
    health = await (await client.get("/healthz")).json()
    assert health["status"] == "ledger_damaged"
    assert "differs from its postings" in health["first_break"]["reason"]
