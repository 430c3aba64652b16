"""SIGTERM in the middle of a burst of predictions, as a deploy does it: the process exits 0,
no hold is left open, every prediction a client was told about is in the log with its charge,
the audit passes, and the next start has nothing to sweep. Several times over one file."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest
from fault_harness import Api, Reply, Servers, query, run_audit, wait_for_open_hold

USERS, REQUESTS_PER_USER, ROUNDS = 4, 12, 3
SWEPT = "holds of tasks interrupted by a crash"


async def burst(api: Api, tokens: list[str]) -> list[tuple[str, Reply | None]]:
    """Every prediction with its token; None for one that got no reply (the stop cut it)."""
    async def one(token: str) -> tuple[str, Reply | None]:
        try:
            return token, await api.predict(token, [1.0, 2.0, 3.0])
        except (aiohttp.ClientError, json.JSONDecodeError):
            return token, None

    return await asyncio.gather(*[one(token) for token in tokens
                                  for _ in range(REQUESTS_PER_USER)])


@pytest.mark.parametrize("grace_s", ["10", "0"])
async def test_sigterm_during_a_burst_leaves_nothing_open(
        servers: Servers, http: aiohttp.ClientSession, tmp_path: Path, grace_s: str) -> None:
    db = tmp_path / "ledger.db"
    servers.env["ML_CABINET_SHUTDOWN_GRACE_SECONDS"] = grace_s
    # Holds are what a stop must resolve: the two-phase path opens them (the one-write path
    # of fast models never leaves one open across an await).
    servers.env["ML_CABINET_ONE_TRANSACTION"] = "0"
    server = await servers.start(db)
    api = Api(http, server)
    tokens = [await api.signup(f"user{i}") for i in range(USERS)]
    for token in tokens:
        assert (await api.top_up(token, 10_000)).status == 201
    for round_number in range(ROUNDS):
        running = asyncio.ensure_future(burst(api, tokens))
        assert await wait_for_open_hold(db), "the burst never held credits"
        assert await servers.stop(server) == 0, server.log_tail()
        replies = await running
        log = server.log_text()
        assert "Traceback" not in log, log
        assert query(db, "SELECT COUNT(*) AS n FROM holds WHERE status = 'open'")[0]["n"] == 0
        code, report = await run_audit(db)
        assert code == 0, report
        server = await servers.start(db)  # the next start: nothing to sweep
        assert SWEPT not in server.log_text(), server.log_text()
        api = Api(http, server)
        acknowledged = [(t, r) for t, r in replies if r is not None and r.status == 200]
        assert acknowledged or grace_s == "0", f"round {round_number}: nothing finished"
        for token, reply in acknowledged:  # told "done": completed and charged, in the log
            task = await api.call("GET", f"/tasks/{reply.body['task']['id']}", token=token)
            assert task.body["status"] == "completed" and task.body["cost"] == 3, task.body
    balances = [await api.balance(token) for token in tokens]
    assert all(b["held"] == 0 for b in balances), balances
