"""`python main.py` as an operator runs it in production: JSON log lines that never carry a
secret, readiness, and a raw malformed request (an HTTP/2 preface on the HTTP/1.1 port)
answered with a dressed 400 and one warning line, no traceback."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from html import unescape
from pathlib import Path

import aiohttp
import pytest

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "Sekrit-Passw0rd-never-logged"
HEALTH_ATTEMPTS = 600  # × 50 ms
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Process:
    url: str
    port: int
    log: Path
    process: asyncio.subprocess.Process

    async def stop(self) -> str:
        self.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(self.process.wait(), 30) == 0, self.log.read_text()
        return self.log.read_text()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Process]:
    port, log = free_port(), tmp_path / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ML_CABINET_")}
    env |= {"ML_CABINET_CHEAP_HASHING": "1", "ML_CABINET_LOG_FORMAT": "json"}
    with log.open("w") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "main.py", "--port", str(port), "--db", str(tmp_path / "p.db"),
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    running = Process(f"http://127.0.0.1:{port}", port, log, process)
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(HEALTH_ATTEMPTS):
                try:
                    async with http.get(f"{running.url}/readyz") as reply:
                        assert reply.status == 200, await reply.text()
                        break
                except aiohttp.ClientConnectionError:
                    assert process.returncode is None, log.read_text()
                    await asyncio.sleep(0.05)  # a poll interval, bounded by the attempts
            else:
                pytest.fail(f"the server never answered:\n{log.read_text()}")
        yield running
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def secrets_used(base: str) -> list[str]:
    """Register, log in, top up, predict, make a key, and sign in on the pages; every secret
    the client saw or sent on the way."""
    api = f"{base}/api/v1"
    # unsafe: the jar keeps cookies of an IP address (127.0.0.1), as a browser does
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        await http.post(f"{api}/auth/register", json={"username": "ada", "password": PASSWORD})
        login = await http.post(f"{api}/auth/login",
                                json={"username": "ada", "password": PASSWORD})
        token = (await login.json())["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        await http.post(f"{api}/balance/top-up", json={"amount": 10}, headers=auth)
        key = (await (await http.post(f"{api}/keys", headers=auth,
                                      json={"name": "nightly", "scope": "predict"})).json())
        predicted = await http.post(f"{api}/predict", json={"model_id": 1, "data": [1]},
                                    headers={"Authorization": f"Bearer {key['key']}"})
        assert predicted.status == 200
        await http.post(f"{api}/auth/login", json={"username": "ada", "password": "wrong " +
                                                   PASSWORD})
        page = await (await http.get(f"{base}/login")).text()
        csrf = CSRF_RE.search(page)
        assert csrf is not None
        csrf_token = unescape(csrf.group(1))
        signed_in = await http.post(f"{base}/login", allow_redirects=False, data={
            "username": "ada", "password": PASSWORD, "csrf_token": csrf_token})
        assert signed_in.status == 303
        cookies = {c.key: c.value for c in http.cookie_jar}
        assert (await http.get(f"{base}/cabinet")).status == 200
    return [PASSWORD, token, key["key"], cookies["mlc_session"], csrf_token]


async def test_json_log_lines_carry_ids_and_never_a_secret(server: Process) -> None:
    used = await secrets_used(server.url)
    text = await server.stop()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    access = [line for line in lines if "route" in line]
    predict = next(line for line in access if line["route"] == "api_predict")
    assert predict["status"] == 200 and predict["user_id"] == 1
    assert re.fullmatch(r"[0-9a-f]{32}", predict["request_id"])
    assert predict["duration_ms"] >= 0 and predict["method"] == "POST"
    assert {"time", "level", "logger", "message"} <= predict.keys()
    assert any(line["route"] == "cabinet" and line["user_id"] == 1 for line in access)
    for secret in used:
        assert len(secret) >= 16
        assert secret not in text, "a secret reached the log"


async def test_a_malformed_request_is_one_warning_and_a_dressed_400(server: Process) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(HTTP2_PREFACE)
    await writer.drain()
    reply = (await asyncio.wait_for(reader.read(), 10)).decode(errors="replace")
    writer.close()
    head = reply.split("\r\n\r\n")[0].lower()
    assert re.match(r"http/1\.[01] 400 ", head), reply
    for header in ("content-security-policy:", "x-content-type-options: nosniff",
                   "x-frame-options: deny", "cross-origin-resource-policy: same-origin",
                   "permissions-policy:", "server: ml cabinet"):
        assert header in head, (header, head)
    text = await server.stop()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    warnings = [line for line in lines if line["level"] == "WARNING"]
    assert len(warnings) == 1 and "malformed request" in warnings[0]["message"], warnings
    assert "\n" not in warnings[0]["message"]
    assert not any(line["level"] in ("ERROR", "CRITICAL") or "exception" in line
                   for line in lines), lines


async def test_the_last_requests_lines_are_written_at_a_clean_stop(server: Process) -> None:
    # Access lines are written together once the loop gets to it (web/logs.py): a stop right
    # after a burst of replies still writes each of them, once, with every field.
    sent = [f"burst-{n}" for n in range(20)]
    async with aiohttp.ClientSession() as http:

        async def one(request_id: str) -> None:
            async with http.get(f"{server.url}/api/v1/models",
                                headers={"X-Request-Id": request_id}) as reply:
                assert reply.status == 200 and reply.headers["X-Request-Id"] == request_id

        await asyncio.gather(*(one(request_id) for request_id in sent))
    text = await server.stop()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    burst = [line for line in lines if line.get("request_id", "").startswith("burst-")]
    assert sorted(line["request_id"] for line in burst) == sorted(sent)
    for line in burst:
        assert (line["route"], line["method"], line["path"], line["status"]) == (
            "api_models", "GET", "/api/v1/models", 200)
        assert line["message"].endswith(f'"GET /api/v1/models" 200 '
                                        f'{line["duration_ms"]:.1f}ms id={line["request_id"]}')
    assert lines[-1]["message"] == "stopped cleanly"
