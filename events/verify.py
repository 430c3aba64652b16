"""Verifying the hash chain: the first row whose place or content does not match the log."""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass

from events.hashing import GENESIS_HASH
from events.rows import StoredRow


@dataclass(frozen=True)
class ChainBreak:
    position: int
    reason: str


@dataclass(frozen=True)
class ChainReport:
    events: int
    head_hash: str
    first_break: ChainBreak | None

    @property
    def ok(self) -> bool:
        return self.first_break is None


def check_link(row: StoredRow, expected_position: int, previous_hash: str) -> ChainBreak | None:
    """Whether one row sits where the log expects it and chains onto `previous_hash`: every
    row can be checked against its stored predecessor alone, so ranges verify independently."""
    if row.position != expected_position:
        reason = (f"position {expected_position} is missing" if row.position >
                  expected_position else f"position {row.position} is out of order")
        return ChainBreak(expected_position, reason)
    if row.hash != row.expected_hash(previous_hash):
        return ChainBreak(row.position, "hash does not match the content and the previous hash")
    return None


async def verify_chain(
    rows: AsyncIterable[StoredRow],
    progress: Callable[[int], None] | None = None,
) -> ChainReport:
    """Walk the log in order; positions must run 1, 2, 3… and every hash must chain."""
    expected_position = 1
    previous_hash = GENESIS_HASH
    count = 0
    async for row in rows:
        if (broken := check_link(row, expected_position, previous_hash)) is not None:
            return ChainReport(count, previous_hash, broken)
        previous_hash = row.hash
        expected_position += 1
        count += 1
        if progress is not None:
            progress(count)
    return ChainReport(count, previous_hash, None)
