"""The audit, the start-up and the floor over one log (1M events by default), in one run.

Building: the real LedgerService on the project's own store writes the log (accounts,
top-ups, predictions settled, a few failed and a few rejected), with one shortcut that does
not change what is stored: the file is written with synchronous=OFF. Building a million
events takes minutes, so the file is built once into bench/.cache/ (gitignored) and copied
for each run; the audit must pass on it.

Timed, each a few rounds, and given as ratios to the floor:
- `python -m ledger audit --db FILE --quiet [--jobs N]` as a subprocess (wall clock, with
  interpreter start), peak RSS summed over the process and its worker processes;
- start-up: `main.py` from exec to the first 200 of /healthz on a file verified before
  (the mark at the head), and `web.app.check_log` alone with the rows it read; and the first
  start of a never-verified file (the one-time full walk);
- the floor: every hash recomputed over rows read with plain sqlite3, in one process.

Run: .venv/bin/python bench/audit_bench.py [--events 1000000] [--rounds 3] [--jobs 2]
     [--json out.json] [--serving-before CHECKOUT] [--serving-samples 5] [--before CHECKOUT]

`--serving-before` times another checkout's `main.py` (a `git worktree` of an earlier commit,
with its own .venv link) on the same file in the same rounds, start by start in turn with
this one's (`--serving-samples` of each per round, their median kept); the server's CPU
(user + sys, from /proc) at its first 200 is given too, the figure a busy machine moves least.
`--before CHECKOUT` times only the audit, this checkout's and another's (a `git worktree` of an
older commit, say) by turns over one copy of the log, and gives the ratios per round.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchlib import BENCH, PYTHON, ROOT, ServerProcess, Spread, free_port, load, machine, table

sys.path.insert(0, str(ROOT))

from events.hashing import GENESIS_HASH
from events.sql_log import row_from_db
from ledger import LedgerService, TaskDraft, ledger_store
from ledger.audit_fast import payload
from ledger.control import Operation
from web.app import check_log

CACHE = BENCH / ".cache"
BUILD_CLIENTS = 64
ITEMS = 10
AUDIT_TIMEOUT_S = 900
LABELS = {
    "audit": "python -m ledger audit (subprocess, wall)",
    "audit_in_process": "ledger.audit.audit() in process",
    "check_log": "startup check (quick_check + verify_chain)",
    "verify_chain": "verify_chain(store.read_rows())",
    "floor": "hashes only, plain sqlite3 (floor)",
}


async def build_log(path: Path, target_events: int) -> tuple[int, float]:
    """Accounts, top-ups and predictions until the log holds about target_events."""
    store = ledger_store(path, synchronous="OFF")  # what is stored is the same as with FULL
    await store.open()
    started = time.perf_counter()
    try:
        ledger = LedgerService(store)
        users = max(10, target_events // 100)
        user_ids = []
        for k in range(users):
            opened = await ledger.open_account(f"audit{k}", "not-a-real-hash")
            if k % 50 != 49:  # one in fifty never tops up: its predictions are rejected
                await ledger.top_up(opened.id, 1_000_000)
            user_ids.append(opened.id)
        tasks_left = (target_events - 2 * users) // 4
        inputs = [float(i) for i in range(ITEMS)]

        async def client(k: int) -> None:
            nonlocal tasks_left
            while tasks_left > 0:
                tasks_left -= 1
                user_id = user_ids[(k + tasks_left) % len(user_ids)]
                draft = TaskDraft(model_id=1, input_data=inputs, input_indexes=list(
                    range(ITEMS)), invalid=[], cost_credits=ITEMS)
                op = Operation(user_id=user_id, operation_id=uuid.uuid4().hex, kind="predict",
                               fingerprint="bench")
                ticket = await ledger.submit_task(user_id, draft, op)
                if not ticket.run:
                    continue
                if tasks_left % 50 == 0:
                    await ledger.fail_task(user_id, ticket.task_id, "the model failed: bench")
                else:
                    await ledger.complete_task(user_id, ticket.task_id,
                                               [2 * x for x in inputs], "bench prediction")

        await asyncio.gather(*(client(k) for k in range(BUILD_CLIENTS)))
        events = await store.head_position()
    finally:
        await store.close()
    return events, time.perf_counter() - started


def tree_rss_kb(pid: int) -> int:
    """Resident memory of a process and every descendant, from /proc (Linux)."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        with contextlib.suppress(OSError):
            status = Path(f"/proc/{current}/status").read_text()
            total += next((int(line.split()[1]) for line in status.splitlines()
                           if line.startswith("VmRSS:")), 0)
            children = Path(f"/proc/{current}/task/{current}/children").read_text()
            todo.extend(int(c) for c in children.split())
    return total


