"""Control-plane state that every process on one PostgreSQL database shares.

On SQLite these live where they always did (the cookie key in a file beside the database, the
login throttle in memory); on PostgreSQL the processes may run on different machines, so they
live in the database. Each write is one statement through the store's pool, which commits on
its own: none of it belongs in the ledger's transactions or behind their write lock.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from typing import Protocol

from events import SqlDatabase

SHARED_SCHEMA = """
CREATE TABLE IF NOT EXISTS shared_secrets (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS login_attempts (
    key          TEXT             PRIMARY KEY,
    failures     INTEGER          NOT NULL,
    window_start DOUBLE PRECISION NOT NULL,  -- wall-clock seconds since the epoch
    locked_until DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS login_attempts_by_age ON login_attempts (window_start);
"""


async def shared_secret(db: SqlDatabase, name: str, nbytes: int = 32) -> bytes:
    """The secret called `name`, made on first use. Of processes asking at once, the first
    insert wins and the others' `DO NOTHING` waits for it, so all read one value."""
    await db.execute("INSERT INTO shared_secrets (name, value) VALUES (?, ?) "
                     "ON CONFLICT (name) DO NOTHING", (name, secrets.token_hex(nbytes)))
    row = await db.fetchone("SELECT value FROM shared_secrets WHERE name = ?", (name,))
    assert row is not None, "inserted or already there"
    value = bytes.fromhex(str(row["value"]))
    if len(value) != nbytes:
        raise RuntimeError(f"the shared secret {name!r} is damaged ({len(value)} bytes)")
    return value


class AttemptRule(Protocol):
    @property
    def failures(self) -> int: ...  # failures allowed in the window

    @property
    def window_s(self) -> float: ...

    @property
    def lock_s(self) -> float: ...  # the first lock; it doubles with each failure past the limit

    @property
    def max_lock_s(self) -> float: ...


# One failure against one record, in one statement, so processes failing at once all count:
# a new window starts after `window`; past `allowed`, the lock doubles up to `max_lock`.
_FAILED = """
INSERT INTO login_attempts AS a (key, failures, window_start, locked_until)
VALUES (:key, 1, :now, 0)
ON CONFLICT (key) DO UPDATE SET
    failures = CASE WHEN :now - a.window_start > :window THEN 1 ELSE a.failures + 1 END,
    window_start = CASE WHEN :now - a.window_start > :window THEN :now ELSE a.window_start END,
    locked_until = CASE
        WHEN :now - a.window_start > :window THEN 0
        WHEN a.failures + 1 > :allowed THEN :now + LEAST(
            :lock * power(2, LEAST(a.failures - :allowed, 20)), :max_lock)
        ELSE a.locked_until END
"""


class LoginAttempts:
    """Failed logins counted in PostgreSQL, for every process at once. `db` gives a database
    where each statement commits on its own (the PostgreSQL store's pool). Times are seconds
    on the callers' clocks, which agree well enough for throttling (leases use the server's)."""

    def __init__(self, db: Callable[[], SqlDatabase]) -> None:
        self.db = db

    async def locked_until(self, keys: Sequence[str]) -> float:
        row = await self.db().fetchone(
            "SELECT COALESCE(MAX(locked_until), 0) AS until FROM login_attempts "
            "WHERE key = ANY(?::text[])", (list(keys),))
        return float(row["until"]) if row else 0.0

    async def failed(self, records: Sequence[tuple[str, AttemptRule]], now: float) -> None:
        for key, rule in records:
            await self.db().execute(_FAILED, {
                "key": key, "now": now, "window": rule.window_s, "allowed": rule.failures,
                "lock": rule.lock_s, "max_lock": rule.max_lock_s})

    async def forget(self, key: str) -> None:
        await self.db().execute("DELETE FROM login_attempts WHERE key = ?", (key,))

    async def prune(self, now: float, horizon_s: float, max_rows: int) -> None:
        """Drop records no rule needs any more; then, under a spray, the oldest ones, down
        to 90% of `max_rows`."""
        db = self.db()
        await db.execute("DELETE FROM login_attempts WHERE locked_until < ? AND "
                         "window_start < ?", (now, now - horizon_s))
        await db.execute(
            "DELETE FROM login_attempts WHERE key IN (SELECT key FROM login_attempts "
            "ORDER BY window_start LIMIT GREATEST((SELECT count(*) FROM login_attempts) - ?, "
            "0))", (max_rows * 9 // 10,))

    async def count(self) -> int:
        row = await self.db().fetchone("SELECT count(*) AS n FROM login_attempts")
        return int(row["n"]) if row else 0
