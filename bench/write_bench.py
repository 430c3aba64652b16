"""The write of a charged one-write prediction, in process (no HTTP), on SQLite and on
PostgreSQL: µs of CPU a prediction and SQL statements a prediction, for this checkout and
another (`--before DIR`), interleaved round by round in one run.

Each cell is a fresh process: 16 clients × 200 predictions of 10 numbers on model 1 (the
loop of bench/profile_predict.py), on a new SQLite file (WAL, synchronous=FULL) or a new
database on a throwaway PostgreSQL cluster with fsync on (tests/pgcluster.py). CPU is the
app process's (time.process_time); on PostgreSQL also the server's (every process of the
cluster, from /proc), which is where its commit cost goes. Statements are counted in a
separate traced cell (the counting costs CPU): sqlite3's trace callback on SQLite, calls
into PgDatabase on PostgreSQL; round trips on PostgreSQL are calls into asyncpg's Connection
(the adapter may send several statements in one).

Run: .venv/bin/python bench/write_bench.py --before /tmp/writebatch/before [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CLIENTS, PREDICTIONS = 16, 200


def _cluster_cpu_s(postmaster: int) -> float:
    """utime + stime of the postmaster and its children, in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(pid) == postmaster or int(fields[1]) == postmaster:
            total += int(fields[11]) + int(fields[12])
    return total / tick


TRIPS = "~trips"  # the counter's key for round trips (not a statement kind)


def _count_pg(counter: collections.Counter[str]) -> None:
    """Statements: calls into PgDatabase (what the code asks for). Round trips: calls into
    asyncpg's Connection (the writer's, the pool's, and the pool's reset on release), which
    differ once the adapter coalesces writes."""
    import asyncpg

    from events import pgdatabase

    for name in ("execute", "fetchall", "executescript"):
        original = getattr(pgdatabase.PgDatabase, name)

        def counted(self: Any, query: str, *args: Any, _o: Any = original) -> Any:
            counter[query.split()[0].upper()] += 1  # fetchone is one fetchall
            return _o(self, query, *args)

        setattr(pgdatabase.PgDatabase, name, counted)
    for name in ("execute", "fetch", "fetchrow", "fetchval", "executemany"):
        trip = getattr(asyncpg.Connection, name)

        def tripped(self: Any, *args: Any, _o: Any = trip, **kwargs: Any) -> Any:
            counter[TRIPS] += 1
            return _o(self, *args, **kwargs)

        setattr(asyncpg.Connection, name, tripped)


def _count_sqlite(counter: collections.Counter[str]) -> None:
    import sqlite3

    connect = sqlite3.connect

    def tracing(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)
        conn.set_trace_callback(lambda sql: counter.update([sql.split()[0].upper()]))
        return conn

    sqlite3.connect = tracing  # type: ignore[assignment]


async def _cell(where: str, postmaster: int | None, counter: collections.Counter[str] | None
                ) -> dict[str, Any]:
    from ledger import LedgerService, Passwords, UserService
    from ledger.store import ledger_store_at
    from ml import MLModelManager, MLService, default_models

    store = ledger_store_at(where)
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
                result = await ml.process_task(user_id, 1, [1.0] * 10)
                assert result.status == "completed", result.status

        if counter is not None:
            counter.clear()
        server = _cluster_cpu_s(postmaster) if postmaster else 0.0
        wall, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(client(user_id) for user_id in ids))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        server = (_cluster_cpu_s(postmaster) - server) if postmaster else 0.0
        for user_id in ids:  # every prediction charged once: 10 items × 1 credit
            balance = await ledger.get_balance(user_id)
            assert balance.balance_credits == 1_000_000 - 10 * PREDICTIONS, balance
    finally:
        await store.close()
    n = CLIENTS * PREDICTIONS
    trips = counter.pop(TRIPS, None) if counter else None
    return {"per_s": n / wall, "cpu_us": cpu / n * 1e6, "server_us": server / n * 1e6,
            "statements": (sum(counter.values()) / n) if counter else None,
            "trips": trips / n if trips else None,
            "kinds": {k: v / n for k, v in counter.most_common()} if counter else None}


