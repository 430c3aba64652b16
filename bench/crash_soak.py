"""Crash soak: SIGKILLs of app processes under keyed load, on SQLite and on PostgreSQL.

Two `python main.py` processes on 127.0.0.1 share one ledger (a SQLite file; a database of a
throwaway PostgreSQL cluster with fsync on). Clients send top-ups and predictions, each under
its own Idempotency-Key, retrying what they do not know; one process is SIGKILLed at a random
moment (every other kill while a task holds credits) and started again, `--kills` times or
until `--seconds` run out. Then every key is sent once more and the log is read: the figures
are kills, acknowledged operations, lost (an acknowledged outcome missing from the log or a
key without exactly one effect), applied twice, changed outcomes, and the audit's exit code.
The soak itself is tests/faults/soak.py, the same code as the slow test test_crash_soak.py.

Exit 0 only if every store's run is clean.

Run: .venv/bin/python bench/crash_soak.py [--store sqlite postgres] [--kills 100]
     [--seconds 900] [--processes 2] [--seed N] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchlib import ROOT, load, machine, table

sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "faults"))

from fault_harness import Servers
from pgcluster import PgCluster, find_bin_dir, fresh_database
from soak import SoakFigures, run_soak

# pg-web's owner lease: short, so holds of a killed process are swept within seconds.
PG_ENV = {"ML_CABINET_LEASE_S": "2", "ML_CABINET_SWEEP_S": "0.5"}


async def soak_store(store: str, args: argparse.Namespace, seed: int) -> SoakFigures:
    with tempfile.TemporaryDirectory(prefix=f"mlc-soak-{store}-") as scratch:
        folder = Path(scratch)
        if store == "sqlite":
            servers = Servers(folder)
            try:
                return await run_soak(servers, folder / "ledger.db", processes=args.processes,
                                      kills=args.kills, seconds=args.seconds, seed=seed)
            finally:
                await servers.close()
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise SystemExit("PostgreSQL is missing (initdb, pg_ctl): `make postgres`")
        cluster = PgCluster.start(bin_dir, durable=True)
        servers = Servers(folder, env=PG_ENV)
        try:
            async with fresh_database(cluster) as url:
                return await run_soak(servers, url, processes=args.processes,
                                      kills=args.kills, seconds=args.seconds, seed=seed)
        finally:
            await servers.close()
            cluster.destroy()


async def main_async(args: argparse.Namespace) -> list[SoakFigures]:
    print(f"crash_soak: {machine()}; load {load()}; seed {args.seed}", flush=True)
    results = []
    for store in args.store:
        figures = await soak_store(store, args, args.seed)
        print(f"  {figures.store}: {figures.kills} kills in {figures.seconds} s, "
              f"{'clean' if figures.clean else 'NOT CLEAN'}", flush=True)
        for problem in figures.problems:
            print(f"    problem: {problem}")
        results.append(figures)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", nargs="+", choices=["sqlite", "postgres"],
                        default=["sqlite", "postgres"])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=900.0, help="per store")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--seed", type=int, default=random.randrange(2**32))
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    results = asyncio.run(main_async(args))
    rows: list[list[Any]] = [
        [f.store, f.processes, f.kills, f.interrupted_tasks, f.keys, f.acknowledged,
         f.unknown_replies, f.lost, f.applied_twice, f.changed_outcome,
         "clean" if f.audit_exit == 0 else f"exit {f.audit_exit}", f.seconds] for f in results]
    print()
    print(table(["store", "processes", "SIGKILLs", "tasks interrupted", "keys",
                 "acknowledged", "409/503, retried", "lost", "applied twice",
                 "changed outcome", "audit", "seconds"], rows))
    print(f"\nseed {args.seed}; load at the end {load()}")
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(f) for f in results], indent=2))
    return 0 if all(f.clean for f in results) else 1


if __name__ == "__main__":
    sys.exit(main())
