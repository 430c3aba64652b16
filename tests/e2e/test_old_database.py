"""A database written by the previous release (tests/data/v1_ledger.db, see
make_v1_ledger.py) opens with this code: its v1 events are read through upcasters, its
projections are rebuilt in their new shape, it serves its history and balances, takes a new
prediction of a file model, and `python -m ledger audit` passes on it before and after."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

from cabinet_http import PASSWORD

from web.app import create_app
from web.config import Config
from web.keys import PUBLIC_IDS

REPO = Path(__file__).resolve().parents[2]
V1_LEDGER = REPO / "tests" / "data" / "v1_ledger.db"
IRIS = 4


def audit(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ledger", "audit", "--db", str(path)],
                          cwd=REPO, capture_output=True, text=True, timeout=60, check=False)


def columns(path: Path, table: str) -> list[str]:
    with closing(sqlite3.connect(path)) as db:
        return [row[1] for row in db.execute(f"PRAGMA table_info({table})")]


async def test_a_v1_database_opens_serves_its_history_takes_a_prediction_and_audits(
        aiohttp_client: Any, tmp_path: Path) -> None:
    copy = tmp_path / "v1.db"
    shutil.copyfile(V1_LEDGER, copy)
    assert "model_version" not in columns(copy, "tasks")
    before = audit(copy)  # the old shape is compared with the replay column for column
    assert before.returncode == 0, before.stdout + before.stderr

    client = await aiohttp_client(create_app(Config(db_path=copy,
                                                    cheap_password_hashing=True)))
    login = await client.post("/api/v1/auth/login",
                              json={"username": "ada", "password": PASSWORD})
    assert login.status == 200, await login.text()
    auth = {"Authorization": f"Bearer {(await login.json())['access_token']}"}

    # 100 topped up, 2 + 6 charged; the hold of the task the old writer left running is
    # released at start-up (its owner is gone), uncharged.
    assert await (await client.get("/api/v1/balance", headers=auth)).json() == {
        "balance": 92, "held": 0, "available": 92}
    tasks = (await (await client.get("/api/v1/tasks", headers=auth)).json())["data"]
    ids = client.server.app[PUBLIC_IDS]  # tasks of old databases get opaque ids too
    assert [(t["id"], t["status"], t["model_version"]) for t in tasks] == [
        (ids.task(4), "failed", None), (ids.task(2), "completed", None),
        (ids.task(1), "completed", None)]
    old_link = await client.get("/api/v1/tasks/2", headers=auth)  # a number shown before
    assert (await old_link.json())["id"] == ids.task(2)
    assert tasks[2]["input_data"] == [1.5, 2.0] and tasks[2]["output_data"] == [3.0, 4.0]
    moves = (await (await client.get("/api/v1/transactions", headers=auth)).json())["data"]
    assert [m["amount"] for m in moves] == [-6, -2, 100]

    models = {m["id"]: m for m in (await (await client.get("/api/v1/models")).json())["data"]}
    response = await client.post("/api/v1/predict", headers=auth, json={
        "model_id": IRIS, "data": [[5.1, 3.5, 1.4, 0.2], [1, 2, 3]]})
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["predictions"][0]["output"]["label"] == "setosa"
    assert body["task"]["model_version"] == models[IRIS]["version"]
    assert body["balance"]["balance"] == 91
    await client.close()

    assert "model_version" in columns(copy, "tasks")
    after = audit(copy)
    assert after.returncode == 0, after.stdout + after.stderr
    assert "AUDIT PASSED" in after.stdout
