"""`python -m ledger admin grant|revoke USERNAME`, run as an operator would, on both stores:
the role is an event the audit replays, and nothing else can grant it."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ledger.admin import AdminService
from ledger.audit import audit

if TYPE_CHECKING:
    from conftest import Services

pytestmark = pytest.mark.parametrize("ledger_at", ["sqlite", "postgres"], indirect=True)
ROOT = Path(__file__).resolve().parents[2]


async def cli(ledger_at: str | Path, *args: str) -> tuple[int, str]:
    where = (["--database-url", ledger_at] if isinstance(ledger_at, str)
             else ["--db", str(ledger_at)])
    env = {k: v for k, v in os.environ.items() if k != "ML_CABINET_DATABASE_URL"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ledger", "admin", *args, *where, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode()


async def test_grant_and_revoke_from_the_command_line(
        services: Services, ledger_at: str | Path) -> None:
    user_id = (await services.users.register("olga", "correct horse")).id
    admin = AdminService(services.ledger)
    assert await cli(ledger_at, "grant", "olga") == (0, "olga is now an operator\n")
    assert await admin.flags(user_id) == (True, False)  # the running service sees it
    assert await cli(ledger_at, "grant", "olga") == (0, "olga was already an operator\n")
    assert await cli(ledger_at, "revoke", "olga") == (0, "olga is no longer an operator\n")
    code, out = await cli(ledger_at, "revoke", "olga")
    assert code == 1 and "not an operator" in out
    code, out = await cli(ledger_at, "grant", "nobody")
    assert code == 1 and "no account named 'nobody'" in out
    assert [a.kind for a in (await admin.actions()).data] == ["revoke", "grant"]
    report = await audit(ledger_at, show_progress=False)
    assert report.ok, report.render()


async def test_a_missing_file_is_not_created(tmp_path: Path, ledger_at: str | Path) -> None:
    missing = tmp_path / "no" / "such.db"
    code, out = await cli(missing, "grant", "olga")
    assert code == 2 and "no database" in out and not missing.exists()
