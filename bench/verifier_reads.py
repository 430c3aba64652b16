"""What the verifier's end-of-pass check costs the requests that read meanwhile, on SQLite:
the check on the connection requests share (`read_db()`, as before) against the check on
`background_db()`, a connection of its own, in one run.

The background verifier walks the log and, once a pass meets the tail, checks two
invariants over whole tables (ledger/verifier.py `projections_problem`: the postings sum to
zero, every balance equals its account's postings). A synthetic ledger file holds
`--accounts` accounts of `--postings-each` charges each (two postings a charge, as the
ledger writes them). While the check runs, a reader asks for one account's balance (a point
read by key, as GET balance does) over and over; its latency, and how long the check took,
are printed for each way.

Run: .venv/bin/python bench/verifier_reads.py [--accounts 100000] [--postings-each 20]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

from benchlib import ROOT, load, machine, table

sys.path.insert(0, str(ROOT))

from events import SqlDatabase
from ledger import ledger_store
from ledger.verifier import projections_problem


def fill(path: Path, accounts: int, each: int) -> int:
    """Accounts whose balance equals their postings, with the system side of each charge."""
    with closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA synchronous = OFF")
        db.executemany("INSERT INTO accounts VALUES (?, ?, ?, '2026-01-01', 1, ?, 0)",
                       ((u, f"user{u}", f"user{u}", 1000 - each + 1) for u in
                        range(1, accounts + 1)))

        def postings() -> object:
            position = 0
            for user in range(1, accounts + 1):
                for k in range(each):
                    position += 1
                    amount = 1000 if k == 0 else -1
                    yield position, f"user:{user}", amount
                    yield position, "system:top_ups" if k == 0 else "system:ml_revenue", -amount
        db.executemany("INSERT INTO postings VALUES (?, ?, ?)", postings())  # type: ignore[arg-type]
        db.commit()
    return accounts * each * 2


async def reads_during(check_db: SqlDatabase, read_db: SqlDatabase) -> tuple[float, list[float]]:
    """(the check's seconds, the latencies in ms of the balance reads made meanwhile)."""
    latencies: list[float] = []
    check = asyncio.create_task(projections_problem(check_db))
    started = time.perf_counter()
    while not check.done():
        before = time.perf_counter()
        await read_db.fetchone("SELECT balance_credits FROM accounts WHERE user_id = ?", (7,))
        latencies.append((time.perf_counter() - before) * 1000)
    assert await check is None, "the synthetic ledger should pass the check"
    return time.perf_counter() - started, latencies


async def run(args: argparse.Namespace, folder: Path) -> list[list[str]]:
    path = folder / "verifier.db"
    store = ledger_store(path)
    await store.open()
    await store.close()
    rows = fill(path, args.accounts, args.postings_each)
    print(f"  {rows:,} postings over {args.accounts:,} accounts", flush=True)
    store = ledger_store(path)
    await store.open()
    figures: dict[str, list[tuple[float, list[float]]]] = {"read_db()": [],
                                                            "background_db()": []}
    try:
        for number in range(2 * args.rounds):
            way = ("read_db()", "background_db()")[(number + number // 2) % 2]
            check_db = store.read_db() if way == "read_db()" else store.background_db()
            figures[way].append(await reads_during(check_db, store.read_db()))
    finally:
        await store.close()
    out = []
    for way, runs in figures.items():
        latencies = [ms for _, got in runs for ms in got]
        out.append([way, f"{statistics.median(s for s, _ in runs):.2f}",
                    f"{len(latencies) / len(runs):,.0f}",
                    f"{statistics.median(latencies):.2f}", f"{max(latencies):.1f}"])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--postings-each", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"verifier_reads: {machine()}; load {load()}")
    with tempfile.TemporaryDirectory(prefix="mlc-verifier-") as scratch:
        rows = asyncio.run(run(args, Path(scratch)))
    print(table(["the check on", "check s (median)", "balance reads meanwhile a check",
                 "read ms, median", "read ms, max"], rows))
    print(f"load at the end {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
