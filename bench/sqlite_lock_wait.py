"""How long a process waits for SQLite's write lock when another process holds it.

Each of N processes commits small write transactions back to back on one WAL file with
synchronous=FULL (as ML Cabinet's writer does a group commit: BEGIN IMMEDIATE, a few
inserts, COMMIT), and times the BEGIN IMMEDIATE. With one process it never waits. With two,
a BEGIN that finds the lock taken does not queue for it: SQLite's busy handler sleeps and
retries (1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100 ms, then 100 ms steps), so a wait
lasts until the first retry after the lock came free, however short the holder's commit
was, while the other process takes the lock again and again: one process can starve for
seconds. The figures compare the waits with the time a commit holds the lock.

Round 4 (branch lockq) adds `--modes`: `busy` is SQLite's busy handler alone (as above);
`queue` takes the store's queue first (events/write_lock.py: a blocking flock on
`<db>-writer.lock`, waiters marked on `<db>-writer.wait` so a process about to take the
lock again lets a waiter go first), with SQLite's busy timeout at 0; `queue-unfair` is the
flock without that yield. "Others' turns in one wait" counts the other processes'
commits that began while one BEGIN waited: 1 is a fair queue for two processes; more is a
waiter passed over. It also times one uncontended acquire + release of the queue.

Run: .venv/bin/python bench/sqlite_lock_wait.py [--seconds 5] [--processes 1 2]
     [--modes busy queue-unfair queue]
"""

from __future__ import annotations

import argparse
import bisect
import json
import multiprocessing
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from benchlib import ROOT, load, machine, percentile, table

sys.path.insert(0, str(ROOT))
from events.write_lock import WriteLock

ROWS_PER_COMMIT = 8
MODES = ("busy", "queue-unfair", "queue")
FLOCK_ROUNDS = 100_000


def writer(db: str, mode: str, seconds: float, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    lock = WriteLock(db, fair=mode == "queue") if mode != "busy" else None
    conn = sqlite3.connect(db, isolation_level=None, timeout=0 if lock else 10)
    conn.execute("PRAGMA synchronous = FULL")
    starts, locks, holds, busy = [], [], [], 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        if lock is not None:
            lock.acquire()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:  # only possible with the queue: SQLite said busy
            busy += 1
            if lock is not None:
                lock.release()
            continue
        locked = time.monotonic()
        conn.executemany("INSERT INTO t (payload) VALUES (?)",
                         [("x" * 200,)] * ROWS_PER_COMMIT)
        conn.execute("COMMIT")
        if lock is not None:
            lock.release()
        starts.append(started)
        locks.append(locked)
        holds.append(time.monotonic() - locked)
    conn.close()
    out.put(json.dumps({"starts": starts, "locks": locks, "holds": holds, "busy": busy}))


def turns_during_waits(results: list[dict[str, list[float]]]) -> list[int]:
    """For each BEGIN of each process: how many commits of the others began while it
    waited (their lock time falls between its start and its own lock time)."""
    counts = []
    for me, mine in enumerate(results):
        others = sorted(t for k, r in enumerate(results) if k != me for t in r["locks"])
        for started, locked in zip(mine["starts"], mine["locks"], strict=True):
            counts.append(bisect.bisect_left(others, locked)
                          - bisect.bisect_left(others, started))
    return counts


def cell(mode: str, processes: int, seconds: float, folder: Path, tag: int) -> list[object]:
    db = folder / f"lock-{tag}-{mode}-{processes}.db"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, payload TEXT)")
    out: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    workers = [multiprocessing.Process(target=writer, args=(str(db), mode, seconds, out))
               for _ in range(processes)]
    for w in workers:
        w.start()
    results = [json.loads(out.get()) for _ in workers]
    for w in workers:
        w.join()
    waits = [lock - start for r in results
             for start, lock in zip(r["starts"], r["locks"], strict=True)]
    holds = [x for r in results for x in r["holds"]]
    waited = [x for x in waits if x > 0.0005]
    turns = turns_during_waits(results)
    each = " / ".join(f"{len(r['locks']) / seconds:,.0f}" for r in results)
    return [mode, processes, f"{len(waits) / seconds:,.0f}", each,
            f"{percentile(holds, 0.5) * 1e3:.2f}",
            f"{len(waited) / max(1, len(waits)):.1%}",
            f"{percentile(waits, 0.5) * 1e3:.2f}", f"{percentile(waits, 0.99) * 1e3:.2f}",
            f"{max(waits) * 1e3:.1f}", f"{sum(waited):.2f}",
            f"{sum(turns) / max(1, len(turns)):.2f}", max(turns),
            sum(r["busy"] for r in results)]


def flock_cost_us(folder: Path) -> tuple[float, float]:
    """One uncontended acquire + release of the queue, without and with the waiter check."""
    costs = []
    for fair in (False, True):
        lock = WriteLock(folder / f"flock-{fair}.db", fair=fair)
        started = time.perf_counter()
        for _ in range(FLOCK_ROUNDS):
            lock.acquire()
            lock.release()
        costs.append((time.perf_counter() - started) / FLOCK_ROUNDS * 1e6)
        lock.close()
    return costs[0], costs[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    args = parser.parse_args(argv)
    print(f"sqlite_lock_wait: {machine()}; load {load()}; SQLite {sqlite3.sqlite_version}")
    with tempfile.TemporaryDirectory(prefix="mlc-lockwait-") as scratch:
        cells = [(mode, n) for n in args.processes for mode in args.modes]
        rows = [cell(mode, n, args.seconds, Path(scratch), tag)
                for tag, (mode, n) in enumerate(cells)]
        unfair_us, fair_us = flock_cost_us(Path(scratch))
    print(table(["mode", "processes", "commits/s", "commits/s by process", "lock held p50 ms",
                 "BEGINs that waited", "wait p50 ms", "wait p99 ms", "wait max ms",
                 "seconds spent waiting", "others' turns in one wait, mean", "max",
                 "SQLITE_BUSY with the queue"], rows))
    print(f"one uncontended acquire + release of the queue: {unfair_us:.2f} µs "
          f"(flock alone), {fair_us:.2f} µs (with the check for a waiter)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
