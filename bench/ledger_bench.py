"""In-process ledger throughput: group commit on and off, one client against 64.

LedgerService on a real SQLite file (WAL, synchronous=FULL by default), no HTTP. Two use cases:
a top-up (one write transaction, one event) and a prediction's ledger work (submit_task, then
complete_task: two write transactions, four events). Each runs with 1 and with 64 concurrent
clients, with the store's group commit as shipped (events.sqlite.MAX_BATCH = 64) and with it
off (MAX_BATCH monkeypatched to 1 in this process). Rounds interleave every cell.

Last, how many statements each use case makes and where they run (the writer's run inline
on the event loop's thread, except BEGIN/COMMIT/ROLLBACK/PRAGMA, which wait in a worker
thread; the shared reader's each take one trip to aiosqlite's thread), and the price of one
statement by each of those routes against plain sqlite3.

Run: .venv/bin/python bench/ledger_bench.py [--rounds 3] [--ops 1500] [--seconds 10]
     [--synchronous FULL] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiosqlite
from benchlib import ROOT, Spread, load, machine, table

sys.path.insert(0, str(ROOT))

import events.database
import events.sqlite as sqlite_store
from events import Database
from events.database import InlineDatabase
from ledger import LedgerService, TaskDraft, ledger_store
from ledger.control import Operation

SHIPPED_BATCH = sqlite_store.MAX_BATCH
USERS = 64
ITEMS = 10
INPUTS = [float(i) for i in range(ITEMS)]
OUTPUTS = [2 * x for x in INPUTS]
DRAFT = TaskDraft(model_id=1, input_data=INPUTS, input_indexes=list(range(ITEMS)), invalid=[],
                  cost_credits=ITEMS)

Op = Callable[[LedgerService, int], Awaitable[None]]


async def top_up(ledger: LedgerService, user_id: int) -> None:
    await ledger.top_up(user_id, 1)


async def predict_pair(ledger: LedgerService, user_id: int) -> None:
    op = Operation(user_id=user_id, operation_id=uuid.uuid4().hex, kind="predict",
                   fingerprint="bench")
    ticket = await ledger.submit_task(user_id, DRAFT, op)
    assert ticket.run, ticket
    await ledger.complete_task(user_id, ticket.task_id, OUTPUTS, "bench prediction")


OPS: dict[str, tuple[Op, int]] = {  # name: (use case, write transactions per call)
    "top-up": (top_up, 1),
    "submit+complete": (predict_pair, 2),
}


STATEMENTS: dict[str, dict[str, float]] = {}  # filled by the first round
SETTINGS = {  # name: MAX_BATCH
    "group commit (shipped)": SHIPPED_BATCH,
    "no group commit": 1,
}


@dataclass
class Cell:
    op: str
    setting: str
    concurrency: int
    calls: int
    seconds: float
    commits: int

    @property
    def calls_per_s(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0

    @property
    def jobs_per_commit(self) -> float:
        return self.calls * OPS[self.op][1] / self.commits if self.commits else 0.0


async def run_cell(ledger: LedgerService, user_ids: list[int], op_name: str, setting: str,
                   concurrency: int, max_calls: int, max_seconds: float) -> Cell:
    sqlite_store.MAX_BATCH = SETTINGS[setting]
    op = OPS[op_name][0]
    store = ledger.store
    commits = 0
    original = store._commit_batch

    async def counting(jobs: list[Any]) -> None:
        nonlocal commits
        commits += 1
        await original(jobs)

    store._commit_batch = counting  # type: ignore[method-assign]
    calls = 0
    deadline = time.perf_counter() + max_seconds

    async def client(k: int) -> None:
        nonlocal calls
        while calls < max_calls and time.perf_counter() < deadline:
            calls += 1
            await op(ledger, user_ids[k % len(user_ids)])

    try:
        started = time.perf_counter()
        await asyncio.gather(*(client(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - started
    finally:
        store._commit_batch = original  # type: ignore[method-assign]
        sqlite_store.MAX_BATCH = SHIPPED_BATCH
    return Cell(op_name, setting, concurrency, calls, elapsed, commits)


async def run_round(number: int, args: argparse.Namespace, workdir: Path) -> list[Cell]:
    store = ledger_store(workdir / f"ledger{number}.db", synchronous=args.synchronous)
    await store.open()
    cells = []
    try:
        ledger = LedgerService(store)
        user_ids = []
        for k in range(USERS):
            opened = await ledger.open_account(f"bench{k}", "not-a-real-hash")
            await ledger.top_up(opened.id, 1_000_000)
            user_ids.append(opened.id)
        await run_cell(ledger, user_ids, "submit+complete", next(iter(SETTINGS)), 8, 100, 5)
        if number == 0:
            for op_name, per_call in (await statements_per_call(ledger, user_ids[0])).items():
                print(f"  {op_name}: per call " + ", ".join(
                    f"{v:g} {k}" for k, v in per_call.items()), flush=True)
                STATEMENTS[op_name] = per_call
        settings = list(SETTINGS)
        turn = number % len(settings)
        settings = settings[turn:] + settings[:turn]  # the order rotates
        for op_name in OPS:
            for concurrency in args.concurrency:
                for setting in settings:
                    cell = await run_cell(ledger, user_ids, op_name, setting, concurrency,
                                          args.ops, args.seconds)
                    cells.append(cell)
                    print(f"  round {number + 1} {op_name:<15} c={concurrency:<3} "
                          f"{setting:<22} {cell.calls_per_s:8.1f} calls/s  "
                          f"{cell.jobs_per_commit:5.1f} jobs/commit", flush=True)
    finally:
        await store.close()
    return cells


# -- the price of one statement ------------------------------------------------------------

async def statements_per_call(ledger: LedgerService, user_id: int, calls: int = 20
                              ) -> dict[str, dict[str, float]]:
    """Statements per use case, alone (so BEGIN and COMMIT count too), by where they run, and
    the trips to another thread they make (aiosqlite's, or asyncio.to_thread's)."""
    counts: collections.Counter[str] = collections.Counter()
    waits = events.database._WAITS  # the writer's statements that go to a worker thread
    patched: list[tuple[Any, str, Any]] = []

    def patch(owner: Any, name: str, count: Callable[..., None]) -> None:
        original = owner.__dict__[name]

        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            count(*args, **kwargs)
            return await original(*args, **kwargs)

        patched.append((owner, name, original))
        setattr(owner, name, async_wrapper)

    def writer_execute(self: Any, query: str, *args: Any) -> None:
        counts["writer, in a thread" if waits.match(query) else "writer, inline"] += 1

    def tally(key: str) -> Callable[..., None]:
        def count(*args: Any, **kwargs: Any) -> None:
            counts[key] += 1
        return count

    found = {}
    try:
        patch(InlineDatabase, "execute", writer_execute)
        patch(InlineDatabase, "executescript", tally("writer, in a thread"))
        patch(InlineDatabase, "fetchall", tally("writer, inline"))  # fetchone calls it
        patch(Database, "execute", tally("reader"))
        patch(Database, "fetchall", tally("reader"))  # fetchone calls it
        patch(aiosqlite.Connection, "_execute", tally("thread trips"))  # one per trip
        patch(asyncio, "to_thread", tally("thread trips"))
        for op_name, (op, _) in OPS.items():
            counts.clear()
            for _ in range(calls):
                await op(ledger, user_id)
            found[op_name] = {key: counts[key] / calls for key in (
                "writer, inline", "writer, in a thread", "reader", "thread trips")}
    finally:
        for owner, name, original in reversed(patched):
            setattr(owner, name, original)
    return found


async def statement_costs(workdir: Path, calls: int) -> dict[str, float]:
    """Microseconds per primary-key SELECT, by how the call reaches SQLite."""
    path = workdir / "statements.db"
    query = "SELECT * FROM t WHERE id = ?"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, "x" * 40) for i in range(1000)])
        conn.commit()
        for i in range(calls // 10):  # warm up, as the other routes are after it
            conn.execute(query, (i % 1000,)).fetchone()
        started = time.perf_counter()
        for i in range(calls):
            conn.execute(query, (i % 1000,)).fetchone()
        costs = {"sqlite3, same thread": time.perf_counter() - started}
    writer = await InlineDatabase.connect_inline(path)
    try:
        started = time.perf_counter()
        for i in range(calls):
            await writer.fetchone(query, (i % 1000,))
        costs["InlineDatabase.fetchone (the writer: inline)"] = time.perf_counter() - started

        def select(key: int) -> Any:
            return writer.raw.execute(query, (key,)).fetchone()

        started = time.perf_counter()
        for i in range(calls):
            await asyncio.to_thread(select, i % 1000)
        costs["the same via asyncio.to_thread (as BEGIN/COMMIT go)"] = (
            time.perf_counter() - started)
    finally:
        await writer.close()
    reader = await Database.connect(path)
    try:
        started = time.perf_counter()
        for i in range(calls):
            await reader.fetchone(query, (i % 1000,))
        costs["Database.fetchone (the reader: 1 trip to aiosqlite's thread)"] = (
            time.perf_counter() - started)
    finally:
        await reader.close()
    return {name: seconds / calls * 1e6 for name, seconds in costs.items()}


# -- report --------------------------------------------------------------------------------

def ratio_of(top: list[Cell], bottom: list[Cell]) -> Spread:
    """Per-round ratios: each round's cells ran back to back on one machine state."""
    return Spread.of([a.calls_per_s / b.calls_per_s
                      for a, b in zip(top, bottom, strict=True) if b.calls_per_s])


