"""A damaged log is never served as truth: the audit names the damage, the server refuses to
start and says why in its log."""

from __future__ import annotations

import contextlib
import json
import random
import sqlite3
from pathlib import Path

import pytest
from fault_harness import Servers, run_audit

from ledger import LedgerService, ledger_store


async def build_ledger(path: Path) -> None:
    """Two accounts with a history, closed cleanly so every page is in the main file."""
    store = ledger_store(path)
    await store.open()
    try:
        ledger = LedgerService(store)
        for name in ("alice", "bob"):
            user = (await ledger.open_account(name, "not-a-real-hash")).id
            for i in range(40):
                await ledger.top_up(user, 10 + i, f"{name}-{i}")
    finally:
        await store.close()
    assert_checkpointed(path)


def assert_checkpointed(path: Path) -> None:
    """No WAL left beside the file: damage done to the file cannot be hidden by it."""
    assert not Path(f"{path}-wal").exists(), "the log was not checkpointed into the file"


def forge_a_deposit(path: Path) -> int:
    """What a tamperer with file access does: drop the guard triggers, raise an amount."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        positions = [r[0] for r in conn.execute(
            "SELECT position FROM events WHERE type_name = 'CreditsDeposited' ORDER BY position")]
        position = positions[len(positions) // 2]
        (data,) = conn.execute("SELECT data FROM events WHERE position = ?",
                               (position,)).fetchone()
        forged = json.loads(data) | {"amount_credits": 1_000_000}
        conn.execute("DROP TRIGGER events_no_update")
        conn.execute("UPDATE events SET data = ? WHERE position = ?",
                     (json.dumps(forged, sort_keys=True, separators=(",", ":")), position))
    return position


def overwrite(path: Path, offset: int, length: int, seed: int) -> None:
    noise = random.Random(seed).randbytes(length)
    with path.open("r+b") as file:
        file.seek(offset)
        file.write(noise)


def damage_middle_page(path: Path) -> int:
    # The middle page of the log itself: the file's middle may hold the schema, whose damage
    # stops the file from opening at all (another test's case).
    with contextlib.closing(sqlite3.connect(path)) as conn:
        pages = [r[0] for r in conn.execute(
            "SELECT pageno FROM dbstat WHERE name = 'events' ORDER BY pageno")]
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    middle = pages[len(pages) // 2]
    overwrite(path, (middle - 1) * page_size, page_size, seed=middle)
    return int(middle)


async def assert_refuses_to_start(servers: Servers, db: Path, *reasons: str) -> str:
    server = await servers.spawn(db)
    code = await servers.exit_code(server)
    log = server.log_text()
    assert code != 0, f"the server served a damaged log:\n{log}"
    assert "refusing to start" in log, log
    for reason in reasons:
        assert reason in log, log
    return log


@pytest.mark.parametrize("jobs", [1, 2])
async def test_an_edited_event_fails_the_audit_and_startup_at_its_position(
        tmp_path: Path, servers: Servers, jobs: int) -> None:
    db = tmp_path / "ledger.db"
    await build_ledger(db)
    position = forge_a_deposit(db)

    code, report = await run_audit(db, jobs)
    assert code != 0, report
    assert f"BROKEN at position {position}" in report, report
    assert "AUDIT FAILED" in report

    await assert_refuses_to_start(servers, db, f"broken at position {position}")


@pytest.mark.parametrize("jobs", [1, 2])
async def test_a_damaged_page_in_the_middle_fails_the_audit_and_startup(
        tmp_path: Path, servers: Servers, jobs: int) -> None:
    db = tmp_path / "ledger.db"
    await build_ledger(db)
    damage_middle_page(db)

    code, report = await run_audit(db, jobs)
    assert code != 0, report
    assert "DAMAGED" in report and "AUDIT FAILED" in report, report

    await assert_refuses_to_start(servers, db)


async def test_a_damaged_file_header_stops_startup_rather_than_hanging_it(
        tmp_path: Path, servers: Servers) -> None:
    db = tmp_path / "ledger.db"
    await build_ledger(db)
    overwrite(db, 0, 16, seed=0)  # "SQLite format 3\0" is gone

    code, report = await run_audit(db)
    assert code != 0, report
    assert "not a database" in report, report

    await assert_refuses_to_start(servers, db, "not a database")
