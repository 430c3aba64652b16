"""Throughput: ML Cabinet's charged predictions against aiohttp's own hello-world, one run.

Both servers run as subprocesses on 127.0.0.1: `bench/hello_aiohttp.py` (a bare handler
that reads the body and answers a small JSON) and ML Cabinet (`main.py`, SQLite WAL,
synchronous=FULL by default). Each round starts both on fresh files, opens one user per
client with 1,000,000 credits and a bearer token, then for each connection count drives the
two back to back (the order rotates by round) with POST /api/v1/predict of 10 numbers
(model 1, the seed model, 10 credits) for a fixed time. The ratio ours / hello is taken per
round, so the machine's noise moves both sides alike.

The load comes from the project's own async generator (bench/http_bench.py `drive`: an
aiohttp client, on uvloop when present) in this process, on the same 2 cores, or with
`--load wrk` from `wrk -t1` (Debian's package, the issue's tool: bench/wrk_load.py). The
Python generator caps hello-world well below what wrk reaches. After the load: every user's
balance must equal 1,000,000 − 10 × its 200s with nothing held (under wrk, which counts
200s for all users together, the sum over users), and `python -m ledger audit` must pass.

Round 3 (branch procs) adds: `--workers 1 2` runs hello and ours with each number of
processes (`main.py --workers N`, `hello_aiohttp.py --workers N`, SO_REUSEPORT on both);
`--stores sqlite postgres` runs ours on a throwaway PostgreSQL 15 cluster too (tests/
pgcluster.py, fsync on, synchronous_commit on: durable defaults), a fresh database per
round; `--gc-off` adds ours with Python's cyclic GC disabled (bench/gc_off_main.py, bench
only); `--quiet-background` adds ours without the background verifier and without
checkpoint sealing during the cells, and without each alone (bench only). Server CPU is
summed over each server's process tree, and for PostgreSQL the cluster's own processes
(postmaster and backends) are reported beside it. Each round also measures the commit
cost: a 4 KiB write + fdatasync in the scratch folder (SQLite's commit under
synchronous=FULL is one such sync of its WAL), and a one-row INSERT committed alone on
PostgreSQL; PostgreSQL's commits per request are its
WAL's commit records (pg_waldump).

Round 4 (branch lockq): `--before DIR` runs the other checkout with each `--workers` count
too, and each round prints every worker's write-lock line from its log (taken, waited,
longest wait, held, jobs a transaction: events/sqlite.py logs it at close).

Run: .venv/bin/python bench/throughput_bench.py [--rounds 3] [--connections 1 16 50]
     [--seconds 5] [--synchronous FULL] [--before DIR] [--json out.json]
     [--workers 1 2] [--stores sqlite postgres] [--gc-off] [--quiet-background]
     [--load wrk] [--asyncio]

Round 13 adds `--asyncio`: ours on asyncio's own event loop (ML_CABINET_UVLOOP=0), beside
ours on uvloop, to measure that lever alone.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from benchlib import BENCH, PYTHON, ROOT, ServerProcess, Spread, free_port, load, machine, table
from http_bench import (
    Cell,
    Check,
    Contender,
    Ours,
    User,
    audit_ours,
    check_balances,
    drive,
    open_users,
    payloads,
)

sys.path.insert(0, str(ROOT / "tests"))
from pgcluster import PgCluster, find_bin_dir
from wrk_load import Spent, check_totals, wrk_drive

WARMUP_REQUESTS = 200
# --quiet-background: no background verifier, no checkpoint sealed within a cell.
NO_VERIFIER = {"ML_CABINET_VERIFY_RATE": "0"}
NO_SEALING = {"ML_CABINET_CHECKPOINT_EVERY": "100000000", "ML_CABINET_CHECKPOINT_SECONDS": "86400"}
QUIET_BACKGROUND = NO_VERIFIER | NO_SEALING
ASYNCIO_LOOP = {"ML_CABINET_UVLOOP": "0"}  # --asyncio: main.py on asyncio's own loop
FSYNC_PROBES = 200
MAX_REQUESTS = 10**7  # cells are bounded by time; this only bounds a runaway loop


def label(base: str, workers: int) -> str:
    return base if workers == 1 else f"{base}×{workers}"


class Hello(Contender):
    """aiohttp's ceiling on this machine: the same route, no work behind it."""

    name = "hello"
    predict_path = "/api/v1/predict"
    health_path = "/healthz"

    def __init__(self, workdir: Path, args: argparse.Namespace, workers: int = 1) -> None:
        self.workers = workers
        self.name = label("hello", workers)
        super().__init__(workdir, args)

    def server(self) -> ServerProcess:
        return ServerProcess("aiohttp hello-world",
                             [PYTHON, str(BENCH / "hello_aiohttp.py"), "--port", str(self.port),
                              "--workers", str(self.workers)],
                             env={}, log_path=self.log, health_url=self.base + self.health_path)

    async def open_user(self, http: aiohttp.ClientSession, username: str, *,
                        register: bool = True) -> str:
        return "hello-token"

    async def top_up(self, http: aiohttp.ClientSession, token: str, amount: int) -> None:
        return None


