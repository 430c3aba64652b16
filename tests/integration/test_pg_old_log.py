"""The previous release's log on PostgreSQL: the events of tests/data/v1_ledger.db, copied
byte for byte into a database that has no projections yet (as a log restored from a backup
would be), are read through the upcasters, folded into today's projections when the store
opens, serve balances and tasks, take a new prediction, and pass the audit."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import asyncpg

from events.postgres import SCHEMA
from ledger import LedgerService, postgres_ledger_store
from ledger.audit import audit
from ml import MLModelManager, MLService, catalogue

REPO = Path(__file__).resolve().parents[2]
V1_LEDGER = REPO / "tests" / "data" / "v1_ledger.db"
COLUMNS = ("position, stream_id, version, type_name, schema_version, data, metadata, "
           "recorded_at, hash")


async def restore_v1_log(url: str) -> int:
    with closing(sqlite3.connect(V1_LEDGER)) as db:
        rows = db.execute(f"SELECT {COLUMNS} FROM events ORDER BY position").fetchall()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(SCHEMA)
        await conn.executemany(f"INSERT INTO events ({COLUMNS}) VALUES "
                               "($1, $2, $3, $4, $5, $6, $7, $8, $9)", rows)
    finally:
        await conn.close()
    return len(rows)


async def test_a_v1_log_on_postgresql_is_folded_into_todays_projections_and_audits(
        pg_url: str) -> None:
    assert await restore_v1_log(pg_url) == 16
    store = postgres_ledger_store(pg_url)
    await store.open()  # no projection_versions: every projection is built from the log
    try:
        ledger = LedgerService(store)
        balance = await ledger.get_balance(1)
        # ada: 100 − 2 − 6, and one credit still held by the v1 writer's interrupted task
        assert (balance.balance_credits, balance.held_credits) == (92, 1)
        tasks = (await ledger.tasks_page(1)).data
        assert [(t.id, t.status, t.model_version) for t in tasks] == [
            (4, "pending", None), (2, "completed", None), (1, "completed", None)]
        ml = MLService(ledger, MLModelManager(catalogue(REPO / "models")))
        result = await ml.process_task(1, 4, [[5.1, 3.5, 1.4, 0.2]])
        assert result.status == "completed"
        assert result.task.model_version == ml.spec(4).version
        assert result.balance.balance_credits == 91
    finally:
        await store.close()
    report = await audit(pg_url, show_progress=False)
    assert report.ok, report.render()
    assert report.events == 16 + 4


async def test_a_second_open_does_not_fold_the_log_again(pg_url: str) -> None:
    await restore_v1_log(pg_url)
    first = postgres_ledger_store(pg_url)
    await first.open()
    await first.close()
    conn = await asyncpg.connect(pg_url)
    try:
        versions = await conn.fetch("SELECT name, version FROM projection_versions "
                                    "ORDER BY name")
        assert [(r["name"], r["version"]) for r in versions] == [
            ("accounts", 2), ("admin", 1), ("api_keys", 1), ("spend", 1), ("tasks", 2),
            ("totals", 1), ("transactions", 2), ("usage", 1)]
        # A mark a rebuild would wipe out (the audit would call it a difference).
        await conn.execute("UPDATE tasks SET error = 'marker' WHERE id = 1")
    finally:
        await conn.close()
    again = postgres_ledger_store(pg_url)
    await again.open()
    try:
        row = await again.read_db().fetchone("SELECT error FROM tasks WHERE id = 1")
        assert row == {"error": "marker"}
    finally:
        await again.close()
