"""How long usage takes for a day and for a year: the usage projection's day rows against
grouping the credit history (the transactions table) by local day, for one account with
predictions spread over a year; and what a time-zone change costs once (the refold).

    .venv/bin/python bench/usage_bench.py [--tasks 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from events import SqlDatabase
from ledger import LedgerService, Operation, TaskDraft, ledger_store
from ledger.usage import usage

START = datetime(2026, 1, 1, tzinfo=UTC)


async def ms_per_call(call: Callable[[], Awaitable[Any]], rounds: int = 200) -> float:
    await call()  # warm the caches once
    started = time.perf_counter()
    for _ in range(rounds):
        await call()
    return (time.perf_counter() - started) * 1000 / rounds


async def from_history(db: SqlDatabase, user: int, first: date, last: date) -> dict[date, int]:
    """Without the projection: every charge of the range read and put on its local day."""
    zone = ZoneInfo("Europe/Moscow")
    start = datetime(first.year, first.month, first.day, tzinfo=zone) - timedelta(days=1)
    end = datetime(last.year, last.month, last.day, tzinfo=zone) + timedelta(days=2)
    rows = await db.fetchall(
        "SELECT amount_credits, created_at FROM transactions WHERE user_id = ? AND "
        "kind = 'charge' AND created_at >= ? AND created_at < ?",
        (user, start.astimezone(UTC).isoformat(), end.astimezone(UTC).isoformat()))
    days: dict[date, int] = {}
    for row in rows:
        day = datetime.fromisoformat(row["created_at"]).astimezone(zone).date()
        if first <= day <= last:
            days[day] = days.get(day, 0) - row["amount_credits"]
    return days


async def main(tasks: int) -> None:
    now = [START]
    with tempfile.TemporaryDirectory() as scratch:
        store = ledger_store(Path(scratch) / "bench.db", synchronous="OFF",
                             clock=lambda: now[0])
        await store.open()
        ledger = LedgerService(store)
        user = (await ledger.open_account("bench", "x")).id
        await ledger.top_up(user, 1_000_000)
        step = timedelta(days=365) / tasks
        for n in range(tasks):
            now[0] += step
            draft = TaskDraft(model_id=1 + n % 2, input_data=[1], input_indexes=[0],
                              invalid=[], cost_credits=1)
            ticket = await ledger.submit_task(user, draft, Operation(
                user_id=user, operation_id=str(n), kind="predict", fingerprint="f"))
            await ledger.complete_task(user, ticket.task_id, [2.0], "bench")
        started = time.perf_counter()
        await ledger.set_time_zone(user, "Europe/Moscow")
        refold_ms = (time.perf_counter() - started) * 1000
        db = store.read_db()
        day, year = (date(2026, 7, 1), date(2026, 7, 1)), (date(2026, 1, 1), date(2026, 12, 31))
        figures = {
            "projection, one day, per day": await ms_per_call(
                lambda: usage(db, user, *day, "day")),
            "projection, a year, per day": await ms_per_call(
                lambda: usage(db, user, *year, "day")),
            "projection, a year, per model": await ms_per_call(
                lambda: usage(db, user, *year, "model")),
            "credit history, one day": await ms_per_call(
                lambda: from_history(db, user, *day)),
            "credit history, a year": await ms_per_call(
                lambda: from_history(db, user, *year), rounds=5),
        }
        count = await db.fetchone("SELECT COUNT(*) AS n FROM usage_days")
        slots = await db.fetchone("SELECT COUNT(*) AS n FROM usage_slots")
        print(f"{tasks:,} predictions over 2026 (two models); usage_days rows: "
              f"{count['n'] if count else 0:,}, usage_slots rows: {slots['n'] if slots else 0:,}")
        for name, ms in figures.items():
            print(f"{name:<32} {ms:8.3f} ms")
        ratio = figures["projection, a year, per day"] / figures["projection, one day, per day"]
        print(f"{'ratio a year / a day (projection)':<32} {ratio:8.1f}x")
        print(f"{'time-zone change (refold, once)':<32} {refold_ms:8.1f} ms")
        await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=20_000)
    asyncio.run(main(parser.parse_args().tasks))
