"""Start-up work is the tail since the verified mark, not the log: rows read, on both stores."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]  # ships no type hints
import pytest

from events import StoreCorrupted
from ledger import LedgerService, ledger_store_at
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
