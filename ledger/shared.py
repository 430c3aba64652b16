"""Control-plane state that every process on one PostgreSQL database shares.

On SQLite these live where they always did (the cookie key in a file beside the database, the
login throttle in memory); on PostgreSQL the processes may run on different machines, so they
live in the database. Each write is one statement through the store's pool, which commits on
its own: none of it belongs in the ledger's transactions or behind their write lock.
"""

from __future__ import annotations

import secrets

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
    window_start DOUBLE PRECISION NOT NULL,  -- the server's clock, seconds since the epoch
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
