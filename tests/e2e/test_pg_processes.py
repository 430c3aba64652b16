"""Two `main.py` processes on one PostgreSQL database, as the README starts them: what one
process writes and issues, the other serves."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from test_process import HEALTH_ATTEMPTS, REPO, free_port

PASSWORD = "correct horse battery"


async def wait_healthy(http: aiohttp.ClientSession, port: int,
                       server: asyncio.subprocess.Process, log: Path) -> None:
    for _ in range(HEALTH_ATTEMPTS):
        try:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as reply:
                assert reply.status == 200
                return
        except aiohttp.ClientConnectionError:
            assert server.returncode is None, text_of(log)
            await asyncio.sleep(0.05)  # a poll interval, bounded by the attempts
    pytest.fail(f"the server never answered:\n{text_of(log)}")


def text_of(log: Path) -> str:
    return log.read_text()


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ML_CABINET_")}
    return env | {"ML_CABINET_CHEAP_HASHING": "1", **extra}


async def test_two_processes_on_one_database_serve_one_ledger(
        pg_url: str, tmp_path: Path) -> None:
    ports = [free_port(), free_port()]
    servers, logs = [], []
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    for n, port in enumerate(ports):
        logs.append(log := tmp_path / f"server{n}.log")
        with log.open("w") as out:
            servers.append(await asyncio.create_subprocess_exec(
                sys.executable, str(REPO / "main.py"), "--port", str(port), cwd=workdir,
                # The signing key is a file on PostgreSQL too, one path for both processes.
                env=clean_env(ML_CABINET_DATABASE_URL=pg_url,
                              ML_CABINET_SIGNING_KEY_FILE=str(tmp_path / "signing.pem")),
                stdout=out,
                stderr=subprocess.STDOUT))
    try:
        async with aiohttp.ClientSession() as http:
            for port, server, log in zip(ports, servers, logs, strict=True):
                await wait_healthy(http, port, server, log)
            one, two = (f"http://127.0.0.1:{port}/api/v1" for port in ports)
            account = {"username": "ada", "password": PASSWORD}
            async with http.post(f"{one}/auth/register", json=account) as reply:
                assert reply.status == 201
            async with http.post(f"{two}/auth/login", json=account) as reply:
                assert reply.status == 200, "the account made by one is known to the other"
                token = (await reply.json())["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            async with http.post(f"{one}/balance/top-up", json={"amount": 7},
                                 headers=auth) as reply:
                assert reply.status == 201, "a token issued by one opens the other"
            async with http.get(f"{two}/balance", headers=auth) as reply:
                assert (await reply.json())["balance"] == 7
            key_ids = []
            for base in (one, two):
                async with http.get(f"{base}/ledger/public-key") as reply:
                    key_ids.append((await reply.json())["key_id"])
            assert key_ids[0] == key_ids[1], "both processes sign with the one key file"
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
        codes = [await asyncio.wait_for(server.wait(), 30) for server in servers]
    assert codes == [0, 0], [log.read_text() for log in logs]
    assert "(database postgresql://" in logs[0].read_text()
    # Nothing of SQLite's beside the processes: no key file, no lock folder, no database.
    assert list(workdir.iterdir()) == []


def test_main_says_plainly_when_it_cannot_reach_the_database(tmp_path: Path) -> None:
    url = f"postgresql://app:s3cret@/nowhere?host={tmp_path}&port=5432"
    done = subprocess.run([sys.executable, "main.py", "--database-url", url, "--port",
                           str(free_port())], cwd=REPO, env=clean_env(), capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert "cannot open the database postgresql://app:***@" in done.stderr
    assert "s3cret" not in done.stderr + done.stdout
