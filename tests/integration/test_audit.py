"""`python -m ledger audit`: passes on an honest file, and names what an attacker changed."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Services

PROJECT_ROOT = Path(__file__).resolve().parents[2]


JOBS = ["1"]


@pytest.fixture(autouse=True, params=["1", "2"], ids=["jobs1", "jobs2"])
def audit_jobs(request: pytest.FixtureRequest) -> str:
    """Every verdict, in one process and split across two: the same words, the same positions."""
    JOBS[0] = request.param
    return str(request.param)


def run_audit(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ledger", "audit", "--db", str(path),
                           "--jobs", JOBS[0]],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
                          check=False)


async def build_log(services: Services) -> dict[str, int]:
    """A small honest history; returns the positions of the rows the attacks aim at."""
    alice = int((await services.users.register("alice", "correct horse")).id)
    bob = int((await services.users.register("bob", "correct horse")).id)
    await services.ledger.top_up(alice, 100, "op-1")
    await services.ledger.top_up(bob, 50)
    await services.ml.process_task(alice, 1, [1, 2, "x"])
    await services.ml.process_task(bob, 2, list(range(40)))  # rejected: 80 credits
    await services.ml.process_task(alice, 1, [1e308])  # failed: the output overflows
    await services.ledger.withdraw(bob, 5, "Charge")
    rows = await services.store.read_db().fetchall(
        "SELECT position, stream_id, type_name FROM events ORDER BY position")
    await services.store.close()
    deposits = [r["position"] for r in rows if r["type_name"] == "CreditsDeposited"]
    return {"alice_deposit": deposits[0], "bob_deposit": deposits[1], "last": len(rows),
            "bob": bob}


@pytest.fixture
async def ledger_file(services: Services, db_path: Path) -> tuple[Path, dict[str, int]]:
    where = await build_log(services)
    assert not db_path.with_name(db_path.name + "-wal").exists()  # all in the one file
    return db_path, where


def tampered(source: Path, target: Path, *statements: str) -> Path:
    """A copy of the file as an attacker leaves it: triggers dropped, rows edited."""
    shutil.copy(source, target)
    with closing(sqlite3.connect(target)) as db:
        db.execute("DROP TRIGGER events_no_update")
        db.execute("DROP TRIGGER events_no_delete")
        for statement in statements:
            assert db.execute(statement).rowcount >= 1, statement
        db.commit()
    return target


def test_an_honest_log_passes(ledger_file: tuple[Path, dict[str, int]]) -> None:
    path, where = ledger_file
    result = run_audit(path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "AUDIT PASSED" in result.stdout
    assert f"events in the log:     {where['last']}" in result.stdout
    assert "hash chain:            intact" in result.stdout
    assert "postings sum:          0 credits (balanced)" in result.stdout


def test_the_audit_writes_nothing_to_the_file(ledger_file: tuple[Path, dict[str, int]]) -> None:
    path, _ = ledger_file
    before = path.read_bytes()
    assert run_audit(path).returncode == 0
    assert path.read_bytes() == before


def test_a_file_anywhere_can_be_audited(
        ledger_file: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    path, _ = ledger_file
    odd = tmp_path / "backups #2? 100%" / "ledger copy.db"
    odd.parent.mkdir()
    shutil.copy(path, odd)
    result = run_audit(odd)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "AUDIT PASSED" in result.stdout


def test_an_edited_event_is_found_at_its_position(
        ledger_file: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    path, where = ledger_file
    position = where["alice_deposit"]
    copy = tampered(path, tmp_path / "edited.db",
                    "UPDATE events SET data = replace(data, '\"amount_credits\":100', "
                    f"'\"amount_credits\":100000') WHERE position = {position}",
                    "UPDATE accounts SET balance_credits = balance_credits + 99900 "
                    "WHERE user_id = 1")  # and the projection made to agree with the lie
    result = run_audit(copy)
    assert result.returncode == 1
    assert f"hash chain:            BROKEN at position {position} " in result.stdout
    assert "AUDIT FAILED" in result.stdout


def test_a_deleted_event_is_found_at_its_position(
        ledger_file: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    path, where = ledger_file
    position = where["bob_deposit"]
    copy = tampered(path, tmp_path / "deleted.db",
                    f"DELETE FROM events WHERE position = {position}")
    result = run_audit(copy)
    assert result.returncode == 1
    assert f"BROKEN at position {position} (position {position} is missing)" in result.stdout


def test_a_deleted_last_event_is_caught_by_the_projections(
        ledger_file: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    path, where = ledger_file
    copy = tampered(path, tmp_path / "truncated.db",
                    f"DELETE FROM events WHERE position = {where['last']}")
    result = run_audit(copy)
    assert result.returncode == 1
    assert "hash chain:            intact" in result.stdout  # a shorter chain is still a chain
    assert f"accounts that differ:  {where['bob']}" in result.stdout


def test_two_swapped_events_are_found_at_the_first(
        ledger_file: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    path, where = ledger_file
    first, second = where["alice_deposit"], where["bob_deposit"]
    copy = tampered(path, tmp_path / "swapped.db",
                    f"UPDATE events SET position = 1000000 WHERE position = {first}",
                    f"UPDATE events SET position = {first} WHERE position = {second}",
                    f"UPDATE events SET position = {second} WHERE position = 1000000")
    result = run_audit(copy)
    assert result.returncode == 1
    assert f"BROKEN at position {first} " in result.stdout


def test_an_edited_balance_is_found_by_account(
        ledger_file: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    path, where = ledger_file
    copy = tampered(path, tmp_path / "balance.db",
                    f"UPDATE accounts SET balance_credits = 1000 WHERE user_id = {where['bob']}")
    result = run_audit(copy)
    assert result.returncode == 1
    assert "hash chain:            intact" in result.stdout
    lines = result.stdout.splitlines()
    assert f"projection accounts    DIFFERS from the replay at user_id {where['bob']}" in lines
    assert f"accounts that differ:  {where['bob']}" in lines
    assert "AUDIT FAILED" in result.stdout


def test_a_deleted_projection_row_is_found(
        ledger_file: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    path, where = ledger_file
    copy = tampered(path, tmp_path / "history.db",
                    f"DELETE FROM transactions WHERE user_id = {where['bob']} AND kind = 'charge'")
    result = run_audit(copy)
    assert result.returncode == 1
    assert "projection transactions DIFFERS from the replay at id" in result.stdout
    assert f"accounts that differ:  {where['bob']}" in result.stdout.splitlines()


def test_an_unbalanced_posting_is_found(
        ledger_file: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    path, _ = ledger_file
    copy = tampered(path, tmp_path / "postings.db",
                    "UPDATE postings SET amount_credits = amount_credits + 1 "
                    "WHERE account = 'system:ml_revenue'")
    result = run_audit(copy)
    assert result.returncode == 1
    assert "UNBALANCED" in result.stdout


def test_a_file_that_is_not_a_database_fails_plainly(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a ledger\n" * 200)
    result = run_audit(junk)
    assert result.returncode != 0
    assert "not a database" in result.stdout + result.stderr
    assert "intact" not in result.stdout and "equal to the replay" not in result.stdout
    assert "AUDIT FAILED" in result.stdout + result.stderr


def test_a_missing_file_fails_plainly(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    result = run_audit(missing)
    assert result.returncode == 2
    assert f"AUDIT FAILED: cannot read {missing}" in result.stderr
    assert not missing.exists()  # the audit never creates the file it was asked to check


def rechain(path: Path, from_position: int) -> None:
    """What a careful attacker does after an edit: recompute every hash from there on, so the
    chain is self-consistent again."""
    from events.hashing import GENESIS_HASH, chain_hash

    with closing(sqlite3.connect(path)) as db:
        previous = GENESIS_HASH if from_position == 1 else db.execute(
            "SELECT hash FROM events WHERE position = ?", (from_position - 1,)).fetchone()[0]
        rows = db.execute(
            "SELECT position, stream_id, version, type_name, schema_version, data, metadata, "
            "recorded_at FROM events WHERE position >= ? ORDER BY position",
            (from_position,)).fetchall()
        for position, stream, version, type_name, schema, data, metadata, at in rows:
            previous = chain_hash(previous, position=position, stream_id=stream, version=version,
                                  type_name=type_name, schema_version=schema, data_json=data,
                                  metadata_json=metadata, recorded_at=at)
            db.execute("UPDATE events SET hash = ? WHERE position = ?", (previous, position))
        db.commit()


def test_an_anchor_catches_a_rewritten_chain(
    ledger_file: tuple[Path, dict[str, int]], tmp_path: Path
) -> None:
    path, where = ledger_file
    honest = run_audit(path)
    head = next(line.split("--anchor ")[1].split(" ")[0]
                for line in honest.stdout.splitlines() if "--anchor" in line)
    assert head.startswith(f"{where['last']}:")
    copy = tampered(path, tmp_path / "rewritten.db",
                    f"UPDATE events SET data = replace(data, '\"amount_credits\":50', "
                    f"'\"amount_credits\":5') WHERE position = {where['bob_deposit']}")
    rechain(copy, where["bob_deposit"])
    # The chain alone no longer tells: it was recomputed end to end.
    plain = run_audit(copy)
    assert "hash chain:            intact" in plain.stdout
    anchored = run_audit_with_anchor(copy, head)
    assert anchored.returncode == 1
    assert f"BROKEN at position {where['last']}" in anchored.stdout
    assert "rewritten" in anchored.stdout
    assert run_audit_with_anchor(path, head).returncode == 0


def run_audit_with_anchor(path: Path, anchor: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ledger", "audit", "--db", str(path), "--anchor", anchor],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120, check=False)


async def test_an_audit_of_a_file_being_written_passes(services: Services, db_path: Path) -> None:
    """The audit (a process of its own, as an auditor runs it) reads one snapshot: writes
    landing meanwhile never make it disagree."""
    user = int((await services.users.register("writer", "correct horse")).id)
    await services.ledger.top_up(user, 1)
    auditor = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ledger", "audit", "--db", str(db_path), cwd=PROJECT_ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    written = 0
    while auditor.returncode is None and written < 20_000:  # write until the audit is done
        await services.ledger.top_up(user, 1)
        written += 1
    out, err = await asyncio.wait_for(auditor.communicate(), 120)
    assert written > 0, "nothing was written while the audit ran"
    assert auditor.returncode == 0, out.decode() + err.decode()
    assert "AUDIT PASSED" in out.decode()
