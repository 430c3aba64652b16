"""Start-up work is the tail since the verified mark, not the log: rows read, on both stores."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]  # ships no type hints
import pytest

from events import StoreCorrupted
from ledger import LedgerService, ledger_store_at
from ledger.verifier import LEASE_S, LogVerifier
from web.app import check_log

pytestmark = pytest.mark.parametrize("ledger_at", ["sqlite", "postgres"], indirect=True)


async def grow(where: str | Path, top_ups: int) -> None:
    store = ledger_store_at(where)
    await store.open()
    try:
        ledger = LedgerService(store)
        user = (await ledger.open_account(f"u{await store.head_position()}", "h")).id
        for _ in range(top_ups):
            await ledger.top_up(user, 1)
    finally:
        await store.close()


async def start(where: str | Path) -> int:
    """What a server start checks; the rows it read."""
    store = ledger_store_at(where)
    await store.open()
    try:
        return (await check_log(store)).rows_read
    finally:
        await store.close()


async def test_start_up_reads_the_tail_whatever_the_size_of_the_log(
        ledger_at: str | Path) -> None:
    await grow(ledger_at, 20)
    assert await start(ledger_at) == 21  # never verified: the whole log, once
    await grow(ledger_at, 5)  # 6 events after the mark
    small = await start(ledger_at)
    await grow(ledger_at, 200)
    assert await start(ledger_at) == 2 + 201  # the mark's row, its predecessor, the tail
    await grow(ledger_at, 5)
    big = await start(ledger_at)
    assert small == big == 2 + 6
    assert await start(ledger_at) == 2  # nothing new: the mark and its predecessor


async def test_a_mark_on_the_first_event_holds_when_the_log_grows(
        ledger_at: str | Path) -> None:
    """A service first started on a log of one event keeps its mark at position 1; the next
    start must find that row, not call the log short (once seen in the PostgreSQL soak)."""
    await grow(ledger_at, 0)  # one event: the account opened
    assert await start(ledger_at) == 1
    await grow(ledger_at, 3)
    assert await start(ledger_at) == 1 + 4  # the mark's row (no predecessor), a tail of 4


async def test_an_edit_at_the_mark_is_caught_at_start_up(ledger_at: str | Path) -> None:
    await grow(ledger_at, 3)
    await start(ledger_at)  # the mark is at the head, position 4
    store = ledger_store_at(ledger_at)
    await store.open()
    try:  # the mark's row edited in place, its hash left alone: it no longer chains
        if isinstance(ledger_at, Path):
            with closing(sqlite3.connect(ledger_at, isolation_level=None)) as db:
                db.execute("DROP TRIGGER events_no_update")
                db.execute("UPDATE events SET data = replace(data, ':1,', ':7,') "
                           "WHERE position = 4")
        else:
            admin = await asyncpg.connect(ledger_at)
            try:
                await admin.execute("DROP TRIGGER events_no_update ON events")
                await admin.execute("UPDATE events SET data = replace(data, ':1,', ':7,') "
                                    "WHERE position = 4")
            finally:
                await admin.close()
        with pytest.raises(StoreCorrupted, match="broken at position 4"):
            await check_log(store)
    finally:
        await store.close()


async def test_one_process_at_a_time_walks_and_a_dead_ones_lease_passes_on(
        ledger_at: str | Path) -> None:
    await grow(ledger_at, 3)
    now = [datetime(2026, 12, 1, tzinfo=UTC)]
    store = ledger_store_at(ledger_at, clock=lambda: now[0])
    await store.open()
    try:
        first = LogVerifier(store, 1_000, owner="process-a")
        second = LogVerifier(store, 1_000, owner="process-b")
        assert await first.step() == 4 + 4  # the tail from 0, then the full pass
        assert await second.step() == 0  # the lease is the first one's
        assert second.state.mark_position == 4  # but it knows how far the log is verified
        now[0] += timedelta(seconds=LEASE_S + 1)  # the first process died: its lease ran out
        second.min_pass_interval_s = 0
        assert await second.step() == 4
    finally:
        await store.close()
