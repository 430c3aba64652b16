"""An export of 1,000,000 transactions through the real HTTP server, with the server's memory.

Building: one account with N transactions (top-ups and direct charges, alternating) and one
with 1,000, written through the store's own append (the project's seal, hash chain and
projections, 1,000 events an append, synchronous=OFF while building: what is stored is the same)
into bench/.cache/ (gitignored), verified once so that the server starts bounded, and copied
for each run.

Measured: `main.py` as a subprocess on the copy; for each export (the small account's, then
the big one's as CSV and as JSON) the server's peak resident memory (VmHWM of
/proc/<pid>/status, reset with /proc/<pid>/clear_refs before each export, so each peak is that
export's own), the wall time, the bytes and the rows received. The rows are checked: every one,
the header, in order.

Run: .venv/bin/python bench/export_bench.py [--transactions 1000000] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import sqlite3
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchlib import BENCH, PYTHON, ROOT, ServerProcess, free_port, load, machine, table

sys.path.insert(0, str(ROOT))

from events import Metadata, SqlSession
from ledger import LedgerService, Passwords, UserService, ledger_store
from ledger.events import CreditsDeposited, CreditsWithdrawn
from ledger.service import account_stream
from web.app import check_log

CACHE = BENCH / ".cache"
PASSWORD = "export bench password"
PER_APPEND = 1000
SMALL = 1000
CHUNK = 1 << 16


class Clock:
    """A second later at every append: a history spread over days, as a real one is."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


async def fill(store: Any, user_id: int, count: int) -> None:
    """`count` movements appended 1,000 at a time: +5, −3, +5, −3, ... (never overdrawn)."""
    written = 0
    while written < count:
        batch = min(PER_APPEND, count - written)

        async def work(s: SqlSession, batch: int = batch, first: int = written) -> None:
            version = await s.stream_version(account_stream(user_id))
            moves = [CreditsDeposited(user_id=user_id, amount_credits=5, description="Top-up")
                     if (first + n) % 2 == 0 else
                     CreditsWithdrawn(user_id=user_id, amount_credits=3,
                                      description="bench charge")
                     for n in range(batch)]
            await s.append(account_stream(user_id), version, moves,
                           Metadata(actor=f"user:{user_id}"))

        await store.transact(work)
        written += batch


async def build(path: Path, count: int) -> float:
    store = ledger_store(path, synchronous="OFF", clock=Clock())
    await store.open()
    started = time.perf_counter()
    try:
        users = UserService(LedgerService(store), Passwords.cheap())
        small = await users.register("small", PASSWORD)
        big = await users.register("big", PASSWORD)
        await fill(store, small.id, SMALL)
        await fill(store, big.id, count)
        await check_log(store)  # the one full walk, so that each start is bounded
    finally:
        await store.close()
    return time.perf_counter() - started


def cached(count: int) -> Path:
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"export-{count}.db"
    if not path.exists():
        building = CACHE / f"building-export-{count}.db"
        building.unlink(missing_ok=True)
        seconds = asyncio.run(build(building, count))
        building.rename(path)
        print(f"  built {count:,} transactions in {seconds:.0f} s into {path}", flush=True)
    return path


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_peak(pid: int) -> None:
    """Linux: writing 5 to clear_refs sets VmHWM back to the current RSS."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def login(base: str, username: str) -> str:
    request = urllib.request.Request(
        f"{base}/api/v1/auth/login", method="POST",
        data=json.dumps({"username": username, "password": PASSWORD}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        return str(json.load(reply)["access_token"])


def export(base: str, token: str, fmt: str, pid: int) -> dict[str, Any]:
    """One export read to the end in 64 KiB chunks; the server's own peak while it ran."""
    reset_peak(pid)
    before_kb = status_kb(pid, "VmRSS")
    request = urllib.request.Request(f"{base}/api/v1/transactions/export?format={fmt}",
                                     headers={"Authorization": f"Bearer {token}"})
    started = time.perf_counter()
    received, lines, head, tail = 0, 0, b"", b""
    with urllib.request.urlopen(request, timeout=600) as reply:
        while chunk := reply.read(CHUNK):
            if not head:
                head = chunk[:200]
            received += len(chunk)
            lines += chunk.count(b"\n")
            tail = (tail + chunk)[-200:]
    seconds = time.perf_counter() - started
    return {"format": fmt, "seconds": seconds, "bytes": received, "lines": lines,
            "rss_before_mb": before_kb / 1024, "peak_mb": status_kb(pid, "VmHWM") / 1024,
            "head": head, "tail": tail}


def rows_of(result: dict[str, Any]) -> int:
    """CSV: lines less the header; JSON: one object a line between '[' and ']'."""
    return int(result["lines"]) - (1 if result["format"] == "csv" else 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args(argv)
    assert 10_000 <= args.transactions <= 5_000_000
    print(f"export_bench: {machine()}; load {load()}; {args.transactions:,} transactions",
          flush=True)
    source = cached(args.transactions)
    with contextlib.closing(sqlite3.connect(source)) as conn:
        (stored,) = conn.execute("SELECT COUNT(*) FROM transactions").fetchone()
    results = []
    with tempfile.TemporaryDirectory(prefix="mlc-export-bench-") as scratch:
        path = Path(scratch) / "export.db"
        shutil.copy(source, path)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {"ML_CABINET_VERIFY_RATE": "0",  # no background walk beside the export
               "ML_CABINET_CHECKPOINT_EVERY": str(10**9), "ML_CABINET_CHECKPOINT_SECONDS": "86400",
               "ML_CABINET_SIGNING_KEY_FILE": str(Path(scratch) / "signing-key")}
        with ServerProcess("ML Cabinet", [PYTHON, "main.py", "--port", str(port), "--db",
                                          str(path)], env=env,
                           log_path=Path(scratch) / "server.log",
                           health_url=f"{base}/healthz") as server:
            assert server.proc is not None
            pid = server.proc.pid
            started_mb = status_kb(pid, "VmHWM") / 1024
            for username, expected in (("small", SMALL), ("big", args.transactions)):
                token = login(base, username)
                for fmt in ("csv", "json"):
                    result = export(base, token, fmt, pid)
                    result["user"], result["expected"] = username, expected
                    assert rows_of(result) == expected, (rows_of(result), expected)
                    results.append(result)
                    print(f"  {username} {fmt}: {rows_of(result):,} rows, "
                          f"{result['bytes'] / 1e6:.1f} MB in {result['seconds']:.1f} s; "
                          f"server peak {result['peak_mb']:.1f} MB", flush=True)
    assert results[2]["head"].startswith(b"id,created_at,kind,amount,balance_after,")
    small_peak = max(r["peak_mb"] for r in results if r["user"] == "small")
    rows = [[f"{r['user']} ({r['expected']:,} rows)", r["format"], f"{r['bytes'] / 1e6:,.1f}",
             f"{r['seconds']:.1f}", f"{rows_of(r) / r['seconds']:,.0f}",
             f"{r['rss_before_mb']:.1f}", f"{r['peak_mb']:.1f}",
             f"{r['peak_mb'] / small_peak:.2f}×"] for r in results]
    print()
    print(table(["export", "format", "MB sent", "seconds", "rows/s", "server RSS before, MB",
                 "server peak (VmHWM) during, MB", "peak ÷ 1,000-row peak"], rows))
    print(f"\nstored transactions {stored:,}; server peak at start-up {started_mb:.1f} MB")
    if args.json:
        args.json.write_text(json.dumps([{k: v for k, v in r.items() if k not in ("head", "tail")}
                                         for r in results], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
