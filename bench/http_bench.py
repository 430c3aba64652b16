"""HTTP: ML Cabinet against the FastAPI baseline, the same load, interleaved rounds.

Both servers run as subprocesses on 127.0.0.1 (ours: `main.py`; theirs: uvicorn, 1 worker,
bench/baseline_fastapi.py) with the same durability (SQLite WAL, synchronous=FULL). Each round
starts both on fresh files, opens one user per client with 1,000,000 credits, then, for each
concurrency level, drives ours and theirs back to back (the order rotates by round) with
POST predict of 10 numbers (model 1, 10 credits). After the load:

- correctness: every user's final balance must be its initial balance − 10 × its successes
  (ours: with nothing left held), and `python -m ledger audit` must pass on our file;
- the overdraw probe: a user with credits for 5 predictions fires 64 at once; a correct
  server accepts exactly 5 and ends at 0;
- the fresh-token probe: 16 clients each log in and use the new token at once, 10 times; a
  server that reads its own writes answers every one of those requests.

One more cell per round, GET of the health endpoint by 16 clients, is each framework's floor
(no database).

Run: .venv/bin/python bench/http_bench.py [--rounds 3] [--concurrency 1 16 64]
     [--requests 1500] [--seconds 20] [--synchronous FULL] [--baseline-pool-size 100]
     [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from benchlib import (
    BENCH,
    PYTHON,
    ROOT,
    ServerProcess,
    Spread,
    free_port,
    load,
    machine,
    percentile,
    table,
)

ITEMS = 10
COST_CREDITS = 10            # model 1 costs 1 credit per valid item
INITIAL_CREDITS = 1_000_000  # the largest single top-up both servers accept
PROBE_PREDICTIONS = 5        # the probe user can pay for this many predictions…
PROBE_BURST = 64             # …and sends this many at once
PROBES_PER_ROUND = 3
WARMUP_REQUESTS = 40
SETUP_RETRIES = 5
FRESH_TOKEN_CLIENTS = 16     # clients that each log in and use the token at once…
FRESH_TOKEN_CYCLES = 10      # …this many times
CLIENT_TIMEOUT_S = 60
AUDIT_TIMEOUT_S = 300


# -- the contenders ------------------------------------------------------------------------

class Contender:
    """How to start one server and speak its API."""

    name = ""
    predict_path = ""
    health_path = ""

    def __init__(self, workdir: Path, args: argparse.Namespace) -> None:
        self.db = workdir / f"{self.name}.db"
        self.log = workdir / f"{self.name}.log"
        self.synchronous = args.synchronous
        self.pool_size = args.baseline_pool_size
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"

    def server(self) -> ServerProcess:
        raise NotImplementedError

    async def open_user(self, http: aiohttp.ClientSession, username: str, *,
                        register: bool = True) -> str:
        """Register (unless told not to) and log in; the bearer token."""
        raise NotImplementedError

    async def top_up(self, http: aiohttp.ClientSession, token: str, amount: int) -> None:
        raise NotImplementedError

    async def balance(self, http: aiohttp.ClientSession, token: str) -> tuple[int, int]:
        """(balance, held)."""
        raise NotImplementedError


class UnexpectedStatus(RuntimeError):
    def __init__(self, reply: aiohttp.ClientResponse, body: bytes) -> None:
        super().__init__(f"{reply.method} {reply.url} gave {reply.status}: {body[:300]!r}")
        self.status = reply.status


def client_session(base: str | None, connector: aiohttp.BaseConnector | None = None,
                   timeout: aiohttp.ClientTimeout | None = None) -> aiohttp.ClientSession:
    """An API client: it authenticates with its bearer token and keeps no cookies."""
    return aiohttp.ClientSession(base, connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                                 timeout=timeout or aiohttp.ClientTimeout(total=CLIENT_TIMEOUT_S))


async def _json(reply: aiohttp.ClientResponse, expected: int) -> Any:
    body = await reply.read()
    if reply.status != expected:
        raise UnexpectedStatus(reply, body)
    return json.loads(body)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Ours(Contender):
    name = "ours"
    predict_path = "/api/v1/predict"
    health_path = "/healthz"

    def server(self) -> ServerProcess:
        return ServerProcess(
            "ML Cabinet", [PYTHON, "main.py", "--port", str(self.port), "--db", str(self.db)],
            env={"ML_CABINET_CHEAP_HASHING": "1", "ML_CABINET_SYNCHRONOUS": self.synchronous},
            log_path=self.log, health_url=self.base + self.health_path)

    async def open_user(self, http: aiohttp.ClientSession, username: str, *,
                        register: bool = True) -> str:
        creds = {"username": username, "password": "benchmark-password"}
        if register:
            async with http.post("/api/v1/auth/register", json=creds) as reply:
                await _json(reply, 201)
        async with http.post("/api/v1/auth/login", json=creds) as reply:
            return str((await _json(reply, 200))["access_token"])

    async def top_up(self, http: aiohttp.ClientSession, token: str, amount: int) -> None:
        async with http.post("/api/v1/balance/top-up", json={"amount": amount},
                             headers=_bearer(token)) as reply:
            await _json(reply, 201)

    async def balance(self, http: aiohttp.ClientSession, token: str) -> tuple[int, int]:
        async with http.get("/api/v1/balance", headers=_bearer(token)) as reply:
            body = await _json(reply, 200)
        return int(body["balance"]), int(body["held"])


class Baseline(Contender):
    name = "baseline"
    predict_path = "/predict"
    health_path = "/health"

    def server(self) -> ServerProcess:
        return ServerProcess(
            "FastAPI baseline",
            [PYTHON, "-m", "uvicorn", "--app-dir", str(BENCH), "baseline_fastapi:app",
             "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"],
            env={"BASELINE_DB": str(self.db), "BASELINE_SYNCHRONOUS": self.synchronous,
                 "BASELINE_POOL_SIZE": str(self.pool_size)},
            log_path=self.log, health_url=self.base + self.health_path)

    async def open_user(self, http: aiohttp.ClientSession, username: str, *,
                        register: bool = True) -> str:
        creds = {"username": username, "password": "benchmark-password"}
        if register:
            async with http.post("/register", json=creds) as reply:
                await _json(reply, 201)
        async with http.post("/login", json=creds) as reply:
            return str((await _json(reply, 200))["access_token"])

    async def top_up(self, http: aiohttp.ClientSession, token: str, amount: int) -> None:
        async with http.post("/top-up", json={"amount": amount}, headers=_bearer(token)) as reply:
            await _json(reply, 201)

    async def balance(self, http: aiohttp.ClientSession, token: str) -> tuple[int, int]:
        async with http.get("/balance", headers=_bearer(token)) as reply:
            return int((await _json(reply, 200))["balance"]), 0


# -- load ----------------------------------------------------------------------------------

def payloads(count: int = 256, seed: int = 7) -> list[bytes]:
    """Request bodies made up front, so the client spends its time sending, not encoding."""
    rng = random.Random(seed)
    return [json.dumps({"model_id": 1, "data": [round(rng.uniform(-1e3, 1e3), 3)
                                                for _ in range(ITEMS)]}).encode()
            for _ in range(count)]


@dataclass
class User:
    token: str
    initial_credits: int
    successes: int = 0


@dataclass
class Cell:
    contender: str
    concurrency: int
    requests: int
    seconds: float
    statuses: dict[str, int]
    p50_ms: float
    p99_ms: float
    kind: str = "POST predict"

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != "200")


async def drive(contender: Contender, users: list[User], concurrency: int, max_requests: int,
                max_seconds: float, bodies: list[bytes], *, health: bool = False) -> Cell:
    """`concurrency` clients, client k as user k, until max_requests or max_seconds.

    With `health`, GET the health endpoint instead: the framework's floor, no database."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=CLIENT_TIMEOUT_S)
    statuses: collections.Counter[str] = collections.Counter()
    latencies: list[float] = []
    issued = 0
    url = contender.base + (contender.health_path if health else contender.predict_path)

    async with client_session(None, connector, timeout) as http:
        deadline = time.perf_counter() + max_seconds

        async def client(k: int) -> None:
            nonlocal issued
            user = users[k % len(users)]
            headers = {**_bearer(user.token), "Content-Type": "application/json"}
            while issued < max_requests and time.perf_counter() < deadline:
                body = bodies[issued % len(bodies)]
                issued += 1
                started = time.perf_counter()
                try:
                    async with http.request("GET" if health else "POST", url,
                                            data=None if health else body,
                                            headers=headers) as reply:
                        await reply.read()
                        status = str(reply.status)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    status = type(exc).__name__
                latencies.append(time.perf_counter() - started)
                statuses[status] += 1
                if status == "200" and not health:
                    user.successes += 1

        started = time.perf_counter()
        await asyncio.gather(*(client(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - started
    return Cell(contender.name, concurrency, len(latencies), elapsed, dict(statuses),
                percentile(latencies, 0.50) * 1000, percentile(latencies, 0.99) * 1000,
                "GET health" if health else "POST predict")


@dataclass
class Probe:
    accepted: int
    final_balance: int
    statuses: dict[str, int]

    @property
    def correct(self) -> bool:
        return self.accepted == PROBE_PREDICTIONS and self.final_balance == 0


async def overdraw_probe(contender: Contender, username: str, body: bytes) -> Probe:
    """A user who can pay for PROBE_PREDICTIONS sends PROBE_BURST predictions at once."""
    connector = aiohttp.TCPConnector(limit=PROBE_BURST)
    timeout = aiohttp.ClientTimeout(total=CLIENT_TIMEOUT_S)
    async with client_session(contender.base, connector, timeout) as http:
        token = await contender.open_user(http, username)
        await contender.top_up(http, token, PROBE_PREDICTIONS * COST_CREDITS)
        gate = asyncio.Event()
        headers = {**_bearer(token), "Content-Type": "application/json"}

        async def one() -> str:
            await gate.wait()
            try:
                async with http.post(contender.predict_path, data=body,
                                     headers=headers) as reply:
                    await reply.read()
                    return str(reply.status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                return type(exc).__name__

        burst = [asyncio.create_task(one()) for _ in range(PROBE_BURST)]
        await asyncio.sleep(0.05)  # every task is parked on the gate
        gate.set()
        statuses = collections.Counter(await asyncio.gather(*burst))
        final, _ = await contender.balance(http, token)
    return Probe(statuses.get("200", 0), final, dict(statuses))


async def fresh_token_probe(contender: Contender) -> dict[str, int]:
    """Clients log in and use the new token at once: a server that reads its own writes
    answers 200 every time. Returns the statuses of the requests made with fresh tokens."""
    statuses: collections.Counter[str] = collections.Counter()
    connector = aiohttp.TCPConnector(limit=FRESH_TOKEN_CLIENTS)
    async with client_session(contender.base, connector) as http:
        await asyncio.gather(*(contender.open_user(http, f"fresh{k}")
                               for k in range(FRESH_TOKEN_CLIENTS)))

        async def client(k: int) -> None:
            for _ in range(FRESH_TOKEN_CYCLES):
                token = await contender.open_user(http, f"fresh{k}", register=False)
                try:
                    await contender.balance(http, token)
                    statuses["200"] += 1
                except UnexpectedStatus as error:
                    statuses[str(error.status)] += 1

        await asyncio.gather(*(client(k) for k in range(FRESH_TOKEN_CLIENTS)))
    return dict(statuses)


# -- correctness ---------------------------------------------------------------------------

@dataclass
class Check:
    contender: str
    users_checked: int = 0
    balances_wrong: list[str] = field(default_factory=list)
    store_check: str = ""

    @property
    def ok(self) -> bool:
        return not self.balances_wrong and self.store_check.startswith("passed")


async def check_balances(contender: Contender, users: list[User]) -> Check:
    check = Check(contender.name, users_checked=len(users))
    async with client_session(contender.base) as http:
        for index, user in enumerate(users):
            balance, held = await contender.balance(http, user.token)
            expected = user.initial_credits - COST_CREDITS * user.successes
            if balance != expected or held != 0:
                check.balances_wrong.append(f"user {index}: balance {balance} held {held}, "
                                            f"expected {expected} held 0")
    return check


def audit_ours(db: Path) -> str:
    """`python -m ledger audit`: exit 0 and AUDIT PASSED, or what it said."""
    done = subprocess.run([PYTHON, "-m", "ledger", "audit", "--db", str(db), "--quiet"],
                          cwd=ROOT, capture_output=True, text=True, timeout=AUDIT_TIMEOUT_S,
                          check=False)
    events = next((line.split(":", 1)[1].strip() for line in done.stdout.splitlines()
                   if line.startswith("events in the log")), "?")
    if done.returncode == 0 and "AUDIT PASSED" in done.stdout:
        return f"passed: python -m ledger audit, {events} events"
    return f"FAILED (exit {done.returncode}): {done.stdout[-500:]} {done.stderr[-500:]}"


def check_baseline_file(db: Path) -> str:
    """The baseline has no audit; the best it offers is balance = sum of its transactions."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        negative = conn.execute("SELECT COUNT(*), COALESCE(MIN(balance), 0) FROM users "
                                "WHERE balance < 0").fetchone()
        mismatched = conn.execute(
            "SELECT COUNT(*) FROM users u WHERE u.balance != (SELECT COALESCE(SUM(amount), 0) "
            "FROM transactions t WHERE t.user_id = u.id)").fetchone()[0]
    verdict = "passed" if mismatched == 0 and negative[0] == 0 else "FAILED"
    return (f"{verdict}: {mismatched} balances differ from their transactions, "
            f"{negative[0]} negative balances (lowest {negative[1]})")


# -- one round -----------------------------------------------------------------------------

@dataclass
class Round:
    cells: list[Cell]
    probes: dict[str, list[Probe]]
    checks: list[Check]
    fresh: dict[str, dict[str, int]]


async def open_users(contender: Contender, count: int, prefix: str
                     ) -> tuple[list[User], int]:
    """One user per client, each topped up; and how many top-ups made right after the login
    were refused with 401 (a stale read, see fresh_token_probe: retried, then reported)."""
    refused = 0
    async with client_session(contender.base) as http:
        async def one(k: int) -> User:
            nonlocal refused
            token = await contender.open_user(http, f"{prefix}{k}")
            for attempt in range(SETUP_RETRIES):
                try:
                    await contender.top_up(http, token, INITIAL_CREDITS)
                    break
                except UnexpectedStatus as error:
                    if error.status != 401 or attempt == SETUP_RETRIES - 1:
                        raise
                    refused += 1
                    await asyncio.sleep(0.05)
            return User(token, INITIAL_CREDITS)

        users: list[User] = []
        for start in range(0, count, 8):  # a few at a time: setup is not what is measured
            users += await asyncio.gather(*(one(k) for k in range(start,
                                                                  min(count, start + 8))))
    return users, refused


async def run_round(number: int, args: argparse.Namespace, workdir: Path) -> Round:
    contenders = [kind(workdir, args) for kind in CONTENDERS]
    turn = number % len(contenders)
    contenders = contenders[turn:] + contenders[:turn]  # the order rotates by round
    bodies = payloads()
    servers = [c.server() for c in contenders]
    cells: list[Cell] = []
    probes: dict[str, list[Probe]] = {c.name: [] for c in contenders}
    fresh: dict[str, dict[str, int]] = {}
    checks: list[Check] = []
    try:
        for server in servers:
            server.start()
        users: dict[str, list[User]] = {}
        setup_refused: dict[str, int] = {}
        for contender in contenders:
            users[contender.name], setup_refused[contender.name] = await open_users(
                contender, max(args.concurrency), "load")
        for contender in contenders:  # warm up: imports, caches, connection pools
            await drive(contender, users[contender.name], 4, WARMUP_REQUESTS, 10, bodies)
        for concurrency in args.concurrency:
            for contender in contenders:
                cell = await drive(contender, users[contender.name], concurrency,
                                   args.requests, args.seconds, bodies)
                cells.append(cell)
                print(f"  round {number + 1} c={concurrency:<3} {contender.name:<8} "
                      f"{cell.rps:8.1f} req/s  p50 {cell.p50_ms:6.1f} ms  "
                      f"p99 {cell.p99_ms:6.1f} ms  {cell.statuses}", flush=True)
        for contender in contenders:
            cell = await drive(contender, users[contender.name], args.floor_clients,
                               args.floor_requests, args.seconds, bodies, health=True)
            cells.append(cell)
            print(f"  round {number + 1} GET health c={args.floor_clients:<3} "
                  f"{contender.name:<8} {cell.rps:8.1f} req/s  p50 {cell.p50_ms:6.1f} ms",
                  flush=True)
        for contender in contenders:
            for k in range(PROBES_PER_ROUND):
                probes[contender.name].append(
                    await overdraw_probe(contender, f"probe{k}", bodies[k]))
            fresh[contender.name] = await fresh_token_probe(contender)
            if setup_refused[contender.name]:  # counted with the probe: the same stale read
                fresh[contender.name]["401 in setup"] = setup_refused[contender.name]
            checks.append(await check_balances(contender, users[contender.name]))
    finally:
        for server in servers:
            server.stop()
    for check, contender in zip(checks, contenders, strict=True):
        check.store_check = (audit_ours(contender.db) if isinstance(contender, Ours)
                             else check_baseline_file(contender.db))
    for check in checks:
        print(f"  round {number + 1} {check.contender:<8} balances: "
              f"{check.users_checked - len(check.balances_wrong)}/{check.users_checked} right; "
              f"{check.store_check}", flush=True)
        for wrong in check.balances_wrong[:5]:
            print(f"    {wrong}")
    for name, found in probes.items():
        print(f"  round {number + 1} {name:<8} overdraw probe: accepted "
              f"{[p.accepted for p in found]} of {PROBE_BURST} (can pay for "
              f"{PROBE_PREDICTIONS}); final balances {[p.final_balance for p in found]}",
              flush=True)
    for name, statuses in fresh.items():
        print(f"  round {number + 1} {name:<8} fresh-token probe: {statuses}", flush=True)
    return Round(cells, probes, checks, fresh)


# -- report --------------------------------------------------------------------------------

CONTENDERS: list[type[Contender]] = [Ours, Baseline]


def summarize(rounds: list[Round], args: argparse.Namespace) -> dict[str, Any]:
    names = [kind.name for kind in CONTENDERS]
    compared = [("ours", "baseline")]
    rows, ratios = [], {}
    kinds = [("POST predict", level) for level in args.concurrency]
    for kind, level in [*kinds, ("GET health", args.floor_clients)]:
        by_name: dict[str, list[Cell]] = collections.defaultdict(list)
        for r in rounds:
            for cell in r.cells:
                if cell.concurrency == level and cell.kind == kind:
                    by_name[cell.contender].append(cell)
        for name in names:
            cells = by_name[name]
            rows.append([kind, level, name, Spread.of([c.rps for c in cells]).show(0),
                         Spread.of([c.p50_ms for c in cells]).show(1),
                         Spread.of([c.p99_ms for c in cells]).show(1),
                         sum(c.requests for c in cells), sum(c.errors for c in cells)])
        for top, bottom in compared:
            per_round = [t.rps / b.rps for t, b in zip(by_name[top], by_name[bottom],
                                                       strict=True) if b.rps]
            ratios[f"{kind}, {level} clients, {top} / {bottom}"] = Spread.of(per_round)
    probes = {name: [p for r in rounds for p in r.probes[name]] for name in names}
    fresh: dict[str, collections.Counter[str]] = {name: collections.Counter() for name in names}
    for r in rounds:
        for name, statuses in r.fresh.items():
            fresh[name].update(statuses)
    return {"rows": rows, "ratios": ratios, "probes": probes,
            "checks": [c for r in rounds for c in r.checks],
            "fresh": {name: dict(counts) for name, counts in fresh.items()}}


def report(summary: dict[str, Any]) -> str:
    lines = [table(["request", "clients", "server", "req/s median (min–max)", "p50 ms",
                    "p99 ms", "requests", "non-200"], summary["rows"]), ""]
    lines.append(table(["cell", "throughput ratio, median (min–max)"],
                       [[cell, spread.show(2, "×")]
                        for cell, spread in summary["ratios"].items()]))
    lines.append("")
    for name, found in summary["probes"].items():
        right = sum(p.correct for p in found)
        lines.append(f"overdraw probe, {name}: {right}/{len(found)} probes correct; accepted "
                     f"{[p.accepted for p in found]} (should be {PROBE_PREDICTIONS} each), "
                     f"final balances {[p.final_balance for p in found]} (should be 0)")
    for name, statuses in summary["fresh"].items():
        refused = sum(n for status, n in statuses.items() if status != "200")
        lines.append(f"fresh-token probe, {name}: {refused} of {sum(statuses.values())} "
                     f"requests made right after a 200 login were refused ({statuses})")
    checks = summary["checks"]
    for name in summary["probes"]:
        mine = [c for c in checks if c.contender == name]
        lines.append(f"correctness after load, {name}: {sum(c.ok for c in mine)}/{len(mine)} "
                     f"rounds passed; last: {mine[-1].store_check if mine else '-'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--requests", type=int, default=1500, help="per cell, at most")
    parser.add_argument("--seconds", type=float, default=20, help="per cell, at most")
    parser.add_argument("--floor-clients", type=int, default=16,
                        help="clients of the GET health cell (framework floor)")
    parser.add_argument("--floor-requests", type=int, default=2000)
    parser.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL")
    parser.add_argument("--baseline-pool-size", type=int, default=100,
                        help="SQLAlchemy pool of the baseline; 0 = its default (5 + 10), "
                             "which starves at 64 clients (see baseline_fastapi.py)")
    parser.add_argument("--keep", type=Path, help="keep databases and logs in this folder")
    parser.add_argument("--json", type=Path, help="write the summary here too")
    args = parser.parse_args(argv)
    assert 1 <= args.rounds <= 20 and all(1 <= c <= 256 for c in args.concurrency)
    with contextlib.suppress(ImportError):
        import uvloop  # the client's own overhead, shared by both contenders, kept small

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    print(f"http_bench: {machine()}; load {load()}; synchronous={args.synchronous}; baseline pool "
          f"{args.baseline_pool_size or 'default'}; "
          f"{args.rounds} rounds × clients {args.concurrency}; ≤{args.requests} requests or "
          f"≤{args.seconds:g} s per cell", flush=True)
    rounds = []
    with tempfile.TemporaryDirectory(prefix="mlc-http-bench-") as scratch:
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            scratch = str(args.keep)
        for number in range(args.rounds):
            workdir = Path(scratch) / f"round{number + 1}"
            workdir.mkdir(exist_ok=True)
            for old in workdir.iterdir():  # a kept folder from an earlier run
                if old.is_file():
                    old.unlink()
            rounds.append(asyncio.run(run_round(number, args, workdir)))
    summary = summarize(rounds, args)
    print()
    print(report(summary))
    if args.json:
        args.json.write_text(json.dumps({
            "synchronous": args.synchronous, "rows": summary["rows"],
            "ratios": {k: asdict(v) for k, v in summary["ratios"].items()},
            "probes": {k: [asdict(p) for p in v] for k, v in summary["probes"].items()},
            "checks": [{**asdict(c), "ok": c.ok} for c in summary["checks"]],
            "fresh": summary["fresh"],
        }, indent=2))
    ours = [name for name in summary["probes"] if name.startswith("ours")]
    ok = (all(c.ok for c in summary["checks"] if c.contender in ours)
          and all(p.correct for name in ours for p in summary["probes"][name])
          and all(set(summary["fresh"][name]) <= {"200"} for name in ours))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
