"""The issue's own load generator: `wrk -t1 -cN` driving POST predict, one cell.

wrk (Debian's package, C, epoll) spends a fraction of the CPU a request that the project's
Python generator does, so on 2 shared cores it leaves the servers more of the machine and
reaches hello-world's real ceiling (the issue measured 19,750 req/s with it). It knows
nothing of users, so a Lua script gives request n the token of user n mod N and one of the
prepared bodies (ASCII JSON, so its JSON string literals are Lua's too); wrk counts
requests and replies ≥ 400, not 200s per user. The balance
check is therefore over all users together (`check_totals`): every user's held credits 0,
and the credits spent by all of them equal the cost of the 200s counted, plus at most one
prediction per connection per cell that the server finished after wrk stopped counting
(and one per socket error, a request wrk sent but never read the reply of).

The script prints one line, `WRK-JSON {...}`, from wrk's `done` callback: requests, the
time, the error counts and the latency percentiles (µs) of wrk's own histogram.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from http_bench import COST_CREDITS, Cell, Check, Contender, User, client_session

WRK = shutil.which("wrk")
MARK = "WRK-JSON "


@dataclass
class Spent:
    """What wrk's 200s should have cost one server's users, over every wrk cell."""

    ok: int = 0            # 200s wrk counted
    unseen_max: int = 0    # replies in flight when a cell ended: charged, never counted


def _lua(users: list[User], bodies: list[bytes], method: str, path: str) -> str:
    """Request n: user n's token, body n (none when `bodies` is empty, as for a GET)."""
    tokens = ", ".join(json.dumps(u.token) for u in users)
    payloads = ", ".join(json.dumps(b.decode()) for b in bodies)
    return f"""
local tokens = {{{tokens}}}
local bodies = {{{payloads}}}
local n = 0
request = function()
  n = n + 1
  local body = nil
  if #bodies > 0 then body = bodies[n % #bodies + 1] end
  return wrk.format({json.dumps(method)}, {json.dumps(path)},
    {{["Authorization"] = "Bearer " .. tokens[n % #tokens + 1],
      ["Content-Type"] = "application/json"}}, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{MARK}{{"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, '
    .. '"status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50.0), latency:percentile(99.0)))
end
"""


async def wrk_drive(contender: Contender, users: list[User], connections: int,
                    seconds: float, bodies: list[bytes], workdir: Path,
                    spent: Spent | None = None, *, method: str = "POST",
                    path: str | None = None) -> Cell:
    """One cell: `wrk -t1 -c<connections> -d<seconds>` against the contender's predict (or
    another of its routes: `method`, `path`)."""
    if WRK is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    path = contender.predict_path if path is None else path
    script = workdir / f"wrk-{contender.name}.lua"
    script.write_text(_lua(users, bodies, method, path))
    process = await asyncio.create_subprocess_exec(
        WRK, "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "30s",
        "-s", str(script), contender.base + path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    lines = [ln for ln in out.decode().splitlines() if ln.startswith(MARK)]
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({process.returncode}): {out.decode()[-800:]} "
                           f"{err.decode()[-800:]}")
    got = json.loads(lines[-1][len(MARK):])
    socket = got["connect"] + got["read"] + got["write"] + got["timeout"]
    ok = got["requests"] - got["status"]  # completed replies; a socket error is not one
    # wrk's "status" errors are replies ≥ 400; every other completed reply is counted as a 200
    statuses = {"200": ok, "4xx/5xx": got["status"], "socket errors": socket}
    if spent is not None:
        spent.ok += ok
        spent.unseen_max += connections + socket
    return Cell(contender.name, connections, got["requests"], got["duration_us"] / 1e6,
                {k: v for k, v in statuses.items() if v}, got["p50_us"] / 1000,
                got["p99_us"] / 1000)


async def check_totals(contender: Contender, users: list[User], spent: Spent) -> Check:
    """Balances with wrk's load, which counts 200s for all users together (module doc)."""
    check = Check(contender.name, users_checked=len(users))
    total_spent = 0
    async with client_session(contender.base) as http:
        for index, user in enumerate(users):
            balance, held = await contender.balance(http, user.token)
            used = user.initial_credits - balance - COST_CREDITS * user.successes
            if held != 0 or used < 0 or used % COST_CREDITS:
                check.balances_wrong.append(f"user {index}: balance {balance} held {held}")
            total_spent += used
    low, high = spent.ok * COST_CREDITS, (spent.ok + spent.unseen_max) * COST_CREDITS
    if not low <= total_spent <= high:
        check.balances_wrong.append(f"all users: {total_spent} credits spent under wrk, "
                                    f"expected {low}..{high}")
    return check
