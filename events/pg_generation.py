"""The generation word for processes on one PostgreSQL server, on many machines.

No memory reaches across machines, so the word lives in each process and the database tells
every process when to change it. A write that changes what is cached increments a counter
row (`credential_generation`) and NOTIFYs the new value in its own transaction, so the signal
commits with the write or not at all. Each process LISTENs on a connection of its own; on a
notification it takes the new value into its word first, then acknowledges it in its row of
`credential_watchers`. The writer returns only once every watcher with a live lease has
acknowledged: when a logout's reply arrives, no process serves the old credential any more.

A watcher that cannot acknowledge (frozen, cut off, killed) is waited for at most until its
lease runs out. It vouches for its word only while its lease holds by its own clock, timed
from before the renewal was sent (so it stops before the server thinks it did), and cannot
renew while it knows it is behind the counter. After a lapse the word takes a new epoch, so
nothing cached before it is used after it: a revocation that did not wait for it is obeyed.

A process of an older version revokes without bumping. So a watcher renews (and vouches)
only while every live process on the database (a lease in `owner_leases`, events/leases.py)
has a watcher row: during a rolling upgrade the new processes cache nothing until the old
ones are gone, except for a process started since the last beat (at most `beat_s`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg  # type: ignore[import-untyped]  # ships no type hints

from events.errors import StoreError
from events.generation import Transact, Work
from events.sql import SqlDatabase
from events.store import SqlSession

T = TypeVar("T")
log = logging.getLogger(__name__)

CHANNEL = "mlc_generation"
ACKS = "mlc_generation_acks"

GENERATION_SCHEMA = """
CREATE TABLE IF NOT EXISTS credential_generation (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation BIGINT  NOT NULL CHECK (generation >= 0)
);
INSERT INTO credential_generation (id, generation) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS credential_watchers (
    watcher     TEXT        PRIMARY KEY,
    seen        BIGINT      NOT NULL,
    lease_until TIMESTAMPTZ NOT NULL
);
"""

# In the writer's transaction: the new value, and the notice that carries it out at COMMIT.
BUMP = (f"UPDATE credential_generation SET generation = generation + 1 WHERE id = 1 "
        f"RETURNING generation, pg_notify('{CHANNEL}', generation::text) AS notified")
# A watcher renews only while it has seen the counter's value: one that missed a notice
# cannot keep a lease, so a writer never waits on it longer than one lease. And only while
# no live process lacks a watcher row (one of an older version, which revokes silently).
RENEW = ("INSERT INTO credential_watchers (watcher, seen, lease_until) "
         "SELECT $1, $2, clock_timestamp() + make_interval(secs => $3) "
         "FROM credential_generation WHERE id = 1 AND generation <= $2 AND NOT EXISTS ("
         "SELECT 1 FROM owner_leases o WHERE o.expires_at > clock_timestamp() "
         "AND o.owner <> $1 AND NOT EXISTS ("
         "SELECT 1 FROM credential_watchers w WHERE w.watcher = o.owner)) "
         "ON CONFLICT (watcher) DO UPDATE SET seen = GREATEST(credential_watchers.seen, "
         "excluded.seen), lease_until = excluded.lease_until RETURNING seen")
ACK = (f"WITH acked AS (UPDATE credential_watchers SET seen = GREATEST(seen, $2) "
       f"WHERE watcher = $1 RETURNING 1) SELECT pg_notify('{ACKS}', '') FROM acked")
LAGGARDS = ("SELECT count(*) AS n FROM credential_watchers "
            "WHERE seen < ? AND lease_until > clock_timestamp()")
READ = "SELECT generation FROM credential_generation WHERE id = 1"
# Rows of watchers gone this long are dropped; their leases ran out long before.
FORGET = "DELETE FROM credential_watchers WHERE lease_until < clock_timestamp() - interval '1 hour'"


def _boot_clock() -> float:
    """Seconds that keep counting while the machine sleeps or its VM is paused (Linux's
    CLOCK_BOOTTIME): the server's leases run on through those, so must this clock."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


