"""Control-plane tables: credentials, API/session tokens, and operation ids.

They are not events: an immutable log should not keep old secrets forever, and operation ids
are bookkeeping for retries. They are written in the same transaction as the events they
accompany, so a registration or an operation is never half recorded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import orjson

from events import SqlDatabase
from ledger.errors import IdempotencyConflict, OperationInProgress

CONTROL_SCHEMA = """
CREATE TABLE IF NOT EXISTS credentials (
    user_id       INTEGER PRIMARY KEY,
    password_hash TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    token_hash TEXT    PRIMARY KEY,
    user_id    INTEGER NOT NULL,
    kind       TEXT    NOT NULL CHECK (kind IN ('api', 'session')),
    created_at TEXT    NOT NULL,
    expires_at TEXT    NOT NULL,
    revoked_at TEXT
);
CREATE INDEX IF NOT EXISTS tokens_by_user ON tokens (user_id);
CREATE TABLE IF NOT EXISTS operations (
    user_id      INTEGER NOT NULL,
    operation_id TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    fingerprint  TEXT    NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('pending', 'done')),
    task_id      INTEGER,
    outcome      TEXT,
    created_at   TEXT    NOT NULL,
    PRIMARY KEY (user_id, operation_id)
);
CREATE INDEX IF NOT EXISTS operations_by_task ON operations (task_id);
"""


@dataclass(frozen=True, kw_only=True)
class Operation:
    """A request's operation id. `fresh`: the server made the id for this one request (no
    Idempotency-Key came: MLService's per-process prefix and counter, no colon, where every
    client key is "api:..." or "page:..."), so it was never seen and no retry will ever
    send it: the one-write path neither looks for it nor keeps a row of it (the events'
    metadata still carry it)."""

    user_id: int
    operation_id: str
    kind: str
    fingerprint: str
    fresh: bool = False


async def replay_operation(db: SqlDatabase, op: Operation) -> dict[str, Any] | None:
    """The stored outcome of an operation seen before, or None if it is new.

    Raises when the id was used for a different request, or while the first is still running.
    """
    row = await db.fetchone(
        "SELECT kind, fingerprint, status, outcome FROM operations "
        "WHERE user_id = ? AND operation_id = ?", (op.user_id, op.operation_id))
    if row is None:
        return None
    if row["kind"] != op.kind or row["fingerprint"] != op.fingerprint:
        raise IdempotencyConflict(
            "this idempotency key was already used with a different request")
    if row["status"] == "pending":
        raise OperationInProgress("a request with this idempotency key is still running")
    outcome: dict[str, Any] = json.loads(row["outcome"])
    return outcome


async def record_operation(
    db: SqlDatabase, op: Operation, *, created_at: str, outcome: dict[str, Any] | None,
    task_id: int | None = None,
) -> None:
    status = "pending" if outcome is None else "done"
    await db.execute(
        "INSERT INTO operations VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (op.user_id, op.operation_id, op.kind, op.fingerprint, status, task_id,
         None if outcome is None else _outcome_text(outcome), created_at))


async def finish_task_operation(db: SqlDatabase, task_id: int, outcome: dict[str, Any]) -> None:
    await db.execute(
        "UPDATE operations SET status = 'done', outcome = ? WHERE task_id = ? "
        "AND status = 'pending'", (_outcome_text(outcome), task_id))


def _outcome_text(outcome: dict[str, Any]) -> str:
    """The stored outcome: any JSON text json.loads reads back (never hashed or compared as
    text); by orjson, a fifth of json.dumps's time, unless it refuses a value."""
    try:
        return orjson.dumps(outcome).decode()
    except TypeError:
        return json.dumps(outcome)


# -- credentials and tokens -----------------------------------------------------------------

# Expired and revoked tokens are dropped at each login, and at most this many of each kind
# stay live per user, so no client can grow the table without bound by logging in over and
# over, and API logins never push out a browser session.
MAX_LIVE_TOKENS = 50


async def password_hash_of(db: SqlDatabase, user_id: int) -> str | None:
    row = await db.fetchone("SELECT password_hash FROM credentials WHERE user_id = ?",
                            (user_id,))
    return None if row is None else str(row["password_hash"])


async def set_password_hash(db: SqlDatabase, user_id: int, password_hash: str, at: str) -> None:
    await db.execute(
        "INSERT INTO credentials VALUES (?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET "
        "password_hash = excluded.password_hash, updated_at = excluded.updated_at",
        (user_id, password_hash, at))


async def add_token(
    db: SqlDatabase, digest: str, user_id: int, kind: str, now: str, expires_at: str
) -> None:
    await db.execute("DELETE FROM tokens WHERE user_id = ? AND (revoked_at IS NOT NULL OR "
                     "expires_at <= ?)", (user_id, now))
    # Keeps the newest ones; written without SQLite's `LIMIT -1`, so it runs on PostgreSQL.
    await db.execute(
        "DELETE FROM tokens WHERE user_id = ? AND kind = ? AND token_hash NOT IN (SELECT "
        "token_hash FROM tokens WHERE user_id = ? AND kind = ? ORDER BY created_at DESC "
        "LIMIT ?)", (user_id, kind, user_id, kind, MAX_LIVE_TOKENS - 1))
    await db.execute("INSERT INTO tokens VALUES (?, ?, ?, ?, ?, NULL)",
                     (digest, user_id, kind, now, expires_at))


async def find_token(db: SqlDatabase, digest: str, kind: str) -> dict[str, Any] | None:
    return await db.fetchone(
        "SELECT user_id, expires_at FROM tokens WHERE token_hash = ? AND kind = ? "
        "AND revoked_at IS NULL", (digest, kind))


async def revoke_token(db: SqlDatabase, digest: str, at: str) -> None:
    await db.execute(
        "UPDATE tokens SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL",
        (at, digest))


async def revoke_user_tokens(db: SqlDatabase, user_id: int, at: str, keep: str | None) -> int:
    """Revoke every live token of the user but `keep` (a digest); how many were revoked."""
    row = await db.fetchone(
        "SELECT COUNT(*) AS n FROM tokens WHERE user_id = ? AND revoked_at IS NULL "
        "AND expires_at > ? AND token_hash <> ?", (user_id, at, keep or ""))
    await db.execute(
        "UPDATE tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL "
        "AND token_hash <> ?", (at, user_id, keep or ""))
    return 0 if row is None else int(row["n"])