def report(cells: list[Cell], statements: list[dict[str, float]],
           concurrency: list[int]) -> tuple[str, dict[str, Any]]:
    groups: dict[tuple[str, int, str], list[Cell]] = collections.defaultdict(list)
    for cell in cells:
        groups[(cell.op, cell.concurrency, cell.setting)].append(cell)
    shipped, unbatched = SETTINGS
    rows, ratios = [], []
    summary: dict[str, Any] = {"cells": [], "ratios": []}
    for op_name in OPS:
        for level in concurrency:
            for setting in SETTINGS:
                found = groups[(op_name, level, setting)]
                rate = Spread.of([c.calls_per_s for c in found])
                per_commit = Spread.of([c.jobs_per_commit for c in found])
                rows.append([op_name, level, setting, rate.show(0), per_commit.show(1),
                             sum(c.calls for c in found)])
                summary["cells"].append({"op": op_name, "concurrency": level,
                                         "setting": setting, "calls_per_s": asdict(rate),
                                         "jobs_per_commit": asdict(per_commit)})
            for label, top, bottom in (("group commit on / off", shipped, unbatched),):
                ratio = ratio_of(groups[(op_name, level, top)],
                                 groups[(op_name, level, bottom)])
                ratios.append([op_name, level, label, ratio.show(2, "×")])
                summary["ratios"].append({"op": op_name, "concurrency": level, "ratio": label,
                                          "value": asdict(ratio)})
        scaling = ratio_of(groups[(op_name, max(concurrency), shipped)],
                           groups[(op_name, min(concurrency), shipped)])
        label = f"{max(concurrency)} clients / {min(concurrency)}, shipped"
        ratios.append([op_name, "", label, scaling.show(2, "×")])
        summary["ratios"].append({"op": op_name, "ratio": label, "value": asdict(scaling)})
    summary["database_calls_per_use_case"] = STATEMENTS
    call_rows = [[op_name, *(f"{v:g}" for v in per_call.values())]
                 for op_name, per_call in STATEMENTS.items()]
    names = list(statements[0])
    statement_rows = [[name, Spread.of([s[name] for s in statements]).show(1, " µs")]
                      for name in names]
    summary["statements_us"] = {name: asdict(Spread.of([s[name] for s in statements]))
                                for name in names}
    text = "\n\n".join([
        table(["use case", "clients", "setting", "calls/s median (min–max)",
               "jobs per commit", "calls"], rows),
        table(["use case", "clients", "ratio of calls/s", "median (min–max)"], ratios),
        table(["use case, alone", "writer statements, inline", "writer statements, in a thread",
               "reader statements", "thread trips"], call_rows),
        table(["one primary-key SELECT", "µs per call, median (min–max)"], statement_rows),
    ])
    return text, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--ops", type=int, default=1500, help="calls per cell, at most")
    parser.add_argument("--seconds", type=float, default=10, help="per cell, at most")
    parser.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL")
    parser.add_argument("--json", type=Path, help="write the summary here too")
    args = parser.parse_args(argv)
    assert 1 <= args.rounds <= 20 and all(1 <= c <= 256 for c in args.concurrency)
    print(f"ledger_bench: {machine()}; load {load()}; synchronous={args.synchronous}; "
          f"shipped MAX_BATCH={SHIPPED_BATCH}; {args.rounds} rounds; ≤{args.ops} calls or "
          f"≤{args.seconds:g} s per cell", flush=True)
    cells: list[Cell] = []
    statements = []
    with tempfile.TemporaryDirectory(prefix="mlc-ledger-bench-") as scratch:
        for number in range(args.rounds):
            cells += asyncio.run(run_round(number, args, Path(scratch)))
            statements.append(asyncio.run(statement_costs(Path(scratch), 5000)))
            (Path(scratch) / "statements.db").unlink()
    text, summary = report(cells, statements, args.concurrency)
    print()
    print(text)
    print(f"\nload average at the end: {load()}")
    if args.json:
        args.json.write_text(json.dumps({"synchronous": args.synchronous, **summary},
                                        indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
