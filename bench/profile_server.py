"""Over HTTP: where the running server spends a charged prediction's CPU (cProfile of the
server's event-loop thread under the throughput bench's load), or, with --ab, the server CPU
µs a request of several checkouts, interleaved round by round in one run.

The load is throughput_bench's: POST /api/v1/predict of 10 numbers, model 1, bearer token,
one user per connection. cProfile sees only the main thread (the event loop): the writer's
thread (BEGIN, COMMIT, fsync) is not in the profile but is in --ab's CPU figures.

Run: .venv/bin/python bench/profile_server.py [--connections 16] [--seconds 10]
         [--dump server.prof] [--top 40]
     .venv/bin/python bench/profile_server.py --py-spy PATH --dump stacks.txt
     .venv/bin/python bench/profile_server.py --ab DIR [DIR ...] [--rounds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pstats
import subprocess
import sys
import tempfile
from pathlib import Path

from benchlib import PYTHON, ServerProcess, Spread, free_port
from http_bench import Ours, drive, open_users, payloads
from throughput_bench import cpu_seconds


class Profiled(Ours):
    """main.py of `root`, optionally under cProfile (which writes `dump` at a clean stop)."""

    def __init__(self, workdir: Path, args: argparse.Namespace, root: Path, tag: str,
                 dump: Path | None = None) -> None:
        self.name = tag
        super().__init__(workdir, args)
        self.root, self.dump = root, dump
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"

    def server(self) -> ServerProcess:
        server = super().server()
        server.cwd = self.root
        server.command[1] = str(self.root / "main.py")
        if self.dump is not None:
            server.command[1:1] = ["-m", "cProfile", "-o", str(self.dump)]
        return server


async def profile(args: argparse.Namespace, workdir: Path) -> None:
    dump = args.dump or workdir / "server.prof"
    ours = Profiled(workdir, args, Path.cwd(), "ours", None if args.py_spy else dump)
    server = ours.server()
    server.start()
    spy = None
    try:
        users = (await open_users(ours, args.connections, "load"))[0]
        bodies = payloads()
        await drive(ours, users, 4, 200, 10, bodies)
        if args.py_spy:  # a sampler outside the process: native frames, every thread
            assert server.proc is not None
            spy = subprocess.Popen(  # noqa: ASYNC220 (started once, before the load)
                [args.py_spy, "record", "-p", str(server.proc.pid), "-r", "500",
                 "-d", str(int(args.seconds)), "--native", "-t", "-f", "raw", "-o", str(dump)])
        before = cpu_seconds(server)
        cell = await drive(ours, users, args.connections, 10**7, args.seconds, bodies)
        used = (cpu_seconds(server) - before) / max(1, cell.requests) * 1e6
        print(f"{cell.rps:.0f} req/s profiled, {used:.0f} µs server CPU a request, "
              f"{cell.requests} requests {cell.statuses}")
        if spy is not None:
            spy.wait(60)
    finally:
        server.stop()
    if spy is not None:
        print(f"py-spy samples (collapsed stacks) in {dump}")
        return
    stats = pstats.Stats(str(dump))
    stats.sort_stats("tottime").print_stats(args.top)
    stats.sort_stats("cumulative").print_stats(args.top)
    print(f"requests profiled: {cell.requests} (divide the times by this)")


def main_thread_seconds(server: ServerProcess) -> float:
    """CPU time of the server's main thread (the event loop's) alone: the web layer runs
    there, the write's BEGIN/COMMIT and fsync in other threads."""
    assert server.proc is not None
    pid = server.proc.pid
    fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def syscalls(server: ServerProcess) -> tuple[int, int]:
    """The server process's read and write system calls so far (/proc/PID/io: syscr and
    syscw, every thread; sockets, the log and the database file alike)."""
    assert server.proc is not None
    fields = dict(line.split(": ") for line in
                  Path(f"/proc/{server.proc.pid}/io").read_text().splitlines())
    return int(fields["syscr"]), int(fields["syscw"])


async def ab(args: argparse.Namespace, workdir: Path) -> None:
    roots: list[Path] = args.ab
    figures: dict[str, list[float]] = {str(r): [] for r in roots}
    loop_thread: dict[str, list[float]] = {str(r): [] for r in roots}
    bodies = payloads()
    for number in range(args.rounds):
        turn = number % len(roots)
        for root in roots[turn:] + roots[:turn]:
            folder = workdir / f"r{number}-{len(figures[str(root)])}-{root.name}"
            folder.mkdir()
            contender = Profiled(folder, args, root, "ours")
            server = contender.server()
            server.start()
            try:
                users = (await open_users(contender, args.connections, "load"))[0]
                await drive(contender, users, 4, 200, 10, bodies)
                before, calls = cpu_seconds(server), syscalls(server)
                main_before = main_thread_seconds(server)
                cell = await drive(contender, users, args.connections, 10**7, args.seconds,
                                   bodies)
                used = (cpu_seconds(server) - before) / max(1, cell.requests) * 1e6
                loop_used = (main_thread_seconds(server) - main_before) / max(
                    1, cell.requests) * 1e6
                per = [(b - a) / max(1, cell.requests)
                       for a, b in zip(calls, syscalls(server), strict=True)]
            finally:
                server.stop()
            figures[str(root)].append(used)
            loop_thread[str(root)].append(loop_used)
            print(f"  round {number + 1} {root}: {used:6.0f} µs/req (event loop's thread "
                  f"{loop_used:.0f})  {cell.rps:6.0f} req/s  "
                  f"p99 {cell.p99_ms:.1f} ms {cell.statuses}  read/write system calls a "
                  f"request {per[0]:.2f}/{per[1]:.2f}", flush=True)
    for title, table in (("server", figures), ("event loop's thread", loop_thread)):
        first = table[str(roots[0])]
        for root in roots:
            mine = table[str(root)]
            ratios = [m / f for m, f in zip(mine, first, strict=True)]
            print(f"{title} {root}: {Spread.of(mine).show(0)} µs/req; ÷ first "
                  f"{Spread.of(ratios).show(3)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL")
    parser.add_argument("--dump", type=Path)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--py-spy", help="sample with this py-spy binary instead of cProfile")
    parser.add_argument("--ab", nargs="+", help="checkouts whose main.py to compare")
    args = parser.parse_args()
    args.baseline_pool_size = 0
    args.ab = [Path(r).resolve() for r in args.ab or []]
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    print(f"python {PYTHON}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="mlc-profile-server-") as scratch:
        asyncio.run((ab if args.ab else profile)(args, Path(scratch)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