def worker(args: argparse.Namespace) -> None:
    sys.path.insert(0, args.code)
    counter: collections.Counter[str] | None = None
    if args.trace:
        counter = collections.Counter()
        (_count_pg if args.where.startswith("postgresql") else _count_sqlite)(counter)
    print(json.dumps(asyncio.run(_cell(args.where, args.postmaster, counter))))


def run_cell(code: Path, where: str, postmaster: int | None, trace: bool) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", "--code", str(code),
               "--where", where]
    if postmaster:
        command += ["--postmaster", str(postmaster)]
    if trace:
        command.append("--trace")
    # The checkout's own modules first; this file's directory is not on the path.
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=code,
                          env={**os.environ, "PYTHONPATH": str(code)}, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"cell failed in {code}: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def _fresh(cluster: Any) -> str:
    url: str = await cluster.create_database()
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="another checkout, measured alongside")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--code", help=argparse.SUPPRESS)
    parser.add_argument("--where", help=argparse.SUPPRESS)
    parser.add_argument("--postmaster", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    sys.path.insert(0, str(ROOT / "tests"))
    from pgcluster import PgCluster, find_bin_dir

    checkouts = [("ours", ROOT)] + ([("before", args.before.resolve())] if args.before else [])
    stores = args.stores.split(",")
    cluster = None
    if "postgres" in stores:
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise SystemExit("PostgreSQL is missing (initdb, pg_ctl): `make postgres`")
        cluster = PgCluster.start(bin_dir, durable=True)
    print(f"load {os.getloadavg()}", flush=True)
    figures: dict[tuple[str, str], list[dict[str, Any]]] = collections.defaultdict(list)
    try:
        with tempfile.TemporaryDirectory(prefix="mlc-writebench-") as scratch:
            postmaster = None
            if cluster is not None:
                postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
            cells = [(name, code, store) for store in stores for name, code in checkouts]
            for round_ in range(args.rounds + 1):  # the last round counts statements
                trace = round_ == args.rounds
                shift = round_ % len(cells)
                for name, code, store in cells[shift:] + cells[:shift]:
                    where = (asyncio.run(_fresh(cluster)) if store == "postgres"
                             else str(Path(scratch) / f"{name}-{round_}.db"))
                    cell = run_cell(code, where, postmaster if store == "postgres" else None,
                                    trace)
                    key = (store, name)
                    if trace:
                        figures[key][0]["statements"] = cell["statements"]
                        figures[key][0]["trips"] = cell["trips"]
                        figures[key][0]["kinds"] = cell["kinds"]
                    else:
                        figures[key].append(cell)
                    print(f"round {round_ + 1} {store:8} {name:6} "
                          + ("traced: " + f"{cell['statements']:.1f} statements" if trace else
                             f"{cell['cpu_us']:6.0f} µs CPU  server {cell['server_us']:5.0f} µs"
                             f"  {cell['per_s']:6.0f}/s"), flush=True)
    finally:
        if cluster is not None:
            cluster.destroy()
    print(f"load {os.getloadavg()}\n")
    print("| store | checkout | µs CPU a prediction, rounds | median | ÷ before | server µs "
          "(PostgreSQL) | predictions/s | statements | round trips (PostgreSQL) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for store in stores:
        base = statistics.median(c["cpu_us"] for c in figures.get((store, "before"), [{
            "cpu_us": float("nan")}]))
        for name, _ in checkouts:
            cells = figures[(store, name)]
            cpu = statistics.median(c["cpu_us"] for c in cells)
            rounds = " / ".join(f"{c['cpu_us']:.0f}" for c in cells)
            print(f"| {store} | {name} | {rounds} "
                  f"| {cpu:.0f} | {cpu / base:.2f} | "
                  f"{statistics.median(c['server_us'] for c in cells):.0f} | "
                  f"{statistics.median(c['per_s'] for c in cells):.0f} | "
                  f"{cells[0]['statements']:.1f} | "
                  + (f"{cells[0]['trips']:.1f} |" if cells[0].get("trips") else " |"))
    for (store, name), cells in sorted(figures.items()):
        print(f"{store} {name}: {json.dumps(cells[0]['kinds'])}")


if __name__ == "__main__":
    main()
