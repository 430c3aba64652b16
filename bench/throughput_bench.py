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
     [--seconds 5] [--synchronous FULL] [--before DIR] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
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


class Before(Ours):
    """ML Cabinet as it was: main.py of another checkout (`--before DIR`, e.g. a
    `git worktree add` of the commit before the levers), in the same run."""

    name = "before"
    root = Path()

    def server(self) -> ServerProcess:
        server = super().server()
        server.cwd = self.root
        server.command[1] = str(self.root / "main.py")
        return server


@dataclass
class Round:
    cells: list[Cell]
    check: Check
    cpu_us: dict[tuple[str, int], float]  # server CPU time per request, by (server, clients)


def cpu_seconds(server: ServerProcess) -> float:
    """User + system CPU time the server process has used so far (Linux /proc). On a shared
    machine this moves far less than req/s: it counts the server's own work, not its waits."""
    assert server.proc is not None
    fields = Path(f"/proc/{server.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_round(number: int, args: argparse.Namespace, workdir: Path) -> Round:
    ours, hello = Ours(workdir, args), Hello(workdir, args)
    contenders: list[Contender] = [hello, ours]
    if args.before:
        Before.root = args.before.resolve()
        contenders.append(Before(workdir, args))
    for contender in contenders:
        contender.port = free_port()
        contender.base = f"http://127.0.0.1:{contender.port}"
    turn = number % len(contenders)
    order = contenders[turn:] + contenders[:turn]  # the order rotates by round
    bodies = payloads()
    servers = [c.server() for c in order]
    cells: list[Cell] = []
    cpu_us: dict[tuple[str, int], float] = {}
    try:
        for server in servers:
            server.start()
        users = {hello.name: [User("hello-token", 0)]}
        for contender in order:
            if contender is not hello:
                users[contender.name] = (await open_users(contender, max(args.connections),
                                                          "load"))[0]
        for contender in order:  # imports, caches, the client's pool
            await drive(contender, users[contender.name], 4, WARMUP_REQUESTS, 10, bodies)
        for connections in args.connections:
            for contender, server in zip(order, servers, strict=True):
                before = cpu_seconds(server)
                cell = await drive(contender, users[contender.name], connections,
                                   MAX_REQUESTS, args.seconds, bodies)
                cells.append(cell)
                used = cpu_us[contender.name, connections] = (
                    (cpu_seconds(server) - before) / max(1, cell.requests) * 1e6)
                print(f"  round {number + 1} c={connections:<3} {contender.name:<6} "
                      f"{cell.rps:8.1f} req/s  p50 {cell.p50_ms:6.2f} ms  "
                      f"p99 {cell.p99_ms:6.2f} ms  server CPU {used:6.0f} µs/req  "
                      f"{cell.statuses}", flush=True)
        check = await check_balances(ours, users[ours.name])
    finally:
        for server in servers:
            server.stop()
    check.store_check = audit_ours(ours.db)
    print(f"  round {number + 1} balances {check.users_checked - len(check.balances_wrong)}/"
          f"{check.users_checked} right; {check.store_check}", flush=True)
    return Round(cells, check, cpu_us)


def names(rounds: list[Round]) -> list[str]:
    return [n for n in ("hello", "before", "ours") if any(c.contender == n
                                                         for r in rounds for c in r.cells)]


def summarize(rounds: list[Round], connections: list[int]) -> dict[str, Any]:
    rows = []
    for level in connections:
        by_name: dict[str, list[Cell]] = collections.defaultdict(list)
        for r in rounds:
            for cell in r.cells:
                if cell.concurrency == level:
                    by_name[cell.contender].append(cell)
        for name in names(rounds):
            cells = by_name[name]
            ratios = [o.rps / h.rps for o, h in zip(cells, by_name["hello"], strict=True)
                      if h.rps]
            cpu_ratios = [r.cpu_us["hello", level] / r.cpu_us[name, level] for r in rounds
                          if r.cpu_us[name, level]]
            rows.append([level, name, Spread.of([c.rps for c in cells]).show(0),
                         Spread.of(ratios).show(3),
                         Spread.of([r.cpu_us[name, level] for r in rounds]).show(0),
                         Spread.of(cpu_ratios).show(3),
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
    parser.add_argument("--before", type=Path,
                        help="also run main.py of this checkout (the code before), same run")
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
    print(table(["connections", "server", "req/s median (min–max)", "req/s ÷ hello's",
                 "server CPU µs/req", "hello's CPU ÷ this",
                 "p50 ms", "p99 ms", "requests", "non-200"], summary["rows"]))
    ok = all(c.ok for c in summary["checks"])
    print(f"correctness: {sum(c.ok for c in summary['checks'])}/{len(rounds)} rounds passed "
          "(balances and python -m ledger audit)")
    if args.json:
        args.json.write_text(json.dumps({"rows": summary["rows"], "ok": ok}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
