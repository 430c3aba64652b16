"""How long a process waits for SQLite's write lock when another process holds it.

Each of N processes commits small write transactions back to back on one WAL file with
synchronous=FULL (as ML Cabinet's writer does a group commit: BEGIN IMMEDIATE, a few
inserts, COMMIT), and times the BEGIN IMMEDIATE. With one process it never waits. With two,
a BEGIN that finds the lock taken does not queue for it: SQLite's busy handler sleeps and
retries (1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100 ms, then 100 ms steps), so a wait
lasts until the first retry after the lock came free, however short the holder's commit
was, while the other process takes the lock again and again: one process can starve for
seconds. The figures compare the waits with the time a commit holds the lock.

Run: .venv/bin/python bench/sqlite_lock_wait.py [--seconds 5] [--processes 1 2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from benchlib import load, machine, percentile, table

ROWS_PER_COMMIT = 8


def writer(db: str, seconds: float, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    conn = sqlite3.connect(db, isolation_level=None, timeout=10)
    conn.execute("PRAGMA synchronous = FULL")
    waits, holds = [], []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        locked = time.perf_counter()
        conn.executemany("INSERT INTO t (payload) VALUES (?)",
                         [("x" * 200,)] * ROWS_PER_COMMIT)
        conn.execute("COMMIT")
        waits.append(locked - started)
        holds.append(time.perf_counter() - locked)
    conn.close()
    out.put(json.dumps({"waits": waits, "holds": holds}))


def cell(processes: int, seconds: float, folder: Path) -> list[object]:
    db = folder / f"lock-{processes}.db"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, payload TEXT)")
    out: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    workers = [multiprocessing.Process(target=writer, args=(str(db), seconds, out))
               for _ in range(processes)]
    for w in workers:
        w.start()
    results = [json.loads(out.get()) for _ in workers]
    for w in workers:
        w.join()
    waits = [x for r in results for x in r["waits"]]
    holds = [x for r in results for x in r["holds"]]
    waited = [x for x in waits if x > 0.0005]
    each = " / ".join(f"{len(r['waits']) / seconds:,.0f}" for r in results)
    return [processes, f"{len(waits) / seconds:,.0f}", each,
            f"{percentile(holds, 0.5) * 1e3:.2f}", f"{percentile(holds, 0.99) * 1e3:.2f}",
            f"{len(waited) / max(1, len(waits)):.1%}",
            f"{percentile(waits, 0.5) * 1e3:.2f}", f"{percentile(waits, 0.99) * 1e3:.2f}",
            f"{max(waits) * 1e3:.1f}",
            f"{percentile(waited, 0.5) * 1e3:.2f}" if waited else "-",
            f"{sum(waited):.2f}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)
    print(f"sqlite_lock_wait: {machine()}; load {load()}; SQLite {sqlite3.sqlite_version}")
    with tempfile.TemporaryDirectory(prefix="mlc-lockwait-") as scratch:
        rows = [cell(n, args.seconds, Path(scratch)) for n in args.processes]
    print(table(["processes", "commits/s", "commits/s by process", "lock held p50 ms",
                 "held p99 ms",
                 "BEGINs that waited", "wait p50 ms", "wait p99 ms", "wait max ms",
                 "wait p50 ms of those that waited", "seconds spent waiting"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
