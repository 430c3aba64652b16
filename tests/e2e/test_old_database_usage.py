"""A database written before the usage projection (tests/data/v1_ledger.db) builds it from the
log at open: usage equals its credit history's charges, and the audit agrees with a replay."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from cabinet_http import PASSWORD

from web.app import create_app
from web.config import Config

REPO = Path(__file__).resolve().parents[2]
V1_LEDGER = REPO / "tests" / "data" / "v1_ledger.db"


def run_audit(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ledger", "audit", "--db", str(path)],
                          cwd=REPO, capture_output=True, text=True, timeout=60, check=False)


async def test_an_old_database_rebuilds_usage_from_its_log_and_serves_it(
        aiohttp_client: Any, tmp_path: Path) -> None:
    copy = tmp_path / "v1.db"
    shutil.copyfile(V1_LEDGER, copy)
    client = await aiohttp_client(create_app(Config(db_path=copy,
                                                    cheap_password_hashing=True)))
    login = await client.post("/api/v1/auth/login",
                              json={"username": "ada", "password": PASSWORD})
    auth = {"Authorization": f"Bearer {(await login.json())['access_token']}"}
    moves = (await (await client.get("/api/v1/transactions", headers=auth)).json())["data"]
    charges = [m for m in moves if m["kind"] == "charge"]
    assert [m["amount"] for m in charges] == [-6, -2]
    days = sorted(datetime.fromisoformat(m["created_at"]).date() for m in moves)

    query = {"from": str(days[0]), "to": str(days[-1])}
    by_day = await (await client.get("/api/v1/usage", params=query, headers=auth)).json()
    assert by_day["total"] == {"predictions": 2, "items": 5, "credits": 8}
    by_model = await (await client.get("/api/v1/usage", params={**query, "group_by": "model"},
                                       headers=auth)).json()
    assert sum(row["credits"] for row in by_model["data"]) == 8
    await client.close()

    audit = run_audit(copy)
    assert audit.returncode == 0 and "AUDIT PASSED" in audit.stdout, audit.stdout + audit.stderr
