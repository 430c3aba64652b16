"""Over HTTP, in one run: the server CPU a request of ML Cabinet's endpoints, from the
framework's floor up to a charged prediction, each as a multiple of aiohttp's hello-world.
The steps between them say where a charged prediction's CPU goes, in a real server:

    hello            aiohttp alone: read the body, answer a small JSON (bench/hello_aiohttp.py)
    GET /healthz     + ML Cabinet's app: middlewares, security headers, request id, metrics,
                       the access log; no credential, no database
    GET balance      + a bearer token checked (cached) and one point read of the balance
    POST predict 422 + the body read and validated: an empty `data` is refused before any
                       model or write (problem+json)
    POST predict 200 + ten rows validated, the model run, the one write (four events,
                       hash-chained, projections, group commit), the reply

wrk -t1 -c<N>, one token per connection (50 users, each topped up), cells interleaved round
by round, so that every figure of one round saw the same machine. Server CPU is user +
system of the server's process (every thread), read from /proc before and after each cell.

Run: .venv/bin/python bench/request_costs.py [--rounds 3] [--seconds 4] [--connections 50]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchlib import ServerProcess, Spread, load, machine, table
from http_bench import Ours, User, open_users, payloads
from throughput_bench import Hello, cpu_seconds
from wrk_load import Spent, check_totals, wrk_drive


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str
    body: str | None      # None: no body; "predict": the bench's prepared predict bodies
    status: int           # what every reply must be
    above: str = ""       # the request whose cost this one adds to

    def bodies(self) -> list[bytes]:
        if self.body == "predict":
            return payloads()
        return [] if self.body is None else [self.body.encode()]


HELLO = Endpoint("hello", "POST", "/api/v1/predict", "predict", 200)
ENDPOINTS = (
    Endpoint("GET /healthz", "GET", "/healthz", None, 200, above="hello"),
    Endpoint("GET /api/v1/balance", "GET", "/api/v1/balance", None, 200, above="hello"),
    Endpoint("POST predict, 422", "POST", "/api/v1/predict",
             '{"model_id": 1, "data": []}', 422, above="hello"),
    Endpoint("POST predict, 200", "POST", "/api/v1/predict", "predict", 200,
             above="POST predict, 422"),
)
CHARGED = ENDPOINTS[-1]


async def cell(server: Hello | Ours, process: ServerProcess, endpoint: Endpoint,
               users: list[User], args: argparse.Namespace, workdir: Path,
               spent: Spent) -> tuple[float, int]:
    """(server CPU µs a request, requests) of one wrk run. Every reply must have the
    endpoint's status (wrk counts the replies >= 400: all of them in a 422 cell, none in a
    200 cell), so no cell measures a path other than its own."""
    before = cpu_seconds(process)
    got = await wrk_drive(server, users, args.connections, args.seconds, endpoint.bodies(),
                          workdir, spent if endpoint is CHARGED else None,
                          method=endpoint.method, path=endpoint.path)
    used = cpu_seconds(process) - before
    expected = {"200" if endpoint.status < 400 else "4xx/5xx": got.requests}
    if got.statuses != expected:
        raise RuntimeError(f"{endpoint.name}: {got.statuses}, every reply should be "
                           f"{endpoint.status}")
    return used / got.requests * 1e6, got.requests


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, list[float]]:
    hello, ours = Hello(workdir, args), Ours(workdir, args)
    figures: dict[str, list[float]] = {e.name: [] for e in (HELLO, *ENDPOINTS)}
    spent = Spent()
    hello_process, ours_process = hello.server(), ours.server()
    cells = [(hello, hello_process, HELLO)] + [(ours, ours_process, e) for e in ENDPOINTS]
    for process in (hello_process, ours_process):
        process.start()
    try:
        users: list[User] = (await open_users(ours, args.connections, "cost"))[0]
        for number in range(1, args.rounds + 1):
            for server, process, endpoint in cells:
                us, requests = await cell(server, process, endpoint, users, args, workdir,
                                          spent)
                figures[endpoint.name].append(us)
                print(f"  round {number}  {endpoint.name:22} {us:7.0f} µs/req  "
                      f"{requests} requests", flush=True)
        # Only the charged cells' 200s are counted; the 422s and GETs must cost nothing.
        check = await check_totals(ours, users, spent)
        if check.balances_wrong:
            raise RuntimeError(f"balances wrong: {check.balances_wrong}")
        print(f"  balances: right for {spent.ok:,} charged predictions counted")
    finally:
        for process in (hello_process, ours_process):
            process.stop()
    return figures


def report(figures: dict[str, list[float]]) -> str:
    hello = figures["hello"]
    rows = []
    for endpoint in (HELLO, *ENDPOINTS):
        values = figures[endpoint.name]
        ratios = [v / h for v, h in zip(values, hello, strict=True)]
        step = "" if not endpoint.above else Spread.of([
            v - b for v, b in zip(values, figures[endpoint.above], strict=True)]).show()
        rows.append([endpoint.name, Spread.of(values).show(), Spread.of(ratios).show(1, "×"),
                     endpoint.above, step])
    return table(["request", "server CPU µs/req", "÷ hello (same round)", "above",
                  "µs above it"], rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--synchronous", default="FULL")
    args = parser.parse_args()
    args.baseline_pool_size = 1
    print(f"request_costs: {machine()}; load {load()}; wrk -t1 "
          f"-c{args.connections}, {args.rounds} rounds × {args.seconds:g} s")
    with tempfile.TemporaryDirectory(prefix="mlc-costs-") as scratch:
        figures = asyncio.run(run(args, Path(scratch)))
    print(report(figures))
    median = statistics.median
    print(f"load at the end {load()}; a charged prediction is "
          f"{median(figures[CHARGED.name]) / median(figures['hello']):.1f}× hello's "
          f"CPU (the issue's 20 % needs at most 5×)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
