"""Signed checkpoints and statements over HTTP: the public key and the latest checkpoint are
public, a statement needs a login, covers the account up to the moment it was asked for, and
verifies offline with the key the service published."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from cabinet_http import api_signup, expect_problem, page_signup

from ledger.checkpoints import Checkpoint, load_public_key
from ledger.consistency import check_consistency
from ledger.statement_proof import verify_statement
from web.config import Config

Client = TestClient[Any, Any]
PROJECT_ROOT = Path(__file__).resolve().parents[2]


async def test_the_key_and_the_checkpoints_are_public_and_a_statement_proves_the_account(
        client: Client, config: Config) -> None:
    empty = await client.get("/api/v1/ledger/checkpoints/latest")
    await expect_problem(empty, 404, "no_checkpoint")
    alice = await api_signup(client, "alice", top_up=120)
    await api_signup(client, "bob", top_up=30)
    published = await (await client.get("/api/v1/ledger/public-key")).json()
    assert published["algorithm"] == "Ed25519"
    assert [k["key_id"] for k in published["keys"]] == [published["key_id"]]
    assert config.signing_key_path.stat().st_mode & 0o777 == 0o600

    # No checkpoint covers Alice's events yet: the statement seals one first.
    response = await client.get("/api/v1/statement/proof", headers=alice.auth)
    assert response.status == 200
    assert "attachment" in response.headers["Content-Disposition"]
    statement = await response.json()
    summary = verify_statement(statement, published["public_key_pem"])
    assert (summary.user_id, summary.balance_credits) == (alice.id, 120)

    latest = await (await client.get("/api/v1/ledger/checkpoints/latest")).json()
    assert latest == statement["checkpoint"]
    assert Checkpoint.from_json(latest).verifies_with(
        load_public_key(published["public_key_pem"]))


async def test_a_statement_needs_a_login(client: Client) -> None:
    await expect_problem(await client.get("/api/v1/statement/proof"), 401, "unauthorized")


async def test_the_cabinet_downloads_the_same_statement(client: Client) -> None:
    await page_signup(client, "carol")
    page = await client.get("/cabinet")
    assert 'href="/cabinet/statement"' in await page.text()
    download = await client.get("/cabinet/statement")
    assert download.status == 200
    statement = await download.json()
    key = (await (await client.get("/api/v1/ledger/public-key")).json())["public_key_pem"]
    assert verify_statement(statement, key).events == 1  # the account's opening


async def test_a_kept_checkpoint_is_extended_by_the_latest_one(
        client: Client, tmp_path: Path) -> None:
    alice = await api_signup(client, "alice", top_up=5)
    kept = await (await client.get("/api/v1/statement/proof", headers=alice.auth)).json()
    bob = await api_signup(client, "bob", top_up=9)
    await client.get("/api/v1/statement/proof", headers=bob.auth)  # seals his events too
    first = kept["checkpoint"]["position"]
    reply = await client.get(f"/api/v1/ledger/checkpoints/consistency?from={first}",
                             headers=alice.auth)
    assert reply.status == 200
    document = await reply.json()
    assert document["to"]["position"] > first
    key = (await (await client.get("/api/v1/ledger/public-key")).json())["public_key_pem"]
    assert check_consistency(document, [key], Checkpoint.from_json(kept["checkpoint"])) is None
    paths = {name: tmp_path / f"{name}.json" for name in ("proof", "kept", "forged")}
    paths["proof"].write_text(json.dumps(document))
    paths["kept"].write_text(json.dumps(kept))
    (tmp_path / "key.pem").write_text(key)
    assert run_ledger("verify-consistency", str(paths["proof"]), "--public-key",
                      str(tmp_path / "key.pem"), "--held", str(paths["kept"])).returncode == 0
    # A proof that was edited, or one from another 'from', does not hold.
    document["proof"][0] = "00" * 32
    paths["forged"].write_text(json.dumps(document))
    forged = run_ledger("verify-consistency", str(paths["forged"]), "--public-key",
                        str(tmp_path / "key.pem"))
    assert forged.returncode == 1 and "history was rewritten" in forged.stderr
    await expect_problem(await client.get("/api/v1/ledger/checkpoints/consistency?from=999",
                                          headers=alice.auth), 404, "no_checkpoint")
    await expect_problem(await client.get("/api/v1/ledger/checkpoints/consistency?from=x",
                                          headers=alice.auth), 422, "validation_error")


def run_ledger(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ledger", *args], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
