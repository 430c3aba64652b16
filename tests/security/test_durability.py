"""Acknowledged means committed: the writer runs in WAL mode with synchronous=FULL, and by the
time a reply arrives its events can be read from the file by any other connection."""

from __future__ import annotations

from pathlib import Path

import pytest
from security_http import Client, new_account, scalar

from web.config import Config
from web.keys import PUBLIC_IDS, STORE
from web.public_ids import TRANSACTION


def test_full_synchronous_commits_are_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ML_CABINET_SYNCHRONOUS", raising=False)
    assert Config().synchronous == "FULL"
    assert Config.from_env().synchronous == "FULL"


async def test_the_writer_commits_in_wal_mode_with_synchronous_full(client: Client) -> None:
    assert client.app is not None
    writer = client.app[STORE]._writer  # the one connection every write goes through
    assert writer is not None

    assert await writer.fetchone("PRAGMA synchronous") == {"synchronous": 2}  # 2 = FULL
    assert await writer.fetchone("PRAGMA journal_mode") == {"journal_mode": "wal"}


async def test_a_top_up_is_in_the_file_when_its_reply_arrives(
        client: Client, db_path: Path) -> None:
    alice = await new_account(client, "alice")

    response = await client.post("/api/v1/balance/top-up", json={"amount": 250},
                                 headers={**alice.auth, "Idempotency-Key": "t-1"})

    assert response.status == 201
    shown = (await response.json())["transaction"]["id"]  # the event's position, opaque
    position = client.app[PUBLIC_IDS].parse(TRANSACTION, shown)
    assert scalar(db_path, "SELECT type_name FROM events WHERE position = ?",
                  (position,)) == "CreditsDeposited"
    assert scalar(db_path, "SELECT status FROM operations WHERE operation_id = 'api:t-1'"
                  ) == "done"
