"""The audit and the startup check over a log of ~100k events.

Building: the real LedgerService on the project's own store writes the log (accounts,
top-ups, predictions settled, a few failed and a few rejected), with one shortcut that does
not change what is stored: the file is written with synchronous=OFF. Events, hashes,
projections and control rows come from the project's own code, and the audit below must pass
on them.

Timed, each a few rounds:
- `python -m ledger audit --db FILE --quiet` as a subprocess (quick_check, hash chain,
  replay into fresh projections, compare), wall clock including interpreter start, and
  ledger.audit.audit() in this process;
- the startup check `web.app.check_log` (quick_check + verify_chain over store.read_rows()),
  and verify_chain alone, on an open store;
- the floor: the same hashes recomputed over rows read with plain sqlite3.

Run: .venv/bin/python bench/audit_bench.py [--events 100000] [--rounds 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchlib import PYTHON, ROOT, Spread, load, machine, table

sys.path.insert(0, str(ROOT))

import ledger.audit
from events.hashing import GENESIS_HASH
from events.sqlite import row_from_db
from events.verify import verify_chain
from ledger import LedgerService, TaskDraft, ledger_store
from ledger.control import Operation
from web.app import check_log

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


def run_audit(path: Path) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([PYTHON, "-m", "ledger", "audit", "--db", str(path), "--quiet"],
                          cwd=ROOT, capture_output=True, text=True, timeout=AUDIT_TIMEOUT_S,
                          check=False)
    elapsed = time.perf_counter() - started
    passed = done.returncode == 0 and "AUDIT PASSED" in done.stdout
    verdict = "passed" if passed else f"FAILED (exit {done.returncode}): {done.stdout[-400:]}"
    return elapsed, verdict


async def startup_checks(path: Path) -> dict[str, float]:
    store = ledger_store(path)
    await store.open()
    try:
        started = time.perf_counter()
        await check_log(store)
        check = time.perf_counter() - started
        started = time.perf_counter()
        report = await verify_chain(store.read_rows())
        chain = time.perf_counter() - started
        assert report.ok, report
    finally:
        await store.close()
    return {"check_log": check, "verify_chain": chain}


async def audit_in_process(path: Path) -> float:
    started = time.perf_counter()
    report = await ledger.audit.audit(path, show_progress=False)
    elapsed = time.perf_counter() - started
    assert report.ok, report.render()
    return elapsed


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the summary here too")
    args = parser.parse_args(argv)
    assert 1_000 <= args.events <= 2_000_000 and 1 <= args.rounds <= 20
    print(f"audit_bench: {machine()}; load {load()}; ~{args.events:,} events; {args.rounds} rounds",
          flush=True)
    timings: dict[str, list[float]] = {name: [] for name in LABELS}
    verdicts = []
    with tempfile.TemporaryDirectory(prefix="mlc-audit-bench-") as scratch:
        path = Path(scratch) / "audit.db"
        events, build_s = asyncio.run(build_log(path, args.events))
        size_mb = path.stat().st_size / 1e6
        print(f"  built {events:,} events in {build_s:.1f} s ({events / build_s:,.0f} "
              f"events/s); file {size_mb:.1f} MB", flush=True)
        for number in range(args.rounds):
            audit_s, verdict = run_audit(path)
            verdicts.append(verdict)
            timings["audit"].append(audit_s)
            for name, seconds in asyncio.run(startup_checks(path)).items():
                timings[name].append(seconds)
            timings["floor"].append(hash_floor(path))
            timings["audit_in_process"].append(asyncio.run(audit_in_process(path)))
            print(f"  round {number + 1}: " + "; ".join(
                f"{name} {timings[name][-1]:.2f} s" for name in LABELS) + f" ({verdict})",
                flush=True)
    rows = []
    summary: dict[str, Any] = {"events": events, "file_mb": size_mb, "build_s": build_s,
                               "verdicts": verdicts}
    for name, label in LABELS.items():
        seconds = Spread.of(timings[name])
        rate = Spread.of([events / s for s in timings[name]])
        rows.append([label, seconds.show(2, " s"), rate.show(0)])
        summary[name] = {"seconds": asdict(seconds), "events_per_s": asdict(rate)}
    print()
    print(table(["step", "time, median (min–max)", "events/s, median (min–max)"], rows))
    passed = all(v == "passed" for v in verdicts)
    print(f"\naudit verdicts: {verdicts.count('passed')}/{len(verdicts)} passed"
          + ("" if passed else f": {verdicts}"))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
