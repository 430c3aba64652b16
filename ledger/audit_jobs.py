"""The audit's work split across processes: hash ranges, and the replay by account.

Every row can be checked against its stored predecessor alone, so position ranges verify
independently and the first break is the least one found. Accounts are independent, so the
replay into scratch projections is split by account (stream) and the parts merged; a merge
that trips a constraint spanning accounts (a username taken twice, a task id used by two)
tells the caller to replay in one process instead, so the verdict is always the serial one.

Each worker opens the live file read-only on its own connection: the log is append-only, so
rows up to the head the caller read are the same in every snapshot.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from events.database import InlineDatabase
from events.hashing import GENESIS_HASH
from events.projection import apply_each
from events.sql_log import row_from_db
from events.verify import ChainBreak, check_link
from ledger.events import ledger_codec
from ledger.projections import ledger_projectors

# Below this many events one process is quicker than starting others.
PARALLEL_FROM_EVENTS = 20_000
# SQLite attaches at most 10 databases: the live file and the replay's parts.
MAX_REPLAY_PARTS = 8


@dataclass(frozen=True)
class RangeResult:
    first_break: ChainBreak | None


def _connect(live_uri: str) -> sqlite3.Connection:
    conn = sqlite3.connect(live_uri, uri=True)
    conn.row_factory = sqlite3.Row
    return conn


def verify_range(live_uri: str, first: int, last: int) -> RangeResult:
    """Positions first..last must all be there and chain, starting from the stored hash of
    position first - 1 (whose own row is another range's)."""
    with closing(_connect(live_uri)) as conn:
        previous = GENESIS_HASH
        if first > 1:
            row = conn.execute("SELECT hash FROM events WHERE position = ?",
                               (first - 1,)).fetchone()
            previous = row["hash"] if row else GENESIS_HASH
        expected = first
        for raw in conn.execute("SELECT * FROM events WHERE position BETWEEN ? AND ? "
                                "ORDER BY position", (first, last)):
            row = row_from_db(dict(raw))
            if (broken := check_link(row, expected, previous)) is not None:
                return RangeResult(broken)
            previous, expected = row.hash, expected + 1
        if expected <= last:
            return RangeResult(ChainBreak(expected, f"position {expected} is missing"))
    return RangeResult(None)


def ranges(total: int, parts: int) -> list[tuple[int, int]]:
    size = -(-total // parts)
    return [(start, min(start + size - 1, total)) for start in range(1, total + 1, size)]


def first_break(pool: ProcessPoolExecutor, live_uri: str, total: int,
                jobs: int) -> ChainBreak | None:
    # More ranges than processes: a slow range does not leave the others idle.
    futures = [pool.submit(verify_range, live_uri, a, b) for a, b in ranges(total, 4 * jobs)]
    breaks = [b for f in futures if (b := f.result().first_break) is not None]
    return min(breaks, key=lambda b: b.position, default=None)


@dataclass(frozen=True)
class ReplayResult:
    scratch: str
    failure: ChainBreak | None


def replay_part(live_uri: str, scratch: str, part: int, parts: int,
                before: int) -> ReplayResult:
    return asyncio.run(_replay_part(live_uri, scratch, part, parts, before))


async def _replay_part(live_uri: str, scratch: str, part: int, parts: int,
                       before: int) -> ReplayResult:
    codec, projectors = ledger_codec(), ledger_projectors()
    db = await InlineDatabase.connect_inline(scratch)
    try:
        # A scratch file, thrown away after the audit: no journal, no fsync (about 10% here).
        await db.execute("PRAGMA journal_mode = OFF")
        await db.execute("PRAGMA synchronous = OFF")
        await db.execute("ATTACH DATABASE ? AS live", (live_uri,))
        await db.execute("BEGIN")
        for table in tables():  # a rerun (after a failure) starts from empty tables
            await db.execute(f"DELETE FROM main.{table}")
        # Streams are account-<id>; a hash of the id picks the part (any other name lands in
        # part 0). Not the id itself: workloads correlate with parity (in the 1M bench log
        # every prediction is on an even id); Knuth's multiplier, high bits, mixes them.
        query = ("SELECT * FROM live.events WHERE position < ? AND "
                 "((CAST(substr(stream_id, 9) AS INTEGER) * 2654435761 % 4294967296) >> 16) "
                 "% ? = ? ORDER BY position")
        async for raw in db.iterate(query, (before, parts, part)):
            row = row_from_db(raw)
            try:
                await apply_each(db, projectors, row.to_recorded(codec))
            except Exception as exc:  # as the serial replay says it
                await db.execute("COMMIT")
                return ReplayResult(scratch, ChainBreak(row.position,
                                                        f"cannot be replayed: {exc}"))
        await db.execute("COMMIT")
    finally:
        await db.close()
    return ReplayResult(scratch, None)


def part_files(folder: Path, jobs: int) -> list[Path]:
    return [folder / f"part{k}.db" for k in range(min(jobs, MAX_REPLAY_PARTS))]


def replay_parts(pool: ProcessPoolExecutor, live_uri: str, parts: Sequence[Path],
                 before: int) -> ChainBreak | None:
    """Replay every part (files made and attached by the caller) up to `before`; the first
    event that cannot be replayed, if any."""
    futures = [pool.submit(replay_part, live_uri, str(path), k, len(parts), before)
               for k, path in enumerate(parts)]
    failures = [b for f in futures if (b := f.result().failure) is not None]
    return min(failures, key=lambda b: b.position, default=None)


def tables() -> Sequence[str]:
    return [table for p in ledger_projectors() for table in p.tables]
