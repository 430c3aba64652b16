"""Two server processes on one SQLite file: concurrent charges split across them can never
spend the same credit twice."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from fault_harness import Api, Servers, query, run_audit

PRICE_PER_ITEM = 1  # model 1, "Doubler"
ITEMS = [1.0, 2.0, 3.0]
COST = PRICE_PER_ITEM * len(ITEMS)


@pytest.mark.slow
@pytest.mark.parametrize(("covered", "attempts"), [(1, 12), (5, 16), (9, 30)])
async def test_charges_split_across_two_servers_spend_each_credit_once(
        tmp_path: Path, servers: Servers, http: aiohttp.ClientSession,
        covered: int, attempts: int) -> None:
    db = tmp_path / "ledger.db"
    first, second = await servers.start(db), await servers.start(db)
    apis = [Api(http, first), Api(http, second)]
    token = await apis[0].signup("shared")
    assert (await apis[1].top_up(token, covered * COST, key="funds")).status == 201

    async def watch_balance() -> list[dict[str, int]]:
        return [await apis[n % 2].balance(token) for n in range(attempts)]

    *replies, readings = await asyncio.gather(
        *(apis[i % 2].predict(token, ITEMS, key=f"charge-{i}") for i in range(attempts)),
        watch_balance())

    for reading in readings:  # what either process showed while the charges ran
        assert 0 <= reading["held"] <= reading["balance"], readings
        assert reading["available"] >= 0, readings

    statuses = sorted(r.status for r in replies)
    assert statuses == [200] * covered + [402] * (attempts - covered), statuses
    for reply in replies:
        assert reply.body["balance"]["available"] >= 0, reply
        if reply.status == 402:
            assert reply.body["code"] == "insufficient_balance", reply
    for api in apis:  # both processes read the same truth
        assert await api.balance(token) == {"balance": 0, "held": 0, "available": 0}
    history = await apis[0].call("GET", "/transactions?limit=100", token=token)
    assert [t["balance_after"] for t in reversed(history.body["data"])] == [
        covered * COST - COST * n for n in range(covered + 1)]

    for server in (first, second):
        assert await servers.stop(server) == 0, server.log_tail()
    assert query(db, "SELECT COUNT(*) FROM holds WHERE status = 'open'")[0][0] == 0
    code, report = await run_audit(db)
    assert code == 0, report