class Before(Ours):
    """ML Cabinet as it was: main.py of another checkout (`--before DIR`, e.g. a
    `git worktree add` of the commit before the levers), in the same run."""

    name = "before"
    root = Path()

    def __init__(self, workdir: Path, args: argparse.Namespace, workers: int = 1) -> None:
        self.workers = workers
        self.name = label("before", workers)
        super().__init__(workdir, args)

    def server(self) -> ServerProcess:
        server = super().server()
        server.cwd = self.root
        server.command[1] = str(self.root / "main.py")
        if self.workers > 1:  # main.py --workers exists since round 3 (branch procs)
            server.command += ["--workers", str(self.workers)]
            server.ready_text = f"serving from {self.workers} workers"
        return server


class Cabinet(Ours):
    """ML Cabinet (main.py) with N workers, on SQLite or on a PostgreSQL database."""

    def __init__(self, workdir: Path, args: argparse.Namespace, workers: int = 1,
                 url: str | None = None, script: str = "main.py", tag: str = "",
                 env: dict[str, str] | None = None) -> None:
        self.workers, self.url, self.script, self.extra_env = workers, url, script, env or {}
        self.name = label(("pg" if url else "ours") + tag, workers)
        super().__init__(workdir, args)
        self.signing_key = workdir / f"{self.name}.signing-key"

    def server(self) -> ServerProcess:
        server = super().server()
        server.command[1] = self.script
        server.command += ["--workers", str(self.workers)]
        server.env |= self.extra_env
        if self.url:
            server.command.remove("--db")
            server.command.remove(str(self.db))
            server.env |= {"ML_CABINET_DATABASE_URL": self.url,
                           "ML_CABINET_SIGNING_KEY_FILE": str(self.signing_key)}
        if self.workers > 1:  # /healthz answers once the first worker serves; wait for all
            server.ready_text = f"serving from {self.workers} workers"
        return server


class BeforeCabinet(Cabinet):
    """`--before`'s checkout on PostgreSQL (Round 4, branch pgtrips): main.py of that
    checkout, in its folder, on a database of its own."""

    def server(self) -> ServerProcess:
        self.script = str(Before.root / "main.py")
        server = super().server()
        server.cwd = Before.root
        return server