def children_cpu_s() -> float:
    """CPU seconds (user + sys) of every child reaped so far, and of the children they
    reaped (an audit's worker processes)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_audit(path: Path, jobs: int | None,
              checkout: Path = ROOT) -> tuple[float, int, str, float]:
    """Wall seconds, peak RSS (KB, children included, sampled every 50 ms), verdict, and CPU
    seconds (workers included): on a machine shared with other work, the CPU is the figure
    the load changes least. `checkout`: the source tree whose audit runs."""
    command = [PYTHON, "-m", "ledger", "audit", "--db", str(path), "--quiet"]
    command += ["--jobs", str(jobs)] if jobs else []
    cpu_before = children_cpu_s()
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=checkout, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss_kb(proc.pid))
        time.sleep(0.05)  # a sampling interval, not a synchronisation
    elapsed = time.perf_counter() - started
    out = proc.stdout.read() if proc.stdout else ""
    passed = proc.returncode == 0 and "AUDIT PASSED" in out
    return (elapsed, peak, "passed" if passed else f"FAILED ({proc.returncode}): {out[-400:]}",
            children_cpu_s() - cpu_before)


async def startup_check(path: Path) -> tuple[float, int]:
    store = ledger_store(path)
    await store.open()
    try:
        started = time.perf_counter()
        checked = await check_log(store)
        return time.perf_counter() - started, checked.rows_read
    finally:
        await store.close()


def time_to_serving(path: Path, scratch: Path, checkout: Path = ROOT) -> tuple[float, float]:
    """Exec to the first 200 of /healthz, and the server's CPU seconds by then."""
    port = free_port()
    python = checkout / ".venv" / "bin" / "python" if checkout != ROOT else Path(PYTHON)
    server = ServerProcess("ML Cabinet", [str(python), "main.py", "--port", str(port), "--db",
                                          str(path)], env={"ML_CABINET_VERIFY_RATE": "0"},
                           log_path=scratch / "server.log",
                           health_url=f"http://127.0.0.1:{port}/healthz", cwd=checkout)
    started = time.perf_counter()
    with server:
        elapsed = time.perf_counter() - started
        assert server.proc is not None
        return elapsed, process_cpu_s(server.proc.pid)


