"""How long the limit check's reads take: the spend projection's slot sums against summing
the holds table over the month, for an account with many predictions this month.

    .venv/bin/python bench/spend_limits.py [--tasks 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ledger import LedgerService, Operation, TaskDraft, ledger_store, limits, spend


async def main(tasks: int) -> None:
    now = [datetime(2026, 12, 1, tzinfo=UTC)]
    with tempfile.TemporaryDirectory() as scratch:
        store = ledger_store(Path(scratch) / "bench.db", synchronous="OFF",
                             clock=lambda: now[0])
        await store.open()
        ledger = LedgerService(store)
        user = (await ledger.open_account("bench", "x")).id
        await ledger.top_up(user, 1_000_000)
        draft = TaskDraft(model_id=1, input_data=[1], input_indexes=[0], invalid=[],
                          cost_credits=1)
        step = timedelta(days=30) / tasks
        for n in range(tasks):
            now[0] += step
            ticket = await ledger.submit_task(user, draft, Operation(
                user_id=user, operation_id=str(n), kind="predict", fingerprint="f"))
            await ledger.complete_task(user, ticket.task_id, [2.0], "bench")
        db = store.read_db()
        month = limits.month_period(now[0], limits.zone("UTC"))
        rounds = 200
        started = time.perf_counter()
        for _ in range(rounds):
            await spend.periods_at(db, user, now[0])
        slots_ms = (time.perf_counter() - started) * 1000 / rounds
        started = time.perf_counter()
        for _ in range(rounds):
            await db.fetchone(
                "SELECT COALESCE(SUM(amount_credits), 0) AS s FROM holds WHERE user_id = ? "
                "AND status != 'released' AND opened_at >= ? AND opened_at < ?",
                (user, month[0].isoformat(), month[1].isoformat()))
        holds_ms = (time.perf_counter() - started) * 1000 / rounds
        rows = await db.fetchone("SELECT COUNT(*) AS n FROM spend")
        print(f"{tasks:,} predictions in one month; spend rows: {rows['n'] if rows else 0:,}")
        print(f"spend projection, day + month sums: {slots_ms:.3f} ms")
        print(f"holds table, month sum only:        {holds_ms:.3f} ms")
        await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=20_000)
    asyncio.run(main(parser.parse_args().tasks))
