"""Faults and stalls of a store for integration tests: SQLite's writer meets a disk I/O
error at its next statement of one kind (injected: a real one cannot be had on demand),
PostgreSQL's writer loses its connection (a real fault: its backend is killed from another
session, mid-transaction), and a SQLite read connection is kept busy inside SQLite for as
long as a test needs (a long read, without its length)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from events import Database, SqlSession, StoreUnavailable
from events.postgres import PostgresEventStore
from events.sqlite import SQLiteEventStore


def fail_next_sqlite(store: SQLiteEventStore, statement: str) -> None:
    """The writer's next `statement` (exactly this text: COMMIT, ROLLBACK) fails once."""
    writer, faults = store._writer, ["disk I/O error (injected)"]
    assert writer is not None
    real = writer.execute

    async def execute(query: str, params: Any = ()) -> None:
        if query == statement and faults:
            raise StoreUnavailable(faults.pop())
        await real(query, params)

    writer.execute = execute  # type: ignore[method-assign]


async def kill_pg_writer(store: PostgresEventStore, session: SqlSession) -> None:
    """From inside a job: the writer's backend is terminated by another session; what the
    job queued is sent first, so it was on the wire."""
    row = await session.db.fetchone("SELECT pg_backend_pid() AS pid")
    assert row is not None
    await store.read_db().fetchone("SELECT pg_terminate_backend(?)", (row["pid"],))


@asynccontextmanager
async def held_inside(db: Database) -> AsyncIterator[asyncio.Task[Any]]:
    """A read on `db` that stays inside SQLite (a function that waits) until the block
    ends; yields that read, once it is running. Reads queued on `db` wait behind it."""
    entered, release = threading.Event(), threading.Event()

    def held() -> int:
        entered.set()
        release.wait(30)
        return 1

    await db.conn.create_function("held", 0, held)
    read = asyncio.create_task(db.fetchone("SELECT held() AS held"))
    try:
        assert await asyncio.to_thread(entered.wait, 30), "the held read never started"
        yield read
    finally:
        release.set()
        await read
