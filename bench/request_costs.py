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
import json
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from benchlib import ServerProcess, Spread, load, machine, table
from http_bench import COST_CREDITS, Ours, User, open_users, payloads
from throughput_bench import Hello, cpu_seconds
from wrk_load import MARK, WRK


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str
    body: str | None      # None: no body; "predict": the bench's prepared predict bodies
    status: int           # what every reply must be
    above: str = ""       # the request whose cost this one adds to

    def lua(self, tokens: list[str], bodies: list[bytes]) -> str:
        sent = [b.decode() for b in bodies] if self.body == "predict" else [self.body or ""]
        return f"""
local tokens = {{{", ".join(json.dumps(t) for t in tokens)}}}
local bodies = {{{", ".join(json.dumps(b) for b in sent)}}}
local n = 0
request = function()
  n = n + 1
  local body = bodies[n % #bodies + 1]
  if body == "" then body = nil end
  return wrk.format({json.dumps(self.method)}, {json.dumps(self.path)},
    {{["Authorization"] = "Bearer " .. tokens[n % #tokens + 1],
      ["Content-Type"] = "application/json"}}, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{MARK}{{"requests": %d, "socket": %d, "status": %d}}\\n',
    summary.requests, e.connect + e.read + e.write + e.timeout, e.status))
end
"""


HELLO = Endpoint("hello", "POST", "/api/v1/predict", "predict", 200)
ENDPOINTS = (
    Endpoint("GET /healthz", "GET", "/healthz", None, 200, above="hello"),
    Endpoint("GET /api/v1/balance", "GET", "/api/v1/balance", None, 200, above="hello"),
    Endpoint("POST predict, 422", "POST", "/api/v1/predict",
             '{"model_id": 1, "data": []}', 422, above="hello"),
    Endpoint("POST predict, 200", "POST", "/api/v1/predict", "predict", 200,
             above="POST predict, 422"),
)


async def cell(server: Hello | Ours, process: ServerProcess, endpoint: Endpoint,
               tokens: list[str], args: argparse.Namespace, workdir: Path) -> tuple[float, int]:
    """(server CPU µs a request, requests) of one wrk run. Every reply must have the
    endpoint's status (wrk counts the replies >= 400: all of them in a 422 cell, none in a
    200 cell), so no cell measures a path other than its own."""
    assert WRK is not None, "wrk is not installed: apt-get install -y wrk"
    script = workdir / "cell.lua"
    script.write_text(endpoint.lua(tokens, payloads()))
    before = cpu_seconds(process)
    wrk = await asyncio.create_subprocess_exec(
        WRK, "-t1", f"-c{args.connections}", f"-d{args.seconds:g}s", "--timeout", "30s",
        "-s", str(script), server.base + endpoint.path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await wrk.communicate()
    used = cpu_seconds(process) - before
    lines = [ln for ln in out.decode().splitlines() if ln.startswith(MARK)]
    if wrk.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed: {out.decode()[-400:]} {err.decode()[-400:]}")
    got = json.loads(lines[-1][len(MARK):])
    refused = got["requests"] if endpoint.status >= 400 else 0
    if got["socket"] or got["status"] != refused:
        raise RuntimeError(f"{endpoint.name}: {got}, every reply should be {endpoint.status}")
    return used / got["requests"] * 1e6, got["requests"]


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, list[float]]:
    hello, ours = Hello(workdir, args), Ours(workdir, args)
    figures: dict[str, list[float]] = {e.name: [] for e in (HELLO, *ENDPOINTS)}
    charged = 0
    processes = {id(hello): hello.server(), id(ours): ours.server()}
    for process in processes.values():
        process.start()
    try:
        users: list[User] = (await open_users(ours, args.connections, "cost"))[0]
        tokens = [u.token for u in users]
        for number in range(1, args.rounds + 1):
            for server, endpoint in [(hello, HELLO)] + [(ours, e) for e in ENDPOINTS]:
                us, requests = await cell(server, processes[id(server)], endpoint, tokens,
                                          args, workdir)
                figures[endpoint.name].append(us)
                charged += requests if endpoint is ENDPOINTS[-1] else 0
                print(f"  round {number}  {endpoint.name:22} {us:7.0f} µs/req  "
                      f"{requests} requests", flush=True)
        spent = sum(u.initial_credits for u in users) - await _balances(ours, users)
        # At most one uncounted prediction per connection in each 200 cell: charged after
        # wrk stopped counting (bench/wrk_load.py).
        slack = args.rounds * args.connections * COST_CREDITS
        if not charged * COST_CREDITS <= spent <= charged * COST_CREDITS + slack:
            raise RuntimeError(f"{spent} credits spent for {charged} charged predictions")
        print(f"  balances: {spent:,} credits spent for {charged:,} predictions counted")
    finally:
        for process in processes.values():
            process.stop()
    return figures


async def _balances(ours: Ours, users: list[User]) -> int:
    total = 0
    async with aiohttp.ClientSession(ours.base) as http:
        for user in users:
            balance, held = await ours.balance(http, user.token)
            if held:
                raise RuntimeError(f"{held} credits left on hold")
            total += balance
    return total


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
          f"{median(figures[ENDPOINTS[-1].name]) / median(figures['hello']):.1f}× hello's "
          f"CPU (the issue's 20 % needs at most 5×)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
