"""One user's statement proof on a big log: every leaf hash (before) against stored nodes
(after), in one run, interleaved, with the rows each read and the CPU time each took.

The log is bench/audit_bench.py's file (1M events by default), COPIED to a temporary
directory first: the file given is only read. On the copy the service's own sealer signs a
checkpoint at the head, which also builds the `merkle_nodes` table (timed: what an old log
pays once, in the background). Then, for the account with the most events and a typical one:
- before: what ledger/statement_proof.py did, every event's hash up to the checkpoint read
  (pages of 5,000) and the user's paths computed over all the leaves;
- after: `inclusion_proofs_stored`, the same paths from stored nodes and the user's blocks;
  the proofs are asserted byte for byte equal;
- the whole statement now (`build_statement`), rows read;
and `audit_nodes` (the audit's check of the table: O(n/128) hashes, not O(n)).

Run: .venv/bin/python bench/statement_proof_bench.py [--db FILE] [--rounds 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from benchlib import BENCH, ROOT, machine, table

sys.path.insert(0, str(ROOT))

from events import Database
from events.merkle import inclusion_proofs, leaf_hash
from ledger import ledger_store, merkle_nodes
from ledger.checkpoints import Checkpointer, Signer
from ledger.statement_proof import build_statement


class CountingDb:
    """The store's real read connection, counting the rows each read returns."""

    def __init__(self, db: Any) -> None:
        self.db, self.rows = db, 0

    async def fetchall(self, query: str, params: Any = ()) -> list[dict[str, Any]]:
        rows = await self.db.fetchall(query, params)
        self.rows += len(rows)
        return rows  # type: ignore[no-any-return]

    async def fetchone(self, query: str, params: Any = ()) -> dict[str, Any] | None:
        row = await self.db.fetchone(query, params)
        self.rows += row is not None
        return row  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)


class CountingStore:
    def __init__(self, store: Any, db: CountingDb) -> None:
        self.store, self.db = store, db

    def read_db(self) -> CountingDb:
        return self.db

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread: the reader's too
    return usage.ru_utime + usage.ru_stime


async def measured(work: Awaitable[Any]) -> tuple[Any, float, float]:
    """The result, wall and CPU seconds of `work` (a coroutine: nothing runs until awaited)."""
    gc.collect()
    wall, cpu = time.perf_counter(), cpu_s()
    result = await work
    return result, time.perf_counter() - wall, cpu_s() - cpu


async def before(db: CountingDb, size: int, indexes: list[int]) -> dict[int, list[bytes]]:
    """The code before stored nodes: every hash up to the checkpoint, then the paths."""
    hashes: list[str] = []
    position = 0
    while position < size:
        page = await db.fetchall("SELECT position, hash FROM events WHERE position > ? AND "
                                 "position <= ? ORDER BY position LIMIT ?",
                                 (position, size, 5_000))
        if not page:
            break
        hashes.extend(str(r["hash"]) for r in page)
        position = int(page[-1]["position"])
    return await asyncio.to_thread(
        inclusion_proofs, [leaf_hash(bytes.fromhex(h)) for h in hashes], indexes)


async def run(source: Path, rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="statement-proof-bench-") as scratch:
        copy = Path(scratch) / "ledger.db"
        shutil.copyfile(source, copy)  # the source is only read
        wal = source.with_name(source.name + "-wal")
        if wal.exists() and wal.stat().st_size:  # commits not yet in the main file
            shutil.copyfile(wal, copy.with_name(copy.name + "-wal"))
        store = ledger_store(copy)
        await store.open()
        try:
            return await measure(store, Signer.from_file(Path(scratch) / "key"), copy, rounds)
        finally:
            await store.close()


