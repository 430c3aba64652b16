"""The api_keys projection: every key a user made (never its secret), and its revocation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from events import RecordedEvent, SqlDatabase
from events.projection import NO_FACTS
from events.rows import projected_time
from ledger.admin_projection import apply_each_unless_whole_task
from ledger.events import KeyCreated, KeyRevoked


class KeysProjector:
    name = "api_keys"
    tables: tuple[str, ...] = ("api_keys",)
    schema = """
    CREATE TABLE IF NOT EXISTS api_keys (
        position              INTEGER PRIMARY KEY,  -- of its KeyCreated
        id                    TEXT    NOT NULL UNIQUE,
        user_id               INTEGER NOT NULL,
        name                  TEXT    NOT NULL,
        scope                 TEXT    NOT NULL CHECK (scope IN ('predict', 'read')),
        prefix                TEXT    NOT NULL,
        last4                 TEXT    NOT NULL,
        monthly_limit_credits INTEGER,
        created_at            TEXT    NOT NULL,
        expires_at            TEXT,
        revoked_at            TEXT
    );
    CREATE INDEX IF NOT EXISTS api_keys_by_user ON api_keys (user_id, position);
    """

    async def apply_all(self, db: SqlDatabase, appended: Sequence[RecordedEvent],
                        facts: Mapping[str, Any] = NO_FACTS) -> None:
        await apply_each_unless_whole_task(self.apply, db, appended)

    async def apply(self, db: SqlDatabase, recorded: RecordedEvent) -> None:
        event, at = recorded.event, projected_time(recorded)
        if isinstance(event, KeyCreated):
            await db.execute(
                "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                (recorded.position, event.key_id, event.user_id, event.name, event.scope,
                 event.prefix, event.last4, event.monthly_limit_credits, at, event.expires_at))
        elif isinstance(event, KeyRevoked):
            await db.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND user_id = ? "
                             "AND revoked_at IS NULL", (at, event.key_id, event.user_id))
