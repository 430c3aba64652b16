"""PostgreSQL scale-out: charged predictions per second with 1, 2 and 4 app processes on one
PostgreSQL and with one process on SQLite, in one run, as ratios; and the events per second
the store's append path sustains at batch sizes 1, 8 and 64.

Both parts start a throwaway PostgreSQL cluster (tests/pgcluster.py: initdb + pg_ctl on a
temporary directory, Unix socket only) with fsync on, the durability SQLite has with
synchronous=FULL.

- append: store-level, no HTTP and no projections. 16 tasks in one process, each
  appending a batch of 1, 8 or 64 events to a stream of its own per call (one job); the store's
  writer groups concurrent jobs into one commit (at most events.postgres.MAX_BATCH jobs), as
  in the service; then 1 event per call with 1, 8 and 64 appenders (group commit batches).
  The same on a SQLite file for reference, and 16 appenders split over two processes on one
  PostgreSQL database (1 and 8 events per call): their writers take turns at the one lock.
- http: `python main.py` processes on 127.0.0.1 against one database (ML_CABINET_DATABASE_URL),
  `--clients` client tasks spread over them round-robin, each its own user, each sending POST
  /predict of 10 numbers (model 1, 10 credits) with its own Idempotency-Key, for `--seconds`
  or `--requests`. Charged = 200 replies. Afterwards every user's balance must be its top-up
  minus 10 × its successes and `python -m ledger audit` must pass, or the bench exits 1.

Rounds interleave the cells; figures are the median (min–max) of the rounds.

Run: .venv/bin/python bench/pg_bench.py [--part append http] [--rounds 3] [--seconds 10]
     [--clients 32] [--processes 1 2 4] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
from benchlib import PYTHON, ROOT, ServerProcess, Spread, free_port, load, machine, table

sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from pgcluster import PgCluster, find_bin_dir

import events.postgres as pg_store
from events import Event, EventCodec, PostgresEventStore, SQLiteEventStore

BATCH_SIZES = (1, 8, 64)
# (events per append, concurrent appenders): batch sizes within one job at 16 appenders, then
# group commit batch sizes (jobs per commit, capped at events.postgres.MAX_BATCH) at 1 event.
APPEND_CELLS = [*((b, 16) for b in BATCH_SIZES), *((1, a) for a in BATCH_SIZES if a != 16)]
# The same 16 appenders split over two processes: their writers take turns at the one lock.
TWO_PROCESS_CELLS = [(1, 16), (8, 16)]
WORKER_TIMEOUT_S = 300
ITEMS = [float(i) for i in range(10)]
COST_CREDITS = 10  # model 1 charges 1 credit per item
INITIAL_CREDITS = 1_000_000
PASSWORD = "bench-password-long-enough"
AUDIT_TIMEOUT_S = 600
CLIENT_TIMEOUT = aiohttp.ClientTimeout(total=60)


@dataclass(frozen=True, kw_only=True)
class Appended(Event, type_name="BenchAppended"):
    n: int


def bench_codec() -> EventCodec:
    codec = EventCodec()
    codec.register(Appended)
    return codec


# -- the append path -------------------------------------------------------------------------

@dataclass(frozen=True)
class AppendCell:
    store: str
    batch: int
    appenders: int
    events: int
    commits: int
    seconds: float

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    @property
    def jobs_per_commit(self) -> float:
        return self.events / self.batch / self.commits if self.commits else 0.0


async def append_cell(store: PostgresEventStore | SQLiteEventStore, name: str, batch: int,
                      appenders: int, max_events: int, seconds: float) -> AppendCell:
    """`appenders` tasks append `batch` events per call until the events or the time run out."""
    commits = 0
    counter = "_run_batch" if isinstance(store, PostgresEventStore) else "_commit_batch"
    original = getattr(store, counter)

    async def counting(jobs: list[Any]) -> Any:
        nonlocal commits
        commits += 1
        return await original(jobs)

    setattr(store, counter, counting)
    appended = 0
    deadline = time.perf_counter() + seconds
    run = uuid.uuid4().hex[:8]

    async def appender(k: int) -> None:
        nonlocal appended
        version = 0
        stream = f"bench-{run}-{k}"
        while appended < max_events and time.perf_counter() < deadline:
            events = [Appended(n=version + i) for i in range(batch)]
            await store.append(stream, version, events)
            version += batch
            appended += batch

    started = time.perf_counter()
    await asyncio.gather(*(appender(k) for k in range(appenders)))
    elapsed = time.perf_counter() - started
    setattr(store, counter, original)
    return AppendCell(name, batch, appenders, appended, commits, elapsed)


async def worker(url: str, batch: int, appenders: int, max_events: int, seconds: float,
                 start_at: float) -> None:
    """One appending process of a two-process cell: starts at `start_at` (wall clock) so the
    processes overlap, and prints its cell as JSON."""
    store = PostgresEventStore(url, bench_codec())
    await store.open()
    try:
        await asyncio.sleep(max(0.0, start_at - time.time()))  # a start line, not a sync
        cell = await append_cell(store, "worker", batch, appenders, max_events, seconds)
    finally:
        await store.close()
    print(json.dumps(asdict(cell)))


def two_process_cell(url: str, batch: int, appenders: int, args: argparse.Namespace
                     ) -> AppendCell:
    start_at = time.time() + 3.0  # both have opened their stores by then
    command = [PYTHON, str(Path(__file__)), "--worker", url, "--batch", str(batch),
               "--appenders", str(appenders // 2), "--seconds", str(args.seconds),
               "--max-events", str(args.max_events // 2), "--start-at", str(start_at)]
    workers = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
               for _ in range(2)]
    try:
        outputs = [w.communicate(timeout=WORKER_TIMEOUT_S)[0] for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
    cells = [AppendCell(**json.loads(out.strip().splitlines()[-1])) for out in outputs]
    return AppendCell("PostgreSQL, 2 processes", batch, appenders,
                      sum(c.events for c in cells), sum(c.commits for c in cells),
                      max(c.seconds for c in cells))


async def append_part(cluster: PgCluster, workdir: Path, args: argparse.Namespace
                      ) -> dict[str, Any]:
    cells: dict[tuple[str, int, int], list[AppendCell]] = {}
    for round_ in range(args.rounds):
        for batch, appenders in TWO_PROCESS_CELLS:
            url = await cluster.create_database()
            cell = await asyncio.to_thread(two_process_cell, url, batch, appenders, args)
            cells.setdefault((cell.store, batch, appenders), []).append(cell)
            print(f"  append round {round_ + 1}, {cell.store}, {batch} events x {appenders} "
                  f"appenders: {cell.events_per_s:,.0f} events/s", flush=True)
            await cluster.drop_database(url)
        for batch, appenders in APPEND_CELLS:
            url = await cluster.create_database()
            stores: list[tuple[str, PostgresEventStore | SQLiteEventStore]] = [
                ("PostgreSQL", PostgresEventStore(url, bench_codec())),
                ("SQLite", SQLiteEventStore(
                    workdir / f"append-{round_}-{batch}-{appenders}.db", bench_codec())),
            ]
            for name, store in stores:
                await store.open()
                try:
                    cell = await append_cell(store, name, batch, appenders, args.max_events,
                                             args.seconds)
                finally:
                    await store.close()
                cells.setdefault((name, batch, appenders), []).append(cell)
                print(f"  append round {round_ + 1}, {name}, {batch} events x {appenders} "
                      f"appenders: {cell.events_per_s:,.0f} events/s, "
                      f"{cell.jobs_per_commit:.1f} jobs/commit", flush=True)
            await cluster.drop_database(url)
    rows, out = [], []
    for (name, batch, appenders), runs in sorted(cells.items()):
        events = Spread.of([c.events_per_s for c in runs])
        commits = Spread.of([c.commits / c.seconds for c in runs])
        jobs = Spread.of([c.jobs_per_commit for c in runs])
        rows.append([name, batch, appenders, events.show(), commits.show(), jobs.show(1)])
        out.append({"store": name, "batch": batch, "appenders": appenders,
                    "events_per_s": asdict(events),
                    "commits_per_s": asdict(commits), "jobs_per_commit": asdict(jobs)})
    print(f"\nappend path: concurrent appenders in one process (or split over two), each "
          f"call one job of `events per append` events on its own stream; group commit of up "
          f"to {pg_store.MAX_BATCH} jobs (PostgreSQL)\n")
    print(table(["store", "events per append", "appenders", "events/s", "commits/s",
                 "jobs per commit"], rows))
    return {"cells": out}


# -- charged predictions over HTTP -----------------------------------------------------------

def server_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ML_CABINET_")}
    env["ML_CABINET_CHEAP_HASHING"] = "1"
    return env


def start_servers(count: int, where: str | Path, workdir: Path, tag: str
                  ) -> list[ServerProcess]:
    servers = []
    try:
        for n in range(count):
            port = free_port()
            env = server_env()
            command = [PYTHON, "main.py", "--host", "127.0.0.1", "--port", str(port)]
            if isinstance(where, str):
                env["ML_CABINET_DATABASE_URL"] = where
                env["ML_CABINET_SIGNING_KEY_FILE"] = str(workdir / f"{tag}.signing-key")
            else:
                command += ["--db", str(where)]
            server = ServerProcess(f"{tag}-{n}", command, env=env,
                                   log_path=workdir / f"{tag}-{n}.log",
                                   health_url=f"http://127.0.0.1:{port}/healthz")
            servers.append(server)
            server.start()
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return servers


def base_url(server: ServerProcess) -> str:
    return server.health_url.removesuffix("/healthz") + "/api/v1"


async def post(session: aiohttp.ClientSession, url: str, body: dict[str, Any],
               token: str | None = None, key: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if key:
        headers["Idempotency-Key"] = key
    async with session.post(url, json=body, headers=headers) as reply:
        return reply.status, await reply.json(content_type=None)


@dataclass(frozen=True)
class HttpCell:
    setting: str
    charged: int
    other: dict[str, int]
    seconds: float
    correct: bool
    audit: str

    @property
    def charged_per_s(self) -> float:
        return self.charged / self.seconds if self.seconds else 0.0


async def drive(servers: list[ServerProcess], clients: int, max_requests: int,
                seconds: float) -> tuple[list[tuple[str, int]], int, dict[str, int], float]:
    """Sign up one user per client, then predict until the requests or the time run out.
    Returns (token, successes) per client, total successes, other statuses, elapsed."""
    bases = [base_url(s) for s in servers]
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session:
        tokens = []
        for k in range(clients):
            base = bases[k % len(bases)]
            name = f"b{uuid.uuid4().hex[:12]}"
            status, _ = await post(session, f"{base}/auth/register",
                                   {"username": name, "password": PASSWORD})
            assert status == 201, status
            status, body = await post(session, f"{base}/auth/login",
                                      {"username": name, "password": PASSWORD})
            assert status == 200, body
            token = str(body["access_token"])
            status, body = await post(session, f"{base}/balance/top-up",
                                      {"amount": INITIAL_CREDITS}, token, uuid.uuid4().hex)
            assert status == 201, body
            tokens.append(token)
        successes = [0] * clients
        other: dict[str, int] = {}
        sent = 0
        deadline = time.perf_counter() + seconds

        async def client(k: int) -> None:
            nonlocal sent
            url = f"{bases[k % len(bases)]}/predict"
            while sent < max_requests and time.perf_counter() < deadline:
                sent += 1
                status, _ = await post(session, url, {"model_id": 1, "data": ITEMS},
                                       tokens[k], uuid.uuid4().hex)
                if status == 200:
                    successes[k] += 1
                else:
                    other[str(status)] = other.get(str(status), 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(client(k) for k in range(clients)))
        elapsed = time.perf_counter() - started
    return list(zip(tokens, successes, strict=True)), sum(successes), other, elapsed


async def balances_match(base: str, results: list[tuple[str, int]]) -> bool:
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session:
        for token, successes in results:
            async with session.get(f"{base}/balance",
                                   headers={"Authorization": f"Bearer {token}"}) as reply:
                body = await reply.json()
            expected = INITIAL_CREDITS - COST_CREDITS * successes
            if body != {"balance": expected, "held": 0, "available": expected}:
                return False
    return True


def audit(where: str | Path) -> str:
    target = ["--database-url", where] if isinstance(where, str) else ["--db", str(where)]
    done = subprocess.run([PYTHON, "-m", "ledger", "audit", *target, "--quiet"], cwd=ROOT,
                          env=server_env(), capture_output=True, text=True,
                          timeout=AUDIT_TIMEOUT_S, check=False)
    return "clean" if done.returncode == 0 else f"FAILED ({done.returncode}): {done.stdout}"


async def http_cell(cluster: PgCluster, workdir: Path, setting: str, processes: int,
                    args: argparse.Namespace, round_: int) -> HttpCell:
    url = None
    where: str | Path
    if setting == "SQLite":
        where = workdir / f"http-{round_}.db"
    else:
        url = where = await cluster.create_database()
    servers = start_servers(processes, where, workdir, f"{setting}-{processes}-{round_}")
    try:
        results, charged, other, elapsed = await drive(servers, args.clients, args.requests,
                                                       args.seconds)
        correct = await balances_match(base_url(servers[0]), results)
    finally:
        for server in servers:
            server.stop()
    verdict = audit(where)
    if url is not None:
        await cluster.drop_database(url)
    name = f"{setting}, {processes} process{'es' if processes > 1 else ''}"
    return HttpCell(name, charged, other, elapsed, correct, verdict)


async def http_part(cluster: PgCluster, workdir: Path, args: argparse.Namespace
                    ) -> dict[str, Any]:
    settings = [("SQLite", 1)] + [("PostgreSQL", n) for n in args.processes]
    cells: dict[str, list[HttpCell]] = {}
    for round_ in range(args.rounds):
        order = settings[round_ % len(settings):] + settings[:round_ % len(settings)]
        for setting, processes in order:
            cell = await http_cell(cluster, workdir, setting, processes, args, round_)
            cells.setdefault(cell.setting, []).append(cell)
            print(f"  http round {round_ + 1}, {cell.setting}: {cell.charged_per_s:,.0f} "
                  f"charged/s, other replies {cell.other or 'none'}, balances "
                  f"{'right' if cell.correct else 'WRONG'}, audit {cell.audit}", flush=True)
    reference = f"PostgreSQL, {args.processes[0]} process" + (
        "es" if args.processes[0] > 1 else "")
    per_round_reference = [c.charged_per_s for c in cells[reference]]
    rows, out = [], []
    for name, runs in cells.items():
        rate = Spread.of([c.charged_per_s for c in runs])
        ratio = Spread.of([c.charged_per_s / r if r else 0.0
                           for c, r in zip(runs, per_round_reference, strict=True)])
        ok = all(c.correct and c.audit == "clean" for c in runs)
        rows.append([name, rate.show(), ratio.show(2, "×"), "yes" if ok else "NO"])
        out.append({"setting": name, "charged_per_s": asdict(rate), "ratio": asdict(ratio),
                    "correct": ok, "other": [c.other for c in runs]})
    print(f"\ncharged predictions: {args.clients} clients over all processes, POST /predict "
          f"of 10 numbers, fsync on (PostgreSQL) / synchronous=FULL (SQLite)\n")
    print(table(["setting", "charged predictions/s", f"ratio to {reference}",
                 "balances + audit"], rows))
    return {"clients": args.clients, "reference": reference, "cells": out}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise SystemExit("PostgreSQL is missing (initdb, pg_ctl): `make postgres` installs it")
    print(f"pg_bench: {machine()}; load {load()}", flush=True)
    results: dict[str, Any] = {}
    cluster = PgCluster.start(bin_dir, durable=True)
    try:
        with tempfile.TemporaryDirectory(prefix="mlc-pgbench-") as scratch:
            if "append" in args.part:
                results["append"] = await append_part(cluster, Path(scratch), args)
            if "http" in args.part:
                results["http"] = await http_part(cluster, Path(scratch), args)
    finally:
        cluster.destroy()
    print(f"\nload at the end {load()}")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", nargs="+", choices=["append", "http"],
                        default=["append", "http"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0, help="per cell")
    parser.add_argument("--max-events", type=int, default=200_000, help="per append cell")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=20_000, help="per http cell")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--json")
    # One appending process of a two-process cell (started by this script itself).
    parser.add_argument("--worker", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--appenders", type=int, default=8, help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        asyncio.run(worker(args.worker, args.batch, args.appenders, args.max_events,
                           args.seconds, args.start_at))
        return 0
    results = asyncio.run(main_async(args))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    wrong = [c for c in results.get("http", {}).get("cells", []) if not c["correct"]]
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
