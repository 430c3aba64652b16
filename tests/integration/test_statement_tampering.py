"""A statement file checked offline: it holds as issued, with no database anywhere, and every
kind of tampering with it is named by `python -m ledger verify-statement`."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from events import EventCodec
from ledger import statement_proof
from ledger.checkpoints import Checkpointer, Signer
from ledger.events import ALL_EVENTS, TaskCompletedAtOnce
from ledger.statement_proof import (
    StatementInvalid,
    StatementUnreadable,
    build_statement,
    verify_statement,
)

if TYPE_CHECKING:
    from conftest import Services

PROJECT_ROOT = Path(__file__).resolve().parents[2]
Statement = dict[str, Any]


@pytest.fixture
async def issued(services: Services, tmp_path: Path) -> tuple[Statement, Statement, Signer]:
    """Alice's and Bob's statements, signed by one key; the database is gone afterwards."""
    signer = Signer.from_file(tmp_path / "signing-key")
    checkpointer = Checkpointer(services.store, signer)
    alice = int((await services.users.register("alice", "correct horse")).id)
    bob = int((await services.users.register("bob", "correct horse")).id)
    await services.ledger.top_up(alice, 100)
    await services.ledger.top_up(bob, 50)
    await services.ml.process_task(alice, 1, [1, 2, "x"])
    await services.ledger.top_up(alice, 20)
    await services.ledger.withdraw(bob, 5, "Charge")
    statements = (await build_statement(services.store, checkpointer, alice),
                  await build_statement(services.store, checkpointer, bob))
    await services.store.close()
    remove_database(tmp_path)
    return statements[0], statements[1], signer


def remove_database(where: Path) -> None:
    for leftover in where.glob("ledger.db*"):
        leftover.unlink()


def run_verify(statement: Statement, key: str, where: Path) -> subprocess.CompletedProcess[str]:
    (where / "statement.json").write_text(json.dumps(statement))
    (where / "public.pem").write_text(key)
    return subprocess.run(
        [sys.executable, "-m", "ledger", "verify-statement", str(where / "statement.json"),
         "--public-key", str(where / "public.pem")],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60, check=False)


def test_an_issued_statement_verifies_with_no_database_present(
        issued: tuple[Statement, Statement, Signer], tmp_path: Path) -> None:
    alice, _, signer = issued
    assert not list(tmp_path.glob("ledger.db*"))
    result = run_verify(alice, signer.public_key_pem, tmp_path)
    assert result.returncode == 0, result.stderr
    events = len(alice["events"])
    assert f"statement OK: account {alice['user_id']}, {events} events" in result.stdout
    assert "balance 118 credits, 0 held" in result.stdout  # 100 + 20 - 2 for two rows


def deposit_of(statement: Statement) -> dict[str, Any]:
    return next(e for e in statement["events"] if e["row"]["type_name"] == "CreditsDeposited")


def change_amount(s: Statement, _: Statement) -> None:
    row = deposit_of(s)["row"]
    row["data_json"] = row["data_json"].replace('"amount_credits":100', '"amount_credits":900')
    s["balance"]["balance_credits"] += 800
    s["balance"]["available_credits"] += 800


def drop_event(s: Statement, _: Statement) -> None:
    s["events"].remove(deposit_of(s))
    s["balance"]["balance_credits"] -= 100
    s["balance"]["available_credits"] -= 100


def reorder_two(s: Statement, _: Statement) -> None:
    s["events"][1], s["events"][2] = s["events"][2], s["events"][1]


def swap_in_another_users_event(s: Statement, other: Statement) -> None:
    s["events"][1] = other["events"][1]  # Bob's deposit of 50 for Alice's of 100
    s["balance"]["balance_credits"] -= 50
    s["balance"]["available_credits"] -= 50


def claim_another_balance(s: Statement, _: Statement) -> None:
    s["balance"]["balance_credits"] += 1


def alter_the_checkpoint(s: Statement, _: Statement) -> None:
    s["checkpoint"]["position"] -= 1


def claim_fewer_events(s: Statement, _: Statement) -> None:
    s["account_head"]["count"] -= 1
    s["events"].pop()


@pytest.mark.parametrize(("tamper", "named"), [
    (change_amount, "its content does not match its hash"),
    (drop_event, "completeness"),
    (reorder_two, "completeness"),
    (swap_in_another_users_event, "belongs to another account"),
    (claim_another_balance, "balance: the events give"),
    (alter_the_checkpoint, "signature"),
    (claim_fewer_events, "completeness: the account head"),
])
def test_each_kind_of_tampering_fails_verification_and_is_named(
        issued: tuple[Statement, Statement, Signer], tmp_path: Path,
        tamper: Any, named: str) -> None:
    alice, bob, signer = issued
    forged = copy.deepcopy(alice)
    tamper(forged, bob)
    with pytest.raises(StatementInvalid, match=named):
        verify_statement(forged, signer.public_key_pem)
    result = run_verify(forged, signer.public_key_pem, tmp_path)
    assert result.returncode == 1
    assert "STATEMENT INVALID" in result.stderr and named.split(":")[0] in result.stderr


def test_a_statement_does_not_verify_with_another_key(
        issued: tuple[Statement, Statement, Signer], tmp_path: Path) -> None:
    alice, _, _ = issued
    other = Signer.from_file(tmp_path / "other-key")
    with pytest.raises(StatementInvalid, match="not signed by this public key"):
        verify_statement(alice, other.public_key_pem)


def test_a_file_that_is_not_a_statement_fails_plainly(
        issued: tuple[Statement, Statement, Signer], tmp_path: Path) -> None:
    _, _, signer = issued
    result = run_verify({"format": "ml-cabinet-statement/1"}, signer.public_key_pem, tmp_path)
    assert result.returncode == 1 and "not a well-formed statement" in result.stderr
    (tmp_path / "broken.json").write_text("{")
    broken = subprocess.run(
        [sys.executable, "-m", "ledger", "verify-statement", str(tmp_path / "broken.json"),
         "--public-key", str(tmp_path / "public.pem")],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert broken.returncode == 2 and "STATEMENT NOT CHECKED" in broken.stderr
    (tmp_path / "public.pem").write_text("not a key")
    no_key = run_verify(issued[0], "not a key", tmp_path)
    assert no_key.returncode == 2 and "STATEMENT NOT CHECKED" in no_key.stderr


def test_a_statement_with_an_event_type_unknown_here_is_not_checked_not_called_wrong(
        issued: tuple[Statement, Statement, Signer], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A verifier older than the service that issued the statement: Alice's prediction is
    one TaskCompletedAtOnce, which it cannot read. It says so, and does not crash or call a
    genuine statement invalid: the command says it did not check it (exit 2)."""
    alice, _, signer = issued
    assert "TaskCompletedAtOnce" in {e["row"]["type_name"] for e in alice["events"]}
    older = EventCodec()
    older.register(*(cls for cls in ALL_EVENTS if cls is not TaskCompletedAtOnce))
    monkeypatch.setattr(statement_proof, "ledger_codec", lambda: older)
    with pytest.raises(StatementUnreadable, match="TaskCompletedAtOnce"):
        verify_statement(alice, signer.public_key_pem)
    (tmp_path / "statement.json").write_text(json.dumps(alice))
    (tmp_path / "public.pem").write_text(signer.public_key_pem)
    code = statement_proof.verify_statement_file(str(tmp_path / "statement.json"),
                                                 str(tmp_path / "public.pem"))
    said = capsys.readouterr().err
    assert code == 2 and "STATEMENT NOT CHECKED" in said and "TaskCompletedAtOnce" in said
