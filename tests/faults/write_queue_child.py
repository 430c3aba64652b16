"""A writer process for tests/faults/test_write_queue.py: one SQLiteEventStore on a shared
file, SQLite's busy timeout at 0 (so only the queue can make it wait), driven by lines on
stdin and answering with lines on stdout.

  hold      append one event inside a job, say "holding", keep the transaction (and the
            write lock) open until a line comes on stdin, then commit and say "committed P"
  append N  say "ready", wait for a line, append N events one commit each, then print a JSON
            line: how many committed, how many failed (and the first error), the lock's stats
Flags: --no-queue (SQLite's own locking only).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from events import Event, EventCodec, SQLiteEventStore, StoreError
from events.store import SqlSession


@dataclass(frozen=True, kw_only=True)
class Wrote(Event, type_name="Wrote"):
    by: int
    n: int


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def main(db: str, command: str, count: int, queue: bool) -> None:
    codec = EventCodec()
    codec.register(Wrote)
    store = SQLiteEventStore(db, codec, write_queue=queue, busy_timeout_ms=0)
    await store.open()
    try:
        if command == "hold":
            async def held(session: SqlSession) -> int:
                recorded = await session.append(f"hold-{os.getpid()}", 0,
                                                [Wrote(by=os.getpid(), n=0)])
                say("holding")
                await asyncio.to_thread(sys.stdin.readline)
                return recorded[0].position

            say(f"committed {await store.transact(held)}")
            return
        say("ready")
        await asyncio.to_thread(sys.stdin.readline)
        ok, failed, first_error = 0, 0, ""
        for n in range(count):
            try:
                await store.append(f"w-{os.getpid()}-{n}", 0, [Wrote(by=os.getpid(), n=n)])
                ok += 1
            except StoreError as exc:
                failed += 1
                first_error = first_error or str(exc)
        stats = store.write_lock_stats
        say(json.dumps({"ok": ok, "failed": failed, "error": first_error,
                        "stats": asdict(stats) if stats else None}))
    finally:
        await store.close()


if __name__ == "__main__":
    args = sys.argv[1:]
    use_queue = "--no-queue" not in args
    args = [a for a in args if a != "--no-queue"]
    asyncio.run(main(args[0], args[1], int(args[2]) if len(args) > 2 else 0, use_queue))