def process_cpu_s(pid: int) -> float:
    """utime + stime of a running process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def serving_samples(path: Path, scratch: Path, checkouts: list[Path], samples: int
                    ) -> list[tuple[float, float]]:
    """Per checkout, the median wall and CPU of `samples` starts, taken in turn."""
    taken: list[list[tuple[float, float]]] = [[] for _ in checkouts]
    for _ in range(samples):
        for index, checkout in enumerate(checkouts):
            taken[index].append(time_to_serving(path, scratch, checkout))
    return [(statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs))
            for runs in taken]


def hash_floor(path: Path) -> float:
    """The hashes alone: rows read with plain sqlite3, every hash recomputed and compared."""
    started = time.perf_counter()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.row_factory = sqlite3.Row
        previous = GENESIS_HASH
        for raw in conn.execute("SELECT * FROM events ORDER BY position"):
            row = row_from_db(dict(raw))
            assert row.hash == row.expected_hash(previous), row.position
            previous = row.hash
    return time.perf_counter() - started


def hash_floor_fast(path: Path) -> float:
    """The same hashes, written as the audit writes them (orjson where it gives
    canonical_json's bytes, ledger.audit_fast.payload), over plain tuples: what the audit's
    own hashing costs, with nothing else."""
    started = time.perf_counter()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        previous = GENESIS_HASH
        for row in conn.execute("SELECT position, stream_id, version, type_name, schema_version,"
                                " data, metadata, recorded_at, hash FROM events ORDER BY position"):
            assert hashlib.sha256(payload(previous, row)).hexdigest() == row[8], row[0]
            previous = row[8]
    return time.perf_counter() - started


def cached_log(events: int) -> tuple[Path, int, float]:
    """The built log for this size, built now if it is not in the cache."""
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"audit-{events}.db"
    if not path.exists():
        building = CACHE / f"building-{events}.db"
        building.unlink(missing_ok=True)
        built, build_s = asyncio.run(build_log(building, events))
        building.rename(path)
        print(f"  built {built:,} events in {build_s:.1f} s into {path}", flush=True)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        (count,) = conn.execute("SELECT COUNT(*) FROM events").fetchone()
    return path, int(count), path.stat().st_size / 1e6


LABELS = {
    "audit": "python -m ledger audit (default --jobs: the cores)",
    "audit_jobs1": "python -m ledger audit --jobs 1",
    "serving": "start-up: exec to first /healthz 200 (verified before)",
    "serving_before": "the same, --serving-before's checkout, same file and rounds",
    "check_log": "start-up check alone (check_log, verified before)",
    "first_start": "first start-up check of a never-verified file",
    "floor": "hashes only, plain sqlite3, one process (floor)",
    "floor_fast": "the same hashes as the audit writes them (orjson), one process",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=None, help="for the audit (default: cores)")
    parser.add_argument("--json", type=Path, help="write the summary here too")
    parser.add_argument("--serving-before", type=Path, help="another checkout to time the "
                        "start-up of, in turn with this one's")
    parser.add_argument("--serving-samples", type=int, default=1)
    parser.add_argument("--before", type=Path, metavar="CHECKOUT",
                        help="time only the audit, this checkout's and CHECKOUT's by turns")
    args = parser.parse_args(argv)
    assert 1_000 <= args.events <= 2_000_000 and 1 <= args.rounds <= 20
    print(f"audit_bench: {machine()}; load {load()}; ~{args.events:,} events; {args.rounds} rounds",
          flush=True)
    cached, events, size_mb = cached_log(args.events)
    if args.before:
        return audit_before_after(cached, args.before, args.rounds, args.jobs, args.json)
    labels = {k: v for k, v in LABELS.items()
              if k != "serving_before" or args.serving_before is not None}
    timings: dict[str, list[float]] = {name: [] for name in labels}
    rss: dict[str, list[int]] = {"audit": [], "audit_jobs1": []}
    cpu: dict[str, list[float]] = {"audit": [], "audit_jobs1": [], "floor": [], "floor_fast": [],
                                   **{name: [] for name in labels if name.startswith("serving")}}
    verdicts, rows_read = [], []
    with tempfile.TemporaryDirectory(prefix="mlc-audit-bench-") as scratch:
        path = Path(scratch) / "audit.db"
        for number in range(args.rounds):
            shutil.copy(cached, path)  # never verified: no mark yet
            first_s, _ = asyncio.run(startup_check(path))
            timings["first_start"].append(first_s)
            for name, jobs in (("audit", args.jobs), ("audit_jobs1", 1)):
                seconds, peak_kb, verdict, cpu_s = run_audit(path, jobs)
                timings[name].append(seconds)
                cpu[name].append(cpu_s)
                rss[name].append(peak_kb)
                verdicts.append(verdict)
            check_s, read = asyncio.run(startup_check(path))
            timings["check_log"].append(check_s)
            rows_read.append(read)
            checkouts = [ROOT, *([args.serving_before] if args.serving_before else [])]
            served = serving_samples(path, Path(scratch), checkouts, args.serving_samples)
            for name, (wall_s, cpu_s) in zip(("serving", "serving_before"), served,
                                             strict=False):
                timings[name].append(wall_s)
                cpu[name].append(cpu_s)
            for name, floor_of in (("floor", hash_floor), ("floor_fast", hash_floor_fast)):
                cpu_before = time.process_time()
                timings[name].append(floor_of(path))
                cpu[name].append(time.process_time() - cpu_before)
            print(f"  round {number + 1}: " + "; ".join(
                f"{name} {timings[name][-1]:.2f} s" for name in labels)
                + f"; audit peak RSS {rss['audit'][-1] / 1024:.0f} MB"
                + f"; rows read at start-up {read} ({verdicts[-2:]})", flush=True)
    rows = []
    summary: dict[str, Any] = {"events": events, "file_mb": size_mb, "verdicts": verdicts,
                               "startup_rows_read": rows_read,
                               "audit_peak_rss_mb": {k: [v / 1024 for v in vals]
                                                     for k, vals in rss.items()}}
    floor = Spread.of(timings["floor"]).median
    for name, label in labels.items():
        seconds = Spread.of(timings[name])
        ratio = Spread.of([s / f for s, f in zip(timings[name], timings["floor"], strict=True)])
        rows.append([label, seconds.show(2, " s"), ratio.show(2, "×")])
        summary[name] = {"seconds": asdict(seconds), "to_floor": asdict(ratio)}
    print()
    print(table(["step", "time, median (min–max)", "÷ floor, same round"], rows))
    cpu_rows = []
    for name, values in cpu.items():
        ratio = Spread.of([c / f for c, f in zip(values, cpu["floor"], strict=True)])
        cpu_rows.append([LABELS[name], Spread.of(values).show(2, " s"), ratio.show(2, "×")])
        summary[name]["cpu_seconds"] = asdict(Spread.of(values))
        summary[name]["cpu_to_floor_cpu"] = asdict(ratio)
    print()
    print(table(["step", "CPU (user+sys, workers included)", "÷ floor's CPU, same round"],
                cpu_rows))
    print(f"\nfloor median {floor:.2f} s; audit peak RSS (children included): "
          + "; ".join(f"{k} {max(v) / 1024:.0f} MB" for k, v in rss.items()))
    passed = all(v == "passed" for v in verdicts)
    print(f"audit verdicts: {verdicts.count('passed')}/{len(verdicts)} passed"
          + ("" if passed else f": {verdicts}"))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0 if passed else 1


def audit_before_after(cached: Path, before: Path, rounds: int, jobs: int | None,
                       json_path: Path | None) -> int:
    """`python -m ledger audit` of two checkouts over one copy of the log (the audit writes
    nothing), by turns: before, after in odd rounds, after, before in even ones, with the
    default --jobs and with --jobs 1. Ratios are taken within a round."""
    runs: dict[str, list[tuple[float, int, str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="mlc-audit-bench-") as scratch:
        path = Path(scratch) / "audit.db"
        shutil.copy(cached, path)
        for number in range(rounds):
            for jobs_now in (jobs, 1):
                sides = [("before", before), ("after", ROOT)]
                for side, checkout in sides if number % 2 == 0 else sides[::-1]:
                    name = f"{side}, --jobs {jobs_now or 'default'}"
                    runs.setdefault(name, []).append(run_audit(path, jobs_now, checkout))
                    wall, peak_kb, verdict, cpu_s = runs[name][-1]
                    print(f"  round {number + 1}: {name}: {wall:.2f} s wall, {cpu_s:.2f} s CPU, "
                          f"{peak_kb / 1024:.0f} MB, {verdict}; load {load()}", flush=True)
    rows, summary = [], {}
    for name, results in runs.items():
        side, jobs_label = name.split(", ")
        other = runs[f"before, {jobs_label}"]
        wall, cpu = Spread.of([r[0] for r in results]), Spread.of([r[3] for r in results])
        wall_ratio = Spread.of([a[0] / b[0] for a, b in zip(results, other, strict=True)])
        cpu_ratio = Spread.of([a[3] / b[3] for a, b in zip(results, other, strict=True)])
        peak_mb = max(r[1] for r in results) / 1024
        rows.append([name, wall.show(2, " s"), cpu.show(2, " s"), f"{peak_mb:.0f} MB",
                     wall_ratio.show(2, "×"), cpu_ratio.show(2, "×")])
        summary[name] = {"wall": asdict(wall), "cpu": asdict(cpu), "peak_rss_mb": peak_mb,
                         "wall_to_before": asdict(wall_ratio), "cpu_to_before": asdict(cpu_ratio),
                         "verdicts": [r[2] for r in results]}
    print()
    print(table(["audit", "wall, median (min–max)", "CPU, workers included", "peak RSS",
                 "wall ÷ before, same round", "CPU ÷ before, same round"], rows))
    if json_path:
        json_path.write_text(json.dumps(summary, indent=2))
    verdicts = [r[2] for results in runs.values() for r in results]
    print(f"audit verdicts: {verdicts.count('passed')}/{len(verdicts)} passed")
    return 0 if all(v == "passed" for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
