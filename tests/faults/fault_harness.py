"""Real ML Cabinet processes for the fault tests: start, wait until healthy, kill, audit.

Every server is `python main.py` on 127.0.0.1 with its log in a file under tmp_path; `Servers`
kills whatever is still running when the test ends, however it ends. A server's ledger is a
SQLite file (a Path) or a PostgreSQL database (a `postgresql://` URL, passed as
ML_CABINET_DATABASE_URL): many processes can share either.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "fault-tolerant-password"
PROBLEM_JSON = "application/problem+json"
# Startup takes ~0.4 s here; a loaded CI machine gets 30 s before a server counts as hung.
HEALTH_ATTEMPTS, HEALTH_INTERVAL_S = 600, 0.05
EXIT_TIMEOUT_S = 30.0
HOLD_POLLS, HOLD_POLL_INTERVAL_S = 2000, 0.001
CLIENT_TIMEOUT = aiohttp.ClientTimeout(total=60)


class ServerFailed(AssertionError):
    """The server exited, never became healthy, or never exited when it should have."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_env() -> dict[str, str]:
    """The test runner's environment without ML_CABINET_* settings, plus cheap hashing."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ML_CABINET_")}
    env["ML_CABINET_CHEAP_HASHING"] = "1"
    return env


Where = Path | str  # a SQLite file, or the URL of a PostgreSQL database


def is_url(where: Where) -> bool:
    return isinstance(where, str) and where.startswith(("postgresql://", "postgres://"))


def tail(path: Path, lines: int = 25) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def query(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    """Read the file as an auditor would: a separate, read-only connection."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute(sql, params).fetchall()