@dataclass
class Round:
    cells: list[Cell]
    checks: list[Check]
    cpu_us: dict[tuple[str, int], float]  # server CPU time per request, by (server, clients)
    db_cpu_us: dict[tuple[str, int], float]  # PostgreSQL's own processes, the same way
    xacts: dict[tuple[str, int], float]  # PostgreSQL commits (WAL records) per request
    fsync_ms: float  # one 4 KiB write + fdatasync in the scratch folder
    pg_commit_ms: float  # one one-row INSERT committed alone on PostgreSQL (0: not run)


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU time used so far by a process and its live descendants (Linux
    /proc). On a shared machine this moves far less than req/s: it counts the servers' own
    work, not their waits."""
    parents: dict[int, list[int]] = collections.defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                parents[ppid].append(int(entry.name))
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        with contextlib.suppress(OSError):
            total += proc_cpu(pid)
        todo += parents.get(pid, [])
    return total


def cpu_seconds(server: ServerProcess) -> float:
    assert server.proc is not None
    return tree_cpu_seconds(server.proc.pid)


def fsync_ms(folder: Path) -> float:
    """The cost of one durable commit on this disk: a 4 KiB write and fdatasync, median."""
    path = folder / "fsync-probe"
    times = []
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        for _ in range(FSYNC_PROBES):
            started = time.perf_counter()
            os.write(fd, b"x" * 4096)
            os.fdatasync(fd)
            times.append(time.perf_counter() - started)
    finally:
        os.close(fd)
        path.unlink()
    return sorted(times)[len(times) // 2] * 1000


class Postgres:
    """One durable throwaway cluster for the run; a database per contender and round."""

    def __init__(self) -> None:
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise SystemExit("PostgreSQL is missing (initdb, pg_ctl): `make postgres`")
        self.cluster = PgCluster.start(bin_dir, durable=True)

    def postmaster(self) -> int:
        return int((self.cluster.data / "postmaster.pid").read_text().split()[0])

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.postmaster())

    async def settings(self) -> str:
        conn = await asyncpg.connect(self.cluster.url())
        try:
            rows = await conn.fetch("SELECT name, setting FROM pg_settings WHERE name IN "
                                    "('fsync', 'synchronous_commit', 'wal_sync_method', "
                                    "'full_page_writes', 'commit_delay') ORDER BY name")
        finally:
            await conn.close()
        return ", ".join(f"{r['name']}={r['setting']}" for r in rows)

    async def wal_lsn(self) -> str:
        conn = await asyncpg.connect(self.cluster.url())
        try:
            return str(await conn.fetchval("SELECT pg_current_wal_insert_lsn()::text"))
        finally:
            await conn.close()

    async def commits_since(self, start: str) -> int | None:
        """Commit records written to the WAL since `start`: the durable commits (each
        waits for its WAL flush, fsync on). Counted by pg_waldump, so exact, not sampled."""
        end = await self.wal_lsn()
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = await asyncio.to_thread(
            subprocess.run,
            [*prefix, str(self.cluster.bin_dir / "pg_waldump"), "--stats=record",
             "-p", str(self.cluster.data / "pg_wal"), "-s", start, "-e", end],
            capture_output=True, text=True, timeout=120, check=False)
        for line in done.stdout.splitlines():
            if line.startswith("Transaction/COMMIT "):
                return int(line.split()[1])
        print(f"  (pg_waldump counted no commits: {done.stderr.strip()[:200]})", flush=True)
        return None  # e.g. a checkpoint recycled the first segment meanwhile

    async def commit_ms(self) -> float:
        """A one-row INSERT committed alone, median: PostgreSQL's commit cost (its fsync
        of the WAL plus one round trip)."""
        url = await self.cluster.create_database()
        conn = await asyncpg.connect(url)
        times = []
        try:
            await conn.execute("CREATE TABLE probe (n bigint)")
            for n in range(FSYNC_PROBES):
                started = time.perf_counter()
                await conn.execute("INSERT INTO probe VALUES ($1)", n)
                times.append(time.perf_counter() - started)
        finally:
            await conn.close()
            await self.cluster.drop_database(url)
        return sorted(times)[len(times) // 2] * 1000

    def destroy(self) -> None:
        self.cluster.destroy()


def contenders_for(args: argparse.Namespace, workdir: Path,
                   urls: dict[int, str]) -> list[Contender]:
    contenders: list[Contender] = []
    for workers in args.workers:
        contenders.append(Hello(workdir, args, workers))
        if "sqlite" in args.stores:
            contenders.append(Cabinet(workdir, args, workers))
        if "postgres" in args.stores:
            contenders.append(Cabinet(workdir, args, workers, url=urls[workers]))
    if args.gc_off:
        contenders.append(Cabinet(workdir, args, 1, script=str(BENCH / "gc_off_main.py"),
                                  tag="-gc-off"))
    if args.quiet_background:
        contenders += [Cabinet(workdir, args, 1, tag="-quiet", env=QUIET_BACKGROUND),
                       Cabinet(workdir, args, 1, tag="-noverify", env=NO_VERIFIER),
                       Cabinet(workdir, args, 1, tag="-noseal", env=NO_SEALING)]
    if args.asyncio:
        contenders.append(Cabinet(workdir, args, 1, tag="-asyncio", env=ASYNCIO_LOOP))
    if args.before:
        Before.root = args.before.resolve()
        if "sqlite" in args.stores:
            contenders += [Before(workdir, args, workers) for workers in args.workers]
        if "postgres" in args.stores:  # the checkout before, on a database of its own
            contenders.append(BeforeCabinet(workdir, args, 1, url=urls[0], tag="-before"))
    return contenders


async def run_round(number: int, args: argparse.Namespace, workdir: Path,
                    pg: Postgres | None) -> Round:
    # Key 0: the `--before` checkout's own database.
    urls = ({w: await pg.cluster.create_database() for w in [*args.workers, 0]} if pg else {})
    contenders = contenders_for(args, workdir, urls)
    for contender in contenders:
        contender.port = free_port()
        contender.base = f"http://127.0.0.1:{contender.port}"
    turn = number % len(contenders)
    order = contenders[turn:] + contenders[:turn]  # the order rotates by round
    bodies = payloads()
    servers = [c.server() for c in order]
    cells: list[Cell] = []
    cpu_us: dict[tuple[str, int], float] = {}
    db_cpu_us: dict[tuple[str, int], float] = {}
    xacts: dict[tuple[str, int], float] = {}
    cabinets = [c for c in order if isinstance(c, Ours)]
    spent: dict[str, Spent] = {}  # --load wrk: the 200s wrk counted, by server
    try:
        for server in servers:
            server.start()
        users = {c.name: [User("hello-token", 0)] for c in order if isinstance(c, Hello)}
        for contender in cabinets:
            users[contender.name] = (await open_users(contender, max(args.connections),
                                                      "load"))[0]
        for contender in order:  # imports, caches, the client's pool
            await drive(contender, users[contender.name], 4, WARMUP_REQUESTS, 10, bodies)
        for connections in args.connections:
            for contender, server in zip(order, servers, strict=True):
                on_pg = pg is not None and getattr(contender, "url", None)
                before = cpu_seconds(server)
                db_before = pg.cpu_seconds() if pg and on_pg else 0.0
                lsn_before = await pg.wal_lsn() if pg and on_pg else ""
                if args.load == "wrk":
                    cell = await wrk_drive(contender, users[contender.name], connections,
                                           args.seconds, bodies, workdir,
                                           spent.setdefault(contender.name, Spent()))
                else:
                    cell = await drive(contender, users[contender.name], connections,
                                       MAX_REQUESTS, args.seconds, bodies)
                cells.append(cell)
                key, requests = (contender.name, connections), max(1, cell.requests)
                used = cpu_us[key] = (cpu_seconds(server) - before) / requests * 1e6
                extra = ""
                if pg and on_pg:
                    db_cpu_us[key] = (pg.cpu_seconds() - db_before) / requests * 1e6
                    commits = await pg.commits_since(lsn_before)
                    extra = f"  postgres CPU {db_cpu_us[key]:6.0f} µs/req"
                    if commits is not None:
                        xacts[key] = commits / requests
                        extra += f"  {xacts[key]:.3f} commits/req"
                print(f"  round {number + 1} c={connections:<3} {contender.name:<12} "
                      f"{cell.rps:8.1f} req/s  p50 {cell.p50_ms:6.2f} ms  "
                      f"p99 {cell.p99_ms:6.2f} ms  server CPU {used:6.0f} µs/req{extra}  "
                      f"{cell.statuses}", flush=True)
        checks = [await check_totals(c, users[c.name], spent[c.name]) if args.load == "wrk"
                  else await check_balances(c, users[c.name]) for c in cabinets]
    finally:
        for server in servers:
            server.stop()
    for contender in cabinets:  # what each worker's store said at close (round 4, lockq)
        for line in contender.log.read_text(errors="replace").splitlines():
            if "write lock:" in line:
                print(f"  round {number + 1} {contender.name}: "
                      f"{line.split(' INFO ', 1)[-1]}", flush=True)
    for contender, check in zip(cabinets, checks, strict=True):
        check.store_check = audit_cabinet(contender)
        print(f"  round {number + 1} {contender.name}: balances "
              f"{check.users_checked - len(check.balances_wrong)}/{check.users_checked} "
              f"right; {check.store_check}", flush=True)
    sync_ms = fsync_ms(workdir)
    commit_ms = await pg.commit_ms() if pg else 0.0
    print(f"  round {number + 1} commit cost: fdatasync of 4 KiB {sync_ms:.2f} ms"
          + (f", PostgreSQL one-row commit {commit_ms:.2f} ms" if pg else ""), flush=True)
    if pg:
        for url in urls.values():
            await pg.cluster.drop_database(url)
    return Round(cells, checks, cpu_us, db_cpu_us, xacts, sync_ms, commit_ms)


def audit_cabinet(contender: Ours) -> str:
    url = getattr(contender, "url", None)
    if not url:
        return audit_ours(contender.db)
    done = subprocess.run([PYTHON, "-m", "ledger", "audit", "--database-url", url, "--quiet"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode == 0 and "AUDIT PASSED" in done.stdout:
        return "passed: python -m ledger audit (PostgreSQL)"
    return f"FAILED (exit {done.returncode}): {done.stdout[-500:]} {done.stderr[-500:]}"


def names(rounds: list[Round]) -> list[str]:
    seen: dict[str, None] = {}
    for cell in rounds[0].cells:
        seen.setdefault(cell.contender)
    return sorted(seen, key=lambda n: (workers_of(n), not n.startswith("hello"), n))


def workers_of(name: str) -> int:
    return int(name.split("×")[1]) if "×" in name else 1


def summarize(rounds: list[Round], connections: list[int]) -> dict[str, Any]:
    rows = []
    for level in connections:
        by_name: dict[str, list[Cell]] = collections.defaultdict(list)
        for r in rounds:
            for cell in r.cells:
                if cell.concurrency == level:
                    by_name[cell.contender].append(cell)
        for name in names(rounds):
            cells, same = by_name[name], by_name[label("hello", workers_of(name))]
            ratios = [o.rps / h.rps for o, h in zip(cells, same, strict=True) if h.rps]
            ratios_1 = [o.rps / h.rps for o, h in zip(cells, by_name["hello"], strict=True)
                        if h.rps]
            key = (name, level)
            total = [r.cpu_us[key] + r.db_cpu_us.get(key, 0.0) for r in rounds]
            cpu_ratios = [r.cpu_us["hello", level] / t for r, t in zip(rounds, total,
                                                                      strict=True) if t]
            db = [r.db_cpu_us[key] for r in rounds if key in r.db_cpu_us]
            xacts = [r.xacts[key] for r in rounds if key in r.xacts]
            rows.append([level, name, Spread.of([c.rps for c in cells]).show(0),
                         Spread.of(ratios).show(3), Spread.of(ratios_1).show(3),
                         Spread.of([r.cpu_us[key] for r in rounds]).show(0),
                         Spread.of(db).show(0) if db else "",
                         Spread.of(cpu_ratios).show(3),
                         Spread.of([c.p50_ms for c in cells]).show(2),
                         Spread.of([c.p99_ms for c in cells]).show(2),
                         Spread.of(xacts).show(3) if xacts else "",
                         sum(c.requests for c in cells), sum(c.errors for c in cells)])
    return {"rows": rows, "checks": [c for r in rounds for c in r.checks],
            "fsync_ms": Spread.of([r.fsync_ms for r in rounds]).show(2),
            "pg_commit_ms": Spread.of([r.pg_commit_ms for r in rounds]).show(2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 16, 50])
    parser.add_argument("--seconds", type=float, default=5, help="per cell")
    parser.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL")
    parser.add_argument("--before", type=Path,
                        help="also run main.py of this checkout (the code before), same run")
    parser.add_argument("--workers", type=int, nargs="+", default=[1],
                        help="run hello and ours with each of these numbers of processes")
    parser.add_argument("--stores", nargs="+", choices=["sqlite", "postgres"],
                        default=["sqlite"])
    parser.add_argument("--gc-off", action="store_true",
                        help="also ours (1 worker, SQLite) with the cyclic GC disabled")
    parser.add_argument("--quiet-background", action="store_true",
                        help="also ours (1 worker, SQLite) without the background verifier "
                             "and checkpoint sealing, and without each alone, to see what "
                             "they add to the tail")
    parser.add_argument("--asyncio", action="store_true",
                        help="also ours (1 worker, SQLite) on asyncio's loop, not uvloop "
                             "(ML_CABINET_UVLOOP=0): what uvloop is worth alone")
    parser.add_argument("--keep", type=Path, help="keep databases and logs in this folder")
    parser.add_argument("--json", type=Path, help="write the summary here too")
    parser.add_argument("--load", choices=["python", "wrk"], default="python",
                        help="the load generator: the project's own (per-user balance "
                             "check) or wrk -t1, the issue's (bench/wrk_load.py)")
    args = parser.parse_args(argv)
    args.baseline_pool_size = 0  # Contender reads it; no baseline here
    assert 1 <= args.rounds <= 20 and all(1 <= c <= 256 for c in args.connections)
    assert 0 < args.seconds <= 120 and all(1 <= w <= 16 for w in args.workers)
    if 1 not in args.workers:
        args.workers.insert(0, 1)  # hello with one process is every ratio's reference
    uvloop_used = False
    with contextlib.suppress(ImportError):
        import uvloop  # the client's own overhead, shared by both servers, kept small

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        uvloop_used = True
    client = ("wrk -t1 (Debian's)" if args.load == "wrk" else
              f"the project's async generator{' on uvloop' if uvloop_used else ''}")
    print(f"throughput_bench: {machine()}; load {load()}; synchronous={args.synchronous}; "
          f"client: {client}; "
          f"{args.rounds} rounds × connections {args.connections} × {args.seconds:g} s",
          flush=True)
    rounds = []
    pg = Postgres() if "postgres" in args.stores else None
    try:
        if pg:
            print(f"PostgreSQL: {asyncio.run(pg.settings())}", flush=True)
        with tempfile.TemporaryDirectory(prefix="mlc-throughput-") as scratch:
            base = args.keep or Path(scratch)
            for number in range(args.rounds):
                workdir = base / f"round{number + 1}"
                workdir.mkdir(parents=True, exist_ok=True)
                for old in workdir.iterdir():
                    if old.is_file():
                        old.unlink()
                rounds.append(asyncio.run(run_round(number, args, workdir, pg)))
    finally:
        if pg:
            pg.destroy()
    summary = summarize(rounds, args.connections)
    print()
    print(table(["connections", "server", "req/s median (min–max)",
                 "÷ hello, same processes", "÷ hello, 1 process", "server CPU µs/req",
                 "postgres CPU µs/req", "hello's CPU ÷ (server + postgres)",
                 "p50 ms", "p99 ms", "pg commits/req", "requests", "non-200"],
                summary["rows"]))
    print(f"commit cost: fdatasync of 4 KiB {summary['fsync_ms']} ms"
          + (f"; PostgreSQL one-row commit {summary['pg_commit_ms']} ms" if pg else ""))
    print(f"load at the end {load()}")
    ok = all(c.ok for c in summary["checks"])
    print(f"correctness: {sum(c.ok for c in summary['checks'])}/{len(summary['checks'])} "
          "server-rounds passed (balances and python -m ledger audit)")
    if args.json:
        args.json.write_text(json.dumps({"rows": summary["rows"], "ok": ok,
                                         "fsync_ms": summary["fsync_ms"],
                                         "pg_commit_ms": summary["pg_commit_ms"]}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
