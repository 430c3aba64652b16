"""Throughput: ML Cabinet's charged predictions against aiohttp's own hello-world, one run.

Both servers run as subprocesses on 127.0.0.1: `bench/hello_aiohttp.py` (a bare handler
that reads the body and answers a small JSON) and ML Cabinet (`main.py`, SQLite WAL,
synchronous=FULL by default). Each round starts both on fresh files, opens one user per
client with 1,000,000 credits and a bearer token, then for each connection count drives the
two back to back (the order rotates by round) with POST /api/v1/predict of 10 numbers
(model 1, the seed model, 10 credits) for a fixed time. The ratio ours / hello is taken per
round, so the machine's noise moves both sides alike.

The load comes from the project's own async generator (bench/http_bench.py `drive`: an
aiohttp client, on uvloop when present) in this process, on the same 2 cores: wrk is not
installed here. The generator caps hello-world well below what wrk reaches, so the ratio is
kinder than a wrk ratio would be. After the load: every user's balance must equal
1,000,000 − 10 × its 200s with nothing held, and `python -m ledger audit` must pass.

Run: .venv/bin/python bench/throughput_bench.py [--rounds 3] [--connections 1 16 50]
     [--seconds 5] [--synchronous FULL] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from benchlib import BENCH, PYTHON, ServerProcess, Spread, free_port, load, machine, table
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

WARMUP_REQUESTS = 200
MAX_REQUESTS = 10**7  # cells are bounded by time; this only bounds a runaway loop


class Hello(Contender):
    """aiohttp's ceiling on this machine: the same route, no work behind it."""

    name = "hello"
    predict_path = "/api/v1/predict"
    health_path = "/healthz"

    def server(self) -> ServerProcess:
        return ServerProcess("aiohttp hello-world",
                             [PYTHON, str(BENCH / "hello_aiohttp.py"), "--port", str(self.port)],
                             env={}, log_path=self.log, health_url=self.base + self.health_path)

    async def open_user(self, http: aiohttp.ClientSession, username: str, *,
                        register: bool = True) -> str:
        return "hello-token"

    async def top_up(self, http: aiohttp.ClientSession, token: str, amount: int) -> None:
        return None


@dataclass
class Round:
    cells: list[Cell]
    check: Check


async def run_round(number: int, args: argparse.Namespace, workdir: Path) -> Round:
    ours, hello = Ours(workdir, args), Hello(workdir, args)
    ours.port, hello.port = free_port(), free_port()
    ours.base, hello.base = f"http://127.0.0.1:{ours.port}", f"http://127.0.0.1:{hello.port}"
    order: list[Contender] = [hello, ours] if number % 2 == 0 else [ours, hello]
    bodies = payloads()
    servers = [c.server() for c in order]
    cells: list[Cell] = []
    try:
        for server in servers:
            server.start()
        users = {ours.name: (await open_users(ours, max(args.connections), "load"))[0],
                 hello.name: [User("hello-token", 0)]}
        for contender in order:  # imports, caches, the client's pool
            await drive(contender, users[contender.name], 4, WARMUP_REQUESTS, 10, bodies)
        for connections in args.connections:
            for contender in order:
                cell = await drive(contender, users[contender.name], connections,
                                   MAX_REQUESTS, args.seconds, bodies)
                cells.append(cell)
                print(f"  round {number + 1} c={connections:<3} {contender.name:<6} "
                      f"{cell.rps:8.1f} req/s  p50 {cell.p50_ms:6.2f} ms  "
                      f"p99 {cell.p99_ms:6.2f} ms  {cell.statuses}", flush=True)
        check = await check_balances(ours, users[ours.name])
    finally:
        for server in servers:
            server.stop()
    check.store_check = audit_ours(ours.db)
    print(f"  round {number + 1} balances {check.users_checked - len(check.balances_wrong)}/"
          f"{check.users_checked} right; {check.store_check}", flush=True)
    return Round(cells, check)


def summarize(rounds: list[Round], connections: list[int]) -> dict[str, Any]:
    rows = []
    for level in connections:
        by_name: dict[str, list[Cell]] = collections.defaultdict(list)
        for r in rounds:
            for cell in r.cells:
                if cell.concurrency == level:
                    by_name[cell.contender].append(cell)
        ratios = [o.rps / h.rps for o, h in zip(by_name["ours"], by_name["hello"], strict=True)
                  if h.rps]
        for name in ("hello", "ours"):
            cells = by_name[name]
            rows.append([level, name, Spread.of([c.rps for c in cells]).show(0),
                         Spread.of(ratios).show(3) if name == "ours" else "1",
                         Spread.of([c.p50_ms for c in cells]).show(2),
                         Spread.of([c.p99_ms for c in cells]).show(2),
                         sum(c.requests for c in cells), sum(c.errors for c in cells)])
    return {"rows": rows, "checks": [r.check for r in rounds]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 16, 50])
    parser.add_argument("--seconds", type=float, default=5, help="per cell")
    parser.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL")
    parser.add_argument("--keep", type=Path, help="keep databases and logs in this folder")
    parser.add_argument("--json", type=Path, help="write the summary here too")
    args = parser.parse_args(argv)
    args.baseline_pool_size = 0  # Contender reads it; no baseline here
    assert 1 <= args.rounds <= 20 and all(1 <= c <= 256 for c in args.connections)
    assert 0 < args.seconds <= 120
    uvloop_used = False
    with contextlib.suppress(ImportError):
        import uvloop  # the client's own overhead, shared by both servers, kept small

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        uvloop_used = True
    print(f"throughput_bench: {machine()}; load {load()}; synchronous={args.synchronous}; "
          f"client: the project's async generator{' on uvloop' if uvloop_used else ''}; "
          f"{args.rounds} rounds × connections {args.connections} × {args.seconds:g} s",
          flush=True)
    rounds = []
    with tempfile.TemporaryDirectory(prefix="mlc-throughput-") as scratch:
        base = args.keep or Path(scratch)
        for number in range(args.rounds):
            workdir = base / f"round{number + 1}"
            workdir.mkdir(parents=True, exist_ok=True)
            for old in workdir.iterdir():
                if old.is_file():
                    old.unlink()
            rounds.append(asyncio.run(run_round(number, args, workdir)))
    summary = summarize(rounds, args.connections)
    print()
    print(table(["connections", "server", "req/s median (min–max)", "ours / hello",
                 "p50 ms", "p99 ms", "requests", "non-200"], summary["rows"]))
    ok = all(c.ok for c in summary["checks"])
    print(f"correctness: {sum(c.ok for c in summary['checks'])}/{len(rounds)} rounds passed "
          "(balances and python -m ledger audit)")
    if args.json:
        args.json.write_text(json.dumps({"rows": summary["rows"], "ok": ok}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
