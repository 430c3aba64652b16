"""The process as an operator meets it: `main.py` flags and environment, one log line per
request, `init_db.py`, Secure cookies behind https, and the audit's progress bar."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import aiohttp
import pytest

from ledger.audit import progress_bar
from web.app import create_app
from web.config import Config

REPO = Path(__file__).resolve().parents[2]
HEALTH_ATTEMPTS = 600  # × 50 ms: a loaded CI machine gets 30 s before the server counts as hung


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def tables(db: Path) -> set[str]:
    with closing(sqlite3.connect(db)) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


async def test_main_takes_its_port_from_the_environment_and_logs_each_request(
    tmp_path: Path,
) -> None:
    db, port = tmp_path / "fresh.db", free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ML_CABINET_")}
    env |= {"ML_CABINET_PORT": str(port), "ML_CABINET_CHEAP_HASHING": "1"}
    log = tmp_path / "server.log"
    with log.open("w") as out:
        server = await asyncio.create_subprocess_exec(
            sys.executable, "main.py", "--db", str(db), cwd=REPO, env=env, stdout=out,
            stderr=subprocess.STDOUT)
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(HEALTH_ATTEMPTS):
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz",
                                        headers={"X-Request-Id": "trace-me-42"}) as reply:
                        assert reply.status == 200
                        assert reply.headers["X-Request-Id"] == "trace-me-42"
                        break
                except aiohttp.ClientConnectionError:
                    assert server.returncode is None, log.read_text()
                    await asyncio.sleep(0.05)  # a poll interval, bounded by the attempts
            else:
                pytest.fail(f"the server never answered:\n{log.read_text()}")
    finally:
        server.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(server.wait(), 30)
    text = log.read_text()
    assert code == 0, text
    assert f"ML Cabinet on http://127.0.0.1:{port}" in text
    assert '"GET /healthz" 200' in text and "id=trace-me-42" in text
    assert {"events", "accounts", "tasks", "credentials"} <= tables(db)  # made on first start


def run_init_db(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "init_db.py", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=False)


async def test_init_db_creates_the_schema_once_and_rebuilds_the_projections(
    tmp_path: Path, aiohttp_client: object
) -> None:
    db = tmp_path / "explicit.db"
    first, again = run_init_db("--db", str(db)), run_init_db("--db", str(db))
    assert first.returncode == again.returncode == 0, first.stderr + again.stderr
    assert "schema ready" in again.stdout
    assert {"events", "accounts", "holds", "transactions", "postings", "tasks",
            "operations", "tokens"} <= tables(db)

    client = await aiohttp_client(create_app(Config(db_path=db, cheap_password_hashing=True)))
    await client.post("/api/v1/auth/register", json={"username": "ada", "password": "x" * 12})
    await client.close()
    with closing(sqlite3.connect(db)) as conn:
        before = conn.execute("SELECT * FROM accounts").fetchall()
    rebuilt = run_init_db("--db", str(db), "--rebuild-projections")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "rebuilt the projections from 1 events" in rebuilt.stdout
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT * FROM accounts").fetchall() == before


async def test_behind_https_the_session_cookie_is_secure(
    tmp_path: Path, aiohttp_client: object
) -> None:
    config = Config(db_path=tmp_path / "c.db", cheap_password_hashing=True, secure_cookies=True)
    client = await aiohttp_client(create_app(config))
    reply = await client.get("/login")
    cookie = reply.headers["Set-Cookie"]
    assert "mlc_session=" in cookie and "Secure" in cookie and "HttpOnly" in cookie


def test_a_large_audit_draws_a_progress_bar_and_a_small_one_does_not() -> None:
    out = io.StringIO()
    draw = progress_bar(50_000, stream=out)
    for done in range(1, 50_001):
        draw(done)
    assert out.getvalue().endswith("50,000/50,000 events\n")
    assert "[" + "#" * 30 + "]" in out.getvalue()
    quiet = io.StringIO()
    small = progress_bar(100, stream=quiet)
    for done in range(1, 101):
        small(done)
    assert quiet.getvalue() == ""
