"""`main.py --workers 2`: one port served by two processes on one SQLite file. Concurrent
charges from many clients land on both, no credit is spent twice, the audit passes, and a
stop (SIGTERM to the supervisor, or the supervisor killed outright) stops both cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from fault_harness import REPO, Api, Server, free_port, query, run_audit, server_env

from web.throttle import PAIR

USERS = 8
COVERED = 5        # predictions each user can pay for…
ATTEMPTS = 12      # …and sends at once
ITEMS = [1.0, 2.0, 3.0]
COST = 3           # model 1 costs 1 credit an item
SPREAD = 16        # covered predictions on connections of their own
START_TIMEOUT_S = EXIT_TIMEOUT_S = 60.0
SERVING = re.compile(r"serving from (\d+) workers \(pids ([\d, ]+)\)")


@dataclass
class Supervisor:
    process: asyncio.subprocess.Process
    port: int
    lines: list[str] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    async def read_until_serving(self) -> None:
        """Lines of the shared log until the supervisor says every worker serves."""
        assert self.process.stdout is not None
        async with asyncio.timeout(START_TIMEOUT_S):
            while line := (await self.process.stdout.readline()).decode(errors="replace"):
                self.lines.append(line.rstrip())
                if found := SERVING.search(line):
                    self.pids = [int(p) for p in found.group(2).split(",")]
                    self.reader = asyncio.create_task(self.drain())
                    return
        raise AssertionError(f"the supervisor exited with {await self.process.wait()}:\n"
                             f"{self.log}")

    async def drain(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            self.lines.append(line.decode(errors="replace").rstrip())

    async def exit_code(self) -> int:
        async with asyncio.timeout(EXIT_TIMEOUT_S):
            code = await self.process.wait()
            if self.reader is not None:
                await self.reader  # the workers' last lines
        return code


@contextlib.asynccontextmanager
async def supervisor(*args: str) -> AsyncIterator[Supervisor]:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "main.py", "--host", "127.0.0.1", "--port", str(port), *args,
        cwd=REPO, env=server_env(), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    started = Supervisor(process, port)
    try:
        yield started
    finally:
        if process.returncode is None:
            process.kill()  # the workers follow: their link to it reads end-of-file
            await process.wait()
        if started.reader is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(EXIT_TIMEOUT_S):
                    await started.reader


async def exited(pid: int) -> None:
    """Until the process (not our child: a worker of the supervisor) has exited. A pidfd
    becomes readable then; no polling."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    loop = asyncio.get_running_loop()
    gone = loop.create_future()
    loop.add_reader(fd, gone.set_result, None)
    try:
        async with asyncio.timeout(EXIT_TIMEOUT_S):
            await gone
    finally:
        loop.remove_reader(fd)
        os.close(fd)


@pytest.mark.slow
async def test_two_workers_share_the_port_and_the_file_and_stop_on_sigterm(
        tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    async with supervisor("--db", str(db), "--workers", "2") as sup, aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=60)) as http:
        await sup.read_until_serving()
        assert len(sup.pids) == 2 and sup.process.pid not in sup.pids, sup.log
        server = Server(sup.process, sup.port, db, tmp_path / "unused.log")
        api = Api(http, server)
        tokens = [await api.signup(f"client{k}") for k in range(USERS)]
        for token in tokens:
            assert (await api.top_up(token, COVERED * COST)).status == 201

        # Every attempt at once, each on a connection of its own: the kernel spreads them.
        replies = await asyncio.gather(*(api.predict(token, ITEMS, key=f"{k}-{n}")
                                         for k, token in enumerate(tokens)
                                         for n in range(ATTEMPTS)))
        by_user = [Counter(r.status for r in replies[k * ATTEMPTS:(k + 1) * ATTEMPTS])
                   for k in range(USERS)]
        assert by_user == [Counter({200: COVERED, 402: ATTEMPTS - COVERED})] * USERS, by_user
        for token in tokens:
            assert await api.balance(token) == {"balance": 0, "held": 0, "available": 0}

        # Covered predictions, each on a new connection: whichever worker the kernel gives
        # one to charges it (in the burst above a worker that came late could find every
        # balance spent and only refuse). 16 connections all on one worker: 1 in 32,768.
        assert (await api.top_up(tokens[0], SPREAD * COST)).status == 201
        async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(force_close=True)) as fresh:
            spread = Api(fresh, server)
            statuses = [(await spread.predict(tokens[0], ITEMS, key=f"spread-{n}")).status
                        for n in range(SPREAD)]
        assert statuses == [200] * SPREAD, statuses
        assert await api.balance(tokens[0]) == {"balance": 0, "held": 0, "available": 0}
        owners = query(db, "SELECT DISTINCT owner FROM holds")
        assert len(owners) == 2, "the charges did not land on both workers"

        # Password guesses, each on a new connection, land on either worker; each counts in
        # memory, so each allows its share: together no more than one process would, + 1.
        async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(force_close=True)) as fresh:
            guesser = Api(fresh, server)
            statuses = [(await guesser.call("POST", "/auth/login", json={
                "username": "client0", "password": "not the password"})).status
                for _ in range(4 * PAIR.failures)]
        assert set(statuses) == {401, 429} and statuses[-1] == 429, statuses
        assert statuses.count(401) <= PAIR.failures + 1, statuses

        sup.process.send_signal(signal.SIGTERM)
        assert await sup.exit_code() == 0, sup.log
        for pid in sup.pids:
            await exited(pid)
    assert sup.log.count("stopped cleanly") == 2 and "Traceback" not in sup.log, sup.log
    # Both writers queued for the file's write lock, and no transaction of either failed
    # (a writer SQLite's busy handler gave up on would log "write batch of N failed").
    assert sup.log.count("write lock: taken") == 2 and "write batch of" not in sup.log, sup.log
    assert query(db, "SELECT COUNT(*) FROM holds WHERE status = 'open'")[0][0] == 0
    code, report = await run_audit(db)
    assert code == 0, report


@pytest.mark.slow
async def test_workers_stop_cleanly_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    async with supervisor("--db", str(db), "--workers", "2") as sup:
        await sup.read_until_serving()
        sup.process.kill()  # no handler runs: only the workers' links tell them
        await sup.process.wait()
        for pid in sup.pids:
            await exited(pid)
        assert sup.reader is not None
        async with asyncio.timeout(EXIT_TIMEOUT_S):
            await sup.reader  # the pipe closes once both workers have gone
    assert sup.log.count("the supervisor is gone: stopping") == 2, sup.log
    assert sup.log.count("stopped cleanly") == 2, sup.log


async def test_a_worker_that_cannot_start_stops_the_supervisor_with_its_code(
        tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "broken.json").write_text("{not json")
    async with supervisor("--db", str(tmp_path / "l.db"), "--models", str(models),
                          "--workers", "2") as sup:
        assert await sup.exit_code() == 4  # as one process refuses a bad manifest
        assert sup.process.stdout is not None
        output = (await sup.process.stdout.read()).decode()
    assert "broken.json" in output and "serving from" not in output, output


@pytest.mark.parametrize(("args", "message"), [
    (["--workers", "0"], "--workers must be between 1 and 64"),
    (["--workers", "2", "--port", "0"], "--workers needs a fixed --port"),
])
def test_bad_worker_settings_are_refused_with_a_reason(
        args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    sys.path.insert(0, str(REPO))
    import main

    with pytest.raises(SystemExit) as stopped:
        main.main(["--db", "unused.db", *args])
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err