async def wait_for_open_hold(db: Path) -> bool:
    """Poll the file, as a reader, until some task holds credits; False if the polls run out."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        for _ in range(HOLD_POLLS):
            if conn.execute("SELECT 1 FROM holds WHERE status = 'open' LIMIT 1").fetchone():
                return True
            await asyncio.sleep(HOLD_POLL_INTERVAL_S)  # a poll interval, bounded by the polls
    return False


async def pg_query(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    """Read a PostgreSQL ledger as an auditor would: a connection of its own."""
    conn = await asyncpg.connect(url, timeout=10)
    try:
        rows: list[asyncpg.Record] = await conn.fetch(sql, *args, timeout=30)
        return rows
    finally:
        await conn.close()


@dataclass
class Server:
    process: asyncio.subprocess.Process
    port: int
    db: Where
    log: Path
    owner: str = ""  # its lease's owner, where a test has looked it up

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def log_tail(self) -> str:
        return tail(self.log)


def _open_log(path: Path) -> Any:
    return path.open("wb")


@dataclass
class Servers:
    """Starts server processes on 127.0.0.1 and kills every one still running at `close`."""

    folder: Path
    running: list[Server] = field(default_factory=list)
    started: int = 0

    env: dict[str, str] = field(default_factory=dict)  # more settings for every server

    async def spawn(self, db: Where, preexec_fn: Callable[[], None] | None = None) -> Server:
        self.started += 1
        log = self.folder / f"server-{self.started}.log"
        port = free_port()
        env = {**server_env(), **self.env}
        where = ["--db", str(db)]
        if is_url(db):
            env["ML_CABINET_DATABASE_URL"] = str(db)
            # One signing key for every process of the ledger, and none left in the repo.
            env.setdefault("ML_CABINET_SIGNING_KEY_FILE", str(self.folder / "signing-key"))
            where = []
        with _open_log(log) as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "main.py", "--host", "127.0.0.1", "--port", str(port),
                *where, cwd=REPO, env=env, stdin=asyncio.subprocess.DEVNULL,
                stdout=out, stderr=asyncio.subprocess.STDOUT, preexec_fn=preexec_fn)
        server = Server(process=process, port=port, db=db, log=log)
        self.running.append(server)
        return server

    async def start(self, db: Where, preexec_fn: Callable[[], None] | None = None) -> Server:
        """A server that answers /healthz; a port taken meanwhile by another process is
        retried on a new port, a bounded number of times."""
        for _ in range(3):
            server = await self.spawn(db, preexec_fn)
            try:
                await wait_healthy(server)
                return server
            except ServerFailed:
                if "address already in use" not in server.log_text():
                    raise
        raise ServerFailed("no free port after 3 attempts")

    async def kill(self, server: Server) -> None:
        """SIGKILL: no cleanup code of the server runs, as in a crash or an OOM kill."""
        if server.process.returncode is None:
            server.process.kill()
        await server.process.wait()
        if server in self.running:
            self.running.remove(server)

    async def stop(self, server: Server) -> int:
        """SIGTERM, the graceful way; a server that does not exit in time is a failure."""
        if server.process.returncode is None:
            server.process.send_signal(signal.SIGTERM)
        return await self.exit_code(server)

    async def exit_code(self, server: Server) -> int:
        try:
            async with asyncio.timeout(EXIT_TIMEOUT_S):
                code = await server.process.wait()
        except TimeoutError:
            await self.kill(server)
            raise ServerFailed(f"the server did not exit within {EXIT_TIMEOUT_S} s:\n"
                               f"{server.log_tail()}") from None
        if server in self.running:
            self.running.remove(server)
        return code

    async def close(self) -> None:
        for server in list(self.running):
            await self.kill(server)


async def wait_healthy(server: Server) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        for _ in range(HEALTH_ATTEMPTS):
            if server.process.returncode is not None:
                raise ServerFailed(f"the server exited with {server.process.returncode}:\n"
                                   f"{server.log_tail()}")
            try:
                async with session.get(f"{server.url}/healthz") as response:
                    if response.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(HEALTH_INTERVAL_S)  # a poll interval, bounded by the attempts
    raise ServerFailed(f"no healthy answer from {server.url}:\n{server.log_tail()}")


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: dict[str, Any]
    retry_after: str | None = None

    @property
    def code(self) -> str | None:
        return self.body.get("code")


class Api:
    """The REST API of one server, as a client program would use it."""

    def __init__(self, session: aiohttp.ClientSession, server: Server) -> None:
        self.session = session
        self.base = f"{server.url}/api/v1"

    async def call(self, method: str, path: str, *, json: dict[str, Any] | None = None,
                   token: str | None = None, key: str | None = None) -> Reply:
        headers = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if key is not None:
            headers["Idempotency-Key"] = key
        async with self.session.request(method, f"{self.base}{path}", json=json,
                                        headers=headers) as response:
            return Reply(response.status, response.content_type,
                         await response.json(content_type=None),
                         response.headers.get("Retry-After"))

    async def signup(self, username: str) -> str:
        """Register and log in; the token lives in the database, so it outlives restarts."""
        registered = await self.call("POST", "/auth/register",
                                     json={"username": username, "password": PASSWORD})
        assert registered.status == 201, registered
        login = await self.call("POST", "/auth/login",
                                json={"username": username, "password": PASSWORD})
        assert login.status == 200, login
        return str(login.body["access_token"])

    async def balance(self, token: str) -> dict[str, int]:
        reply = await self.call("GET", "/balance", token=token)
        assert reply.status == 200, reply
        return reply.body

    async def top_up(self, token: str, amount: int, key: str | None = None) -> Reply:
        return await self.call("POST", "/balance/top-up", json={"amount": amount}, token=token,
                               key=key)

    async def predict(self, token: str, data: list[float], key: str | None = None,
                      model_id: int = 1) -> Reply:
        return await self.call("POST", "/predict", json={"model_id": model_id, "data": data},
                               token=token, key=key)


async def run_audit(db: Where, jobs: int | None = None) -> tuple[int, str]:
    """`python -m ledger audit --db PATH` (or `--database-url URL`), as an auditor runs it:
    exit code and report."""
    where = ["--database-url", str(db)] if is_url(db) else ["--db", str(db)]
    split = ["--jobs", str(jobs)] if jobs else []
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ledger", "audit", *where, "--quiet", *split, cwd=REPO,
        env=server_env(), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    try:
        async with asyncio.timeout(EXIT_TIMEOUT_S):
            output, _ = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.communicate()
        raise AssertionError(
            f"the audit of {db} did not finish within {EXIT_TIMEOUT_S} s") from None
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")
