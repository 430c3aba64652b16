"""A checkpoint seal's CPU by the number of accounts: the accounts tree made afresh at every
seal (every head read, every leaf and node hashed: what each seal did before the tree was
kept) against the tree kept from the seal before (ledger/head_tree.py), in one run.

A ledger store (SQLite, synchronous=FULL) gets N account streams of one event each, then a
first seal. Each round appends a seal's worth of events (1,000 by default: the service seals
every 1,000 events, ML_CABINET_CHECKPOINT_EVERY) to random accounts (a prediction writes
four events to its account: 250 accounts move) and a few new accounts, then seals it,
alternately with a new Checkpointer (no tree: read whole, as before) and with the one kept
across rounds (the tree moved on). A seal runs on the event loop inside the write
transaction, so its CPU is also how long the loop and every other write wait. Then one
user's statement (GET /api/v1/ledger/statement): its account's proof from the kept tree,
or from every head read and hashed (the first statement of a process that did not seal).

Round 13 adds the longest the event loop went without a turn while each seal ran (a task
asking for a turn every millisecond: what a request would have waited), and
`--off-loop-accounts N`: trees of N accounts or more are made, or moved past a new
account, in a worker thread (ledger/checkpoints.py OFF_LOOP_ACCOUNTS; a huge N keeps all of
it on the loop, as before).

Run: .venv/bin/python bench/seal_bench.py [--accounts 1000 10000 100000] [--rounds 4]
         [--off-loop-accounts 4096]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from benchlib import ROOT, load, machine, table

sys.path.insert(0, str(ROOT))

from events import Event, SqlEventStore, SqlSession
from ledger import checkpoints, ledger_store
from ledger.checkpoints import Checkpointer, Signer
from ledger.events import AccountOpened, CreditsDeposited
from ledger.service import account_stream
from ledger.statement_proof import build_statement, verify_statement

EVENTS_A_PREDICTION = 4


@dataclass(frozen=True, kw_only=True)
class Moved(Event, type_name="BenchMoved"):
    """An event no projector knows: the seal reads only positions, streams and hashes."""

    n: int


async def append(store: SqlEventStore, streams: list[tuple[str, int]]) -> None:
    """One event on each (stream, its version so far), a transaction a thousand."""
    async def job(chunk: list[tuple[str, int]]) -> None:
        async def work(s: SqlSession) -> None:
            for stream_id, version in chunk:
                await s.append(stream_id, version, [Moved(n=version)])
        await store.transact(work)
    for start in range(0, len(streams), 1000):
        await job(streams[start:start + 1000])


async def one_size(accounts: int, args: argparse.Namespace, folder: Path
                   ) -> dict[str, list[float]]:
    store = ledger_store(folder / f"seal-{accounts}.db")
    store.codec.register(Moved)
    await store.open()
    rng = random.Random(accounts)
    versions = {f"account-{k}": 0 for k in range(1, accounts + 1)}
    figures: dict[str, list[float]] = {"afresh": [], "kept": []}
    try:
        await append(store, list(versions.items()))
        for stream in versions:
            versions[stream] = 1
        signer = Signer.from_file(folder / f"key-{accounts}")
        kept = Checkpointer(store, signer)
        await kept.seal()  # the first seal of the log: nodes, heads, every account
        for number in range(2 * args.rounds):
            moving = rng.sample(sorted(versions), args.events // EVENTS_A_PREDICTION)
            batch = [(s, versions[s] + k) for s in moving for k in range(EVENTS_A_PREDICTION)]
            new = [f"account-{len(versions) + k}" for k in range(1, args.new + 1)]
            batch += [(s, 0) for s in new]
            await append(store, sorted(batch, key=lambda item: (item[0], item[1])))
            for s in moving:
                versions[s] += EVENTS_A_PREDICTION
            versions.update(dict.fromkeys(new, 1))
            # Alternate which goes first, so neither always meets a warmer cache.
            way = ("afresh", "kept")[(number + number // 2) % 2]
            sealer = Checkpointer(store, signer) if way == "afresh" else kept
            before_cpu, before_wall = time.process_time(), time.perf_counter()
            async with longest_stall() as stall:
                sealed = await sealer.seal()
            cpu, wall = time.process_time() - before_cpu, time.perf_counter() - before_wall
            figures[f"{way} stall"] = [*figures.get(f"{way} stall", []), stall[0] * 1000]
            assert sealed is not None and sealed.accounts == len(versions)
            figures[way].append(cpu * 1000)
            figures[f"{way} wall"] = [*figures.get(f"{way} wall", []), wall * 1000]
            if way == "afresh":  # the tree at this position is the kept one's from here
                kept._heads = sealer._heads
        figures.update(await statements(store, kept, signer, args.rounds))
    finally:
        await store.close()
    return figures


@contextlib.asynccontextmanager
async def longest_stall() -> AsyncIterator[list[float]]:
    """The longest the loop went without giving a task that wants a turn each millisecond
    one (seconds, less that millisecond)."""
    found, stop = [0.0], asyncio.Event()

    async def tick() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            found[0] = max(found[0], now - last - 0.001)
            last = now

    ticker = asyncio.create_task(tick())
    try:
        yield found
    finally:
        stop.set()
        await ticker


async def statements(store: SqlEventStore, kept: Checkpointer, signer: Signer, rounds: int
                     ) -> dict[str, list[float]]:
    """CPU ms of one user's statement: its proof from the kept tree, or (a new Checkpointer:
    another process's first statement) from every head read and hashed."""
    user_id = 10**9
    async def work(s: SqlSession) -> None:
        await s.append(account_stream(user_id), 0, [
            AccountOpened(user_id=user_id, username="alice"),
            CreditsDeposited(user_id=user_id, amount_credits=100, description="top-up")])
    await store.transact(work)
    await kept.seal()
    figures: dict[str, list[float]] = {"statement afresh": [], "statement kept": []}
    for number in range(2 * rounds):
        way = ("afresh", "kept")[(number + number // 2) % 2]
        builder = Checkpointer(store, signer) if way == "afresh" else kept
        before = time.process_time()
        statement = await build_statement(store, builder, user_id)
        figures[f"statement {way}"].append((time.process_time() - before) * 1000)
        verify_statement(statement, signer.public_key_pem)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--events", type=int, default=1000, help="events a seal covers")
    parser.add_argument("--new", type=int, default=2, help="new accounts a seal covers")
    parser.add_argument("--off-loop-accounts", type=int, default=checkpoints.OFF_LOOP_ACCOUNTS,
                        help="trees this large are hashed in a worker thread")
    args = parser.parse_args()
    checkpoints.OFF_LOOP_ACCOUNTS = args.off_loop_accounts
    print(f"seal_bench: {machine()}; load {load()}; {args.events} events a seal over "
          f"{args.events // EVENTS_A_PREDICTION} accounts + {args.new} new, "
          f"{args.rounds} rounds each way; trees of {args.off_loop_accounts:,} accounts or "
          "more off the loop")
    rows = []
    with tempfile.TemporaryDirectory(prefix="mlc-seal-") as scratch:
        for accounts in args.accounts:
            figures = asyncio.run(one_size(accounts, args, Path(scratch)))
            fresh, kept = (statistics.median(figures[w]) for w in ("afresh", "kept"))
            rows.append([f"{accounts:,}", f"{fresh:.1f} ({min(figures['afresh']):.1f}–"
                         f"{max(figures['afresh']):.1f})",
                         f"{kept:.1f} ({min(figures['kept']):.1f}–{max(figures['kept']):.1f})",
                         f"{kept / fresh:.2f}",
                         f"{fresh * 1000 / (args.events / EVENTS_A_PREDICTION):.0f} → "
                         f"{kept * 1000 / (args.events / EVENTS_A_PREDICTION):.0f}",
                         f"{statistics.median(figures['afresh wall']):.1f} → "
                         f"{statistics.median(figures['kept wall']):.1f}",
                         f"{statistics.median(figures['statement afresh']):.1f} → "
                         f"{statistics.median(figures['statement kept']):.1f}",
                         f"{statistics.median(figures['afresh stall']):.1f} → "
                         f"{statistics.median(figures['kept stall']):.1f} (max "
                         f"{max(figures['kept stall']):.1f})"])
            print(f"  {accounts:,} accounts: afresh {figures['afresh']}, kept {figures['kept']}",
                  flush=True)
    print(table(["accounts", "seal CPU ms, afresh", "seal CPU ms, kept", "kept ÷ afresh",
                 "µs a prediction (÷ its share of a seal)", "seal wall ms",
                 "a statement, CPU ms", "longest loop stall ms, afresh → kept"], rows))
    print(f"load at the end {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