async def measure(store: Any, signer: Signer, copy: Path, rounds: int) -> dict[str, Any]:
    checkpointer = Checkpointer(store, signer)
    sealed, seal_wall, seal_cpu = await measured(checkpointer.seal())
    db = store.read_db()
    size = sealed.position
    nodes = await db.fetchone("SELECT COUNT(*) AS n FROM merkle_nodes")
    counts = await db.fetchall("SELECT stream_id, COUNT(*) AS n FROM events GROUP BY stream_id "
                               "ORDER BY n DESC, stream_id")
    accounts = [c for c in counts if c["stream_id"].startswith("account-")]
    users = {"most events": accounts[0], "typical (median)": accounts[len(accounts) // 2]}
    out: dict[str, Any] = {"events": size, "merkle_nodes": int(nodes["n"]) if nodes else 0,
                           "first_seal_wall_s": seal_wall, "first_seal_cpu_s": seal_cpu,
                           "users": {}}
    for label, account in users.items():
        user_id = int(account["stream_id"].removeprefix("account-"))
        indexes = [int(r["position"]) - 1 for r in await db.fetchall(
            "SELECT position FROM events WHERE stream_id = ? AND position <= ? "
            "ORDER BY position", (account["stream_id"], size))]
        figures: dict[str, list[float]] = {k: [] for k in (
            "before_wall_s", "before_cpu_s", "after_wall_s", "after_cpu_s",
            "statement_wall_s", "statement_cpu_s")}
        rows: dict[str, int] = {}
        for _ in range(rounds):  # interleaved: the machine's noise falls on both alike
            old_db, new_db, whole_db = CountingDb(db), CountingDb(db), CountingDb(db)
            # After first: the garbage of a million leaves (before's) is not freed on its time.
            new, wall, cpu = await measured(
                merkle_nodes.inclusion_proofs_stored(new_db, size, indexes))
            figures["after_wall_s"].append(wall)
            figures["after_cpu_s"].append(cpu)
            old, wall, cpu = await measured(before(old_db, size, indexes))
            figures["before_wall_s"].append(wall)
            figures["before_cpu_s"].append(cpu)
            assert new == old, "stored nodes gave another proof"
            _, wall, cpu = await measured(build_statement(
                CountingStore(store, whole_db), checkpointer, user_id))  # type: ignore[arg-type]
            figures["statement_wall_s"].append(wall)
            figures["statement_cpu_s"].append(cpu)
            rows = {"before": old_db.rows, "after": new_db.rows, "statement": whole_db.rows}
        out["users"][label] = {"user_id": user_id, "user_events": len(indexes), "rows": rows,
                               **{k: min(v) for k, v in figures.items()}}
    audit_db = await Database.connect(copy, readonly=True)
    try:
        await audit_db.execute("ATTACH DATABASE ? AS live", (f"file:{copy}?mode=ro",))
        verdict, wall, cpu = await measured(merkle_nodes.audit_nodes(audit_db))
    finally:
        await audit_db.close()
    assert verdict.problem is None, verdict.problem
    out |= {"audit_nodes_checked": verdict.checked, "audit_nodes_wall_s": wall,
            "audit_nodes_cpu_s": cpu}
    return out


def report(result: dict[str, Any]) -> str:
    rows = []
    for label, user in result["users"].items():
        r = user["rows"]
        rows.append([f"{label}: {user['user_events']:,} events", "proofs, every leaf (before)",
                     f"{r['before']:,}", f"{user['before_wall_s']:.3f}",
                     f"{user['before_cpu_s']:.3f}", ""])
        rows.append(["", "proofs, stored nodes (after)", f"{r['after']:,}",
                     f"{user['after_wall_s']:.3f}", f"{user['after_cpu_s']:.3f}",
                     f"{r['before'] / r['after']:.0f}x fewer rows, "
                     f"{user['before_cpu_s'] / user['after_cpu_s']:.1f}x less CPU"])
        rows.append(["", "whole statement now", f"{r['statement']:,}",
                     f"{user['statement_wall_s']:.3f}", f"{user['statement_cpu_s']:.3f}",
                     f"before: ~{r['statement'] - r['after'] + r['before']:,} rows"])
    return "\n".join([
        f"log: {result['events']:,} events; merkle_nodes: {result['merkle_nodes']:,} rows; "
        f"first seal (checkpoint + nodes from zero): {result['first_seal_wall_s']:.1f} s wall, "
        f"{result['first_seal_cpu_s']:.1f} s CPU",
        table(["user", "what", "rows read", "wall s (min)", "CPU s (min)", "ratio"], rows),
        f"audit_nodes: {result['audit_nodes_checked']:,} nodes checked in "
        f"{result['audit_nodes_wall_s']:.2f} s wall, {result['audit_nodes_cpu_s']:.2f} s CPU",
        machine()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", type=Path, default=BENCH / ".cache" / "audit-1000000.db",
                        help="the log (bench/audit_bench.py builds it); only read")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not args.db.exists():
        sys.exit(f"{args.db} is missing: run bench/audit_bench.py first (it builds the log)")
    result = asyncio.run(run(args.db, args.rounds))
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
