"""Exec of `main.py` to the first 200 of /healthz, for several checkouts in turn on one file.

Each start is timed from exec to the first 200 (polled every 5 ms) with the server's CPU by
then (user + sys, from /proc): the figure a busy machine moves least. Checkouts are started
one after another, round after round, so each sees the same load. Open the file once with
each checkout first (a first start may rebuild projections and walks a never-verified log).

Run: .venv/bin/python bench/serving_bench.py --db FILE --rounds 7 CHECKOUT [CHECKOUT ...]
     (a checkout: a `git worktree` with its own .venv link; `.` is this one)
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import time
import urllib.request
from pathlib import Path

from benchlib import free_port, load

POLL_S = 0.005
TIMEOUT_S = 120


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_start(checkout: Path, db: Path) -> tuple[float, float]:
    port = free_port()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [str(checkout / ".venv" / "bin" / "python"), "main.py", "--port", str(port), "--db",
         str(db)], cwd=checkout, env={**os.environ, "ML_CABINET_VERIFY_RATE": "0"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        while time.perf_counter() - started < TIMEOUT_S:
            if proc.poll() is not None:
                raise RuntimeError(f"{checkout}: main.py exited with {proc.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    if r.status == 200:
                        return time.perf_counter() - started, cpu_s(proc.pid)
            except OSError:
                pass
            time.sleep(POLL_S)  # a polling interval, not a synchronisation
        raise RuntimeError(f"{checkout}: not serving in {TIMEOUT_S} s")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("checkouts", type=Path, nargs="+")
    args = parser.parse_args()
    print(f"serving_bench: load {load()}", flush=True)
    taken: dict[Path, list[tuple[float, float]]] = {c: [] for c in args.checkouts}
    for _ in range(args.rounds):
        for checkout in args.checkouts:
            taken[checkout].append(one_start(checkout.resolve(), args.db))
    print(f"load at the end {load()}")
    for checkout, runs in taken.items():
        walls, cpus = [w for w, _ in runs], [c for _, c in runs]
        print(f"{checkout}: wall median {statistics.median(walls):.3f} s "
              f"({min(walls):.3f}–{max(walls):.3f}); CPU median {statistics.median(cpus):.3f} s "
              f"({min(cpus):.3f}–{max(cpus):.3f}); {len(runs)} starts")


if __name__ == "__main__":
    main()
