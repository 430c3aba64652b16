"""The account's security log: sign-ins, password changes, keys, limits, with the client's
address. A control-plane table, not events: it holds client addresses, which an immutable log
should not keep forever, and entries past the newest MAX_ENTRIES per user are dropped. (The
facts the auditor needs, a key made or revoked, are events as well: ledger/keys.py.)

Write with `record(s.db, ...)` inside the transaction that makes the change, so an entry is
never written for a change that did not happen, nor missing for one that did.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from events import SqlDatabase
from ledger.views import Page

SECURITY_SCHEMA = """
CREATE TABLE IF NOT EXISTS security_events (
    user_id        INTEGER NOT NULL,
    id             INTEGER NOT NULL,  -- per user, 1, 2, 3…: tells nothing of other users
    kind           TEXT    NOT NULL,
    detail         TEXT    NOT NULL,
    client_address TEXT    NOT NULL,
    occurred_at    TEXT    NOT NULL,
    PRIMARY KEY (user_id, id)
);
"""

KINDS = ("login", "logout_all", "password_changed", "key_created", "key_revoked",
         "limits_changed")
MAX_ENTRIES = 1000
MAX_DETAIL = 300


@dataclass(frozen=True, kw_only=True)
class SecurityEvent:
    id: int
    kind: str
    detail: str
    client_address: str
    occurred_at: str


async def record(db: SqlDatabase, *, user_id: int, kind: str, client: str, at: datetime,
                 detail: str = "") -> None:
    """Append one entry. Run inside a store transaction: every write there holds the store's
    one write lock (SQLite's writer, PostgreSQL's advisory lock), so MAX + 1 is never taken
    twice."""
    assert kind in KINDS, kind
    row = await db.fetchone("SELECT COALESCE(MAX(id), 0) + 1 AS n FROM security_events "
                            "WHERE user_id = ?", (user_id,))
    assert row is not None
    next_id = int(row["n"])
    await db.execute("INSERT INTO security_events VALUES (?, ?, ?, ?, ?, ?)",
                     (user_id, next_id, kind, detail[:MAX_DETAIL], client[:100],
                      at.isoformat(timespec="seconds")))
    if next_id > MAX_ENTRIES:
        await db.execute("DELETE FROM security_events WHERE user_id = ? AND id <= ?",
                         (user_id, next_id - MAX_ENTRIES))


async def page(db: SqlDatabase, user_id: int, *, limit: int = 20,
               starting_after: int | None = None) -> Page[SecurityEvent]:
    """Newest first; `starting_after` is the id of the last entry of the previous page."""
    cursor = starting_after if starting_after is not None else 2**62
    rows = await db.fetchall(
        "SELECT * FROM security_events WHERE user_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
        (user_id, cursor, limit + 1))
    return Page(data=tuple(SecurityEvent(
        id=int(r["id"]), kind=str(r["kind"]), detail=str(r["detail"]),
        client_address=str(r["client_address"]), occurred_at=str(r["occurred_at"]))
        for r in rows[:limit]), has_more=len(rows) > limit)
