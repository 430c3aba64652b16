"""In process, no HTTP: where a charged one-write prediction spends its CPU, and how many SQL
statements it runs (each connection traced with sqlite3's trace callback).

Run: .venv/bin/python bench/profile_predict.py [--top 30] [--no-profile]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import pstats
import re
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ledger import LedgerService, Passwords, UserService, ledger_store
from ml import MLModelManager, MLService, default_models

CLIENTS, PREDICTIONS = 16, 200


def _shape(sql: str) -> str:
    """The statement without its values (the trace callback shows them bound)."""
    sql = re.sub(r"'[^']*'|x'[0-9a-fA-F]*'", "?", sql)
    return re.sub(r"-?\b\d+(\.\d+)?\b", "?", sql)[:90]


def traced(statements: collections.Counter[str]) -> None:
    """Count every statement any sqlite3 connection opened from now on runs."""
    connect = sqlite3.connect

    def tracing(*args: object, **kwargs: object) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)  # type: ignore[arg-type]
        conn.set_trace_callback(lambda sql: statements.update([_shape(sql)]))
        return conn

    sqlite3.connect = tracing  # type: ignore[assignment]


async def run(folder: Path, profile: cProfile.Profile | None,
              statements: collections.Counter[str]) -> None:
    store = ledger_store(folder / "profile.db")
    await store.open()
    try:
        ledger = LedgerService(store)
        users = UserService(ledger, Passwords.cheap())
        ml = MLService(ledger, MLModelManager(default_models()))
        ids = [(await users.register(f"user{k}", "correct horse")).id for k in range(CLIENTS)]
        for user_id in ids:
            await ledger.top_up(user_id, 1_000_000)

        async def client(user_id: int) -> None:
            for _ in range(PREDICTIONS):
                await ml.process_task(user_id, 1, [1.0] * 10)

        statements.clear()
        wall, cpu = time.perf_counter(), time.process_time()
        if profile is not None:
            profile.enable()
        await asyncio.gather(*(client(user_id) for user_id in ids))
        if profile is not None:
            profile.disable()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        await store.close()
    n = CLIENTS * PREDICTIONS
    print(f"{n / wall:7.0f} predictions/s  {cpu / n * 1e6:5.0f} µs CPU each"
          f"{' (under cProfile)' if profile else ''}")
    if statements:
        print(f"{sum(statements.values()) / n:.1f} statements a prediction:")
    for sql, count in statements.most_common():
        print(f"  {count / n:5.2f}  {sql}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--dump", help="also write the profile to this file")
    parser.add_argument("--trace", action="store_true",
                        help="count statements (the trace callback costs CPU too)")
    args = parser.parse_args()
    statements: collections.Counter[str] = collections.Counter()
    if args.trace:
        traced(statements)
    profile = None if args.no_profile else cProfile.Profile()
    with tempfile.TemporaryDirectory(prefix="mlc-profile-") as scratch:
        asyncio.run(run(Path(scratch), profile, statements))
    if profile is not None:
        if args.dump:
            profile.dump_stats(args.dump)
        stats = pstats.Stats(profile)
        stats.sort_stats("tottime").print_stats(args.top)
        stats.sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
