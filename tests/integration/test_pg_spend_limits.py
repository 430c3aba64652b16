"""A daily limit holds across two store instances on one PostgreSQL database: two writers,
two pools, as two app processes would be."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from pgcluster import PgCluster, fresh_database

from ledger import LedgerService, postgres_ledger_store
from ledger.audit import audit
from ml import MLModelManager, MLService, default_models

PRICE = 3  # three items on the Doubler


@pytest.fixture
async def url(pg_cluster: PgCluster) -> AsyncIterator[str]:
    async with fresh_database(pg_cluster) as fresh:
        yield fresh


async def test_fifty_predictions_through_two_stores_spend_no_more_than_the_daily_limit(
        url: str) -> None:
    first, second = postgres_ledger_store(url), postgres_ledger_store(url)
    await first.open()
    await second.open()
    try:
        ledgers = [LedgerService(first, owner="a"), LedgerService(second, owner="b")]
        ml = [MLService(ledger, MLModelManager(default_models())) for ledger in ledgers]
        user_id = (await ledgers[0].open_account("alice", "not-a-hash")).id
        await ledgers[1].top_up(user_id, 10_000)
        covered = 11
        await ledgers[0].set_limits(user_id, covered * PRICE + PRICE - 1, None)

        results = await asyncio.gather(*(ml[i % 2].process_task(user_id, 1, [i, i, i])
                                         for i in range(50)))
        statuses = [r.status for r in results]
        assert statuses.count("completed") == covered
        assert all(r.refusal is not None and r.refusal.limit == "daily"
                   for r in results if r.status == "rejected")
        view = await ledgers[1].limits(user_id)
        assert view.daily.spent_credits == covered * PRICE
        balance = await ledgers[0].get_balance(user_id)
        assert balance.balance_credits == 10_000 - covered * PRICE
    finally:
        await first.close()
        await second.close()
    report = await audit(url, show_progress=False)
    assert report.ok, report.render()