class PgGeneration:
    """This process's word, kept in step with the counter by LISTEN once started. `connect`
    opens the watcher's own connection; `read_db` is the store's pool, for the writer's
    wait; `watcher` is the process's owner id (its lease in `owner_leases`). Not started (a
    command-line tool), it vouches for nothing and still bumps and waits when it writes."""

    def __init__(self, connect: Callable[[], Awaitable[asyncpg.Connection]],
                 read_db: Callable[[], SqlDatabase], *, watcher: str | None = None,
                 lease_s: float = 3.0,
                 monotonic: Callable[[], float] | None = None) -> None:
        self._connect = connect
        self._read_db = read_db
        self.lease_s = lease_s
        self.beat_s = lease_s / 6   # several beats may fail before the lease runs out
        self.margin_s = lease_s / 6  # this clock stops vouching before the server's lease ends
        self._monotonic = monotonic or (
            _boot_clock if hasattr(time, "CLOCK_BOOTTIME") else time.monotonic)
        self.watcher = watcher or uuid.uuid4().hex
        self._conn: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()  # one statement at a time on the watcher's connection
        self._seen = -1
        self._epoch = 0
        self._valid_until = float("-inf")
        self._acked = asyncio.Event()  # set (and replaced) on every acknowledgement seen
        self._acking: asyncio.Task[None] | None = None
        self._beating: asyncio.Task[None] | None = None

    # -- the hot path ----------------------------------------------------------------------

    def current(self) -> bytes | None:
        if self._monotonic() >= self._valid_until:
            return None
        return struct.pack(">qq", self._epoch, self._seen)

    # -- the writer's side -----------------------------------------------------------------

    async def changing(self, transact: Transact, work: Work[T]) -> T:
        async def bumped(s: SqlSession) -> tuple[T, int]:
            result = await work(s)
            row = await s.db.fetchone(BUMP)
            assert row is not None, "credential_generation has its one row"
            return result, int(row["generation"])

        result, generation = await transact(bumped)
        self._adopt(generation)  # this process at once, before its own notice arrives
        await self._wait_acknowledged(generation)
        return result

    async def _wait_acknowledged(self, generation: int) -> None:
        """Until no live lease lags: a laggard cannot renew, so its lease ends by itself
        (whatever lease it runs with). The write has committed: a failure here is waited
        out (one lease, after which every lease that lagged has ended), not raised."""
        while True:
            acked = self._acked
            try:
                row = await self._read_db().fetchone(LAGGARDS, (generation,))
            except (StoreError, asyncpg.InterfaceError) as error:  # a pool closing too
                log.warning("credential generation %d: acknowledgements unread (%s); "
                            "waiting out a lease", generation, error)
                await asyncio.sleep(self.lease_s + self.margin_s)  # a bound, not a sync
                return
            if row is None or int(row["n"]) == 0:
                return
            # An acknowledgement wakes us; the timer covers our own watcher being away.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(acked.wait(), 0.05)

    # -- the watcher -----------------------------------------------------------------------

    async def start(self) -> None:
        """Listen and take the first lease; a server that is away is tried again each beat."""
        try:
            await self._attach()
        except Exception as error:
            log.warning("credential watcher not attached yet: %s", error)
        self._beating = asyncio.create_task(self._beat_forever(), name="credential-watcher")

    async def _attach(self) -> None:
        conn = await self._connect()
        try:
            await conn.add_listener(CHANNEL, self._on_change)
            await conn.add_listener(ACKS, self._on_ack)
            conn.add_termination_listener(self._on_lost)
            # Taken as it is, not as a maximum: a restored or failed-over server may have
            # gone back, and this attach starts a new epoch anyway.
            self._seen = int(await conn.fetchval(READ))
            await conn.execute(FORGET)
        except BaseException:
            conn.terminate()
            raise
        self._conn = conn
        await self._renew()

    async def _renew(self) -> None:
        conn = self._conn
        if conn is None:
            return
        sent = self._monotonic()
        async with self._lock:
            row = await conn.fetchrow(RENEW, self.watcher, self._seen, self.lease_s)
            if row is None:  # behind the counter: catch up, then renew
                self._adopt(int(await conn.fetchval(READ)))
                row = await conn.fetchrow(RENEW, self.watcher, self._seen, self.lease_s)
        if row is None:  # behind again, or an old process is about: no word until a beat works
            self._valid_until = float("-inf")
            return
        if self._monotonic() >= self._valid_until:
            # Lapsed, before the renewal or while it ran (its snapshot may predate a bump
            # whose writer did not wait for us): nothing cached before it is good after it.
            self._epoch += 1
        self._valid_until = sent + self.lease_s - self.margin_s

    async def beat(self) -> None:
        """Renew the lease, or attach again when the connection is gone."""
        if self._conn is None or self._conn.is_closed():
            self._lapse()
            await self._attach()
        else:
            await self._renew()

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.beat_s)  # a timer, not a synchronisation
            try:
                await self.beat()
            except Exception as error:  # the watcher must outlive any one bad beat
                log.warning("credential watcher beat failed: %s", error)

    def _adopt(self, generation: int) -> None:
        if generation > self._seen:
            self._seen = generation

    def _lapse(self) -> None:
        self._valid_until = float("-inf")
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None

    def _on_lost(self, conn: Any) -> None:
        if conn is self._conn:
            self._valid_until = float("-inf")
            self._conn = None

    def _on_change(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        self._take(int(payload))

    def _take(self, generation: int) -> None:
        self._adopt(generation)  # the word changes before the acknowledgement leaves
        if self._acking is None or self._acking.done():
            self._acking = asyncio.get_running_loop().create_task(self._acknowledge())

    def _on_ack(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        acked, self._acked = self._acked, asyncio.Event()
        acked.set()

    async def _acknowledge(self) -> None:
        acked = -1
        while acked < self._seen and (conn := self._conn) is not None:
            acked = self._seen
            try:
                async with self._lock:
                    await conn.fetch(ACK, self.watcher, acked)
            except Exception as error:  # the next renewal finds the counter and catches up
                log.warning("credential watcher could not acknowledge: %s", error)
                return

    async def stop(self) -> None:
        await self._cancel(self._beating)
        self._valid_until = float("-inf")
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(Exception):
                async with self._lock:  # after any acknowledgement under way
                    await conn.execute("DELETE FROM credential_watchers WHERE watcher = $1",
                                       self.watcher)
        self._conn = None  # no acknowledgement starts from here on
        await self._cancel(self._acking)
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close(timeout=2.0)
            conn.terminate()

    @staticmethod
    async def _cancel(task: asyncio.Task[None] | None) -> None:
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def freeze(self) -> None:
        """Stop beating and acknowledging without telling anyone: what a process that hung
        or lost the network looks like to the others (for tests and drills)."""
        for task in (self._beating, self._acking):
            if task is not None:
                task.cancel()
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.remove_termination_listener(self._on_lost)
            conn.terminate()  # its lease stays in the table until it runs out
