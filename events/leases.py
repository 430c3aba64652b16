"""Which processes sharing a database are alive: one Liveness protocol, two adapters.

A hold names the process that runs its task; when that process dies, another one releases it.
On a SQLite file every process is on one machine and holds a file lock the kernel drops when
it dies (`FileLiveness`). On PostgreSQL the processes may run on many machines, so each keeps
a lease in the database, renewed by a heartbeat; an owner whose lease ran out is dead
(`LeaseLiveness`). Leases are timed by the server's clock, so machines need not agree on time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from events.errors import StoreError
from events.instances import InstanceRegistry
from events.sql import SqlDatabase

log = logging.getLogger(__name__)

LEASE_SCHEMA = """
CREATE TABLE IF NOT EXISTS owner_leases (
    owner        TEXT        PRIMARY KEY,
    started_at   TIMESTAMPTZ NOT NULL,
    heartbeat_at TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL
);
"""

# Rows of owners dead this long are dropped: their holds were released long before.
FORGET_AFTER = "1 day"


class Liveness(Protocol):
    owner: str

    async def start(self) -> str:
        """Register this process as alive; its owner id, for the holds it opens."""
        ...

    async def is_alive(self, owner: str) -> bool: ...

    async def stop(self) -> None:
        """A clean exit: this owner is dead from now on, its holds free to release."""
        ...


class FileLiveness:
    """Alive = holds its lock file (events/instances.py); for processes on one machine."""

    def __init__(self, db_path: str | Path) -> None:
        self.registry = InstanceRegistry(db_path)
        self.owner = self.registry.instance_id

    async def start(self) -> str:
        return self.registry.register()

    async def is_alive(self, owner: str) -> bool:
        return self.registry.is_alive(owner)

    async def stop(self) -> None:
        self.registry.unregister()


class LeaseLiveness:
    """Alive = its lease in `owner_leases` has not expired. `db` gives a database where each
    statement commits on its own (the PostgreSQL store's pool), so a heartbeat never waits
    behind the ledger's write lock.

    After an outage of the server every lease has run out, the living ones' too. So this
    process declares others dead only once its own lease has been renewed without a gap for
    `judge_after_s` (two beats by default): by then every living process has renewed too.
    """

    def __init__(self, db: Callable[[], SqlDatabase], *, lease_s: float = 15.0,
                 judge_after_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.db = db
        self.clock = clock  # this process's own timing; leases are timed by the server
        self.lease_s = lease_s
        self.heartbeat_s = lease_s / 3  # two beats may fail before the lease runs out
        self.judge_after_s = 2 * self.heartbeat_s if judge_after_s is None else judge_after_s
        self.owner = uuid.uuid4().hex
        self._task: asyncio.Task[None] | None = None
        self._renewed_at = 0.0  # clock() at the last heartbeat that worked
        self._healthy_since: float | None = None  # since when every beat has worked

    async def start(self) -> str:
        await self.renew()
        self._task = asyncio.create_task(self._beat_forever(), name="owner-lease-heartbeat")
        return self.owner

    async def renew(self) -> None:
        await self.db().execute(
            "INSERT INTO owner_leases (owner, started_at, heartbeat_at, expires_at) "
            "SELECT ?, now, now, now + make_interval(secs => ?::float8) "
            "FROM (SELECT clock_timestamp() AS now) AS t ON CONFLICT (owner) DO UPDATE SET "
            "heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at",
            (self.owner, self.lease_s))
        now = self.clock()
        if self._renewed_at and now - self._renewed_at > self.lease_s:
            log.warning("this process's lease ran out for %.1f s: the others may have "
                        "released its holds", now - self._renewed_at - self.lease_s)
        if self._healthy_since is None or now - self._renewed_at > 2 * self.heartbeat_s:
            self._healthy_since = now  # beats were missed: healthy again from now on
        self._renewed_at = now

    def _may_judge(self) -> bool:
        now = self.clock()
        return (self._healthy_since is not None
                and now - self._renewed_at <= 2 * self.heartbeat_s
                and now - self._healthy_since >= self.judge_after_s)

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)  # a timer, not a synchronisation
            try:
                await self.renew()
            except StoreError as error:  # the server is away: try again at the next beat
                log.warning("lease heartbeat failed: %s", error)
            except Exception:  # the heartbeat must outlive any one bad beat
                log.exception("lease heartbeat failed")

    async def is_alive(self, owner: str) -> bool:
        if owner == self.owner or not self._may_judge():
            return True  # in doubt, a hold stays: the next sweep looks again
        row = await self.db().fetchone(
            "SELECT expires_at > clock_timestamp() AS alive FROM owner_leases WHERE owner = ?",
            (owner,))
        return bool(row and row["alive"])  # no lease at all: nobody is running its tasks

    async def forget_the_long_dead(self) -> None:
        await self.db().execute(
            "DELETE FROM owner_leases WHERE expires_at < clock_timestamp() - "
            f"interval '{FORGET_AFTER}'")

    def stop_heartbeat(self) -> None:
        """Stop renewing without giving the lease up: what a process that froze, lost the
        network or was killed looks like to the others."""
        if self._task is not None:
            self._task.cancel()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self.db().execute("DELETE FROM owner_leases WHERE owner = ?", (self.owner,))
        except Exception as error:  # a shutdown goes on: the lease runs out by itself
            log.warning("could not give the lease up: %s", error)
