"""The operator console's read models: each account's role and suspension, and the action log.

account_flags has a row only for accounts an operator event touched; no row means a plain,
active account. operator_actions is every operator event, newest last, for the action log.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from events import RecordedEvent, SqlDatabase
from events.projection import NO_FACTS
from events.rows import projected_time
from ledger.events import (
    AccountResumed,
    AccountSuspended,
    CreditsAdjusted,
    OperatorRoleGranted,
    OperatorRoleRevoked,
)
from ledger.whole_task import whole_task


class AdminProjector:
    name = "admin"
    tables: tuple[str, ...] = ("account_flags", "operator_actions")
    schema = """
    CREATE TABLE IF NOT EXISTS account_flags (
        user_id     INTEGER PRIMARY KEY,
        is_operator INTEGER NOT NULL CHECK (is_operator IN (0, 1)),
        suspended   INTEGER NOT NULL CHECK (suspended IN (0, 1)),
        reason      TEXT,
        changed_at  TEXT    NOT NULL
    );
    CREATE TABLE IF NOT EXISTS operator_actions (
        position       INTEGER PRIMARY KEY,
        user_id        INTEGER NOT NULL,
        operator_id    INTEGER,           -- NULL: the command line (`by` names who ran it)
        kind           TEXT    NOT NULL CHECK (kind IN ('adjustment', 'suspend', 'resume',
                                                        'grant', 'revoke')),
        amount_credits INTEGER,
        reason         TEXT    NOT NULL,
        created_at     TEXT    NOT NULL
    );
    CREATE INDEX IF NOT EXISTS operator_actions_by_user ON operator_actions (user_id, position);
    """

    async def apply_all(self, db: SqlDatabase, appended: Sequence[RecordedEvent],
                        facts: Mapping[str, Any] = NO_FACTS) -> None:
        await apply_each_unless_whole_task(self.apply, db, appended)

    async def apply(self, db: SqlDatabase, recorded: RecordedEvent) -> None:
        event, at = recorded.event, projected_time(recorded)
        if isinstance(event, CreditsAdjusted):
            await self._log(db, recorded, event.operator_id, "adjustment",
                            event.amount_credits, event.reason)
        elif isinstance(event, AccountSuspended | AccountResumed):
            suspended = isinstance(event, AccountSuspended)
            await self._flags(db, event.user_id, at, suspended=suspended, reason=event.reason)
            await self._log(db, recorded, event.operator_id,
                            "suspend" if suspended else "resume", None, event.reason)
        elif isinstance(event, OperatorRoleGranted | OperatorRoleRevoked):
            granted = isinstance(event, OperatorRoleGranted)
            by = event.granted_by if isinstance(event, OperatorRoleGranted) else event.revoked_by
            await self._flags(db, event.user_id, at, is_operator=granted)
            await self._log(db, recorded, None, "grant" if granted else "revoke", None,
                            f"from the command line by {by}")

    @staticmethod
    async def _flags(db: SqlDatabase, user_id: int, at: str, *, suspended: bool | None = None,
                     is_operator: bool | None = None, reason: str | None = None) -> None:
        row = await db.fetchone("SELECT * FROM account_flags WHERE user_id = ?", (user_id,))
        old_operator = bool(row["is_operator"]) if row else False
        old_suspended = bool(row["suspended"]) if row else False
        await db.execute("DELETE FROM account_flags WHERE user_id = ?", (user_id,))
        await db.execute(
            "INSERT INTO account_flags VALUES (?, ?, ?, ?, ?)",
            (user_id, int(old_operator if is_operator is None else is_operator),
             int(old_suspended if suspended is None else suspended),
             reason if suspended is not None else (row["reason"] if row else None), at))

    @staticmethod
    async def _log(db: SqlDatabase, recorded: RecordedEvent, operator_id: int | None,
                   kind: str, amount_credits: int | None, reason: str) -> None:
        await db.execute(
            "INSERT INTO operator_actions VALUES (?, ?, ?, ?, ?, ?, ?)",
            (recorded.position, int(recorded.stream_id.removeprefix("account-")), operator_id,
             kind, amount_credits, reason,
             recorded.recorded_at.isoformat(timespec="microseconds")))


async def apply_each_unless_whole_task(
        apply: Callable[[SqlDatabase, RecordedEvent], Awaitable[None]], db: SqlDatabase,
        appended: Sequence[RecordedEvent]) -> None:
    """For a projector with no task events: a whole task decided in one write (the hot
    path) has none of its events, so nothing to do, not even four calls that find nothing."""
    if whole_task(appended) is not None:
        return
    for recorded in appended:
        await apply(db, recorded)
