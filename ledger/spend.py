"""The spend projection: each account's settings (time zone, limits) and its spending per
15-minute UTC slot and key, written in the same transaction as the holds that spend.

A hold adds its credits to the slot it was taken in; a release, or the part a settle gives
back, takes them out of that same slot, so a period's spending is one indexed range sum.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from events import RecordedEvent, SqlDatabase
from events.projection import NO_FACTS
from events.sums import SumTable, add_sums
from ledger import limits
from ledger.events import (
    AccountOpened,
    CreditsHeld,
    CreditsWithdrawn,
    HoldReleased,
    HoldSettled,
    LimitsSet,
    TimeZoneSet,
)
from ledger.limits import Limits, PeriodSpend
from ledger.whole_task import whole_task

NO_KEY = ""  # the key column of spending without an API key (a login, a direct charge)


@dataclass(frozen=True, kw_only=True)
class KeyLimit:
    """The API key a request came with, and its own monthly limit (None: none)."""

    key_id: str  # opaque, "key_" + hex (branch keys)
    monthly_limit_credits: int | None


class SpendProjector:
    name = "spend"
    tables: tuple[str, ...] = ("account_settings", "spend", "spend_holds")
    schema = """
    CREATE TABLE IF NOT EXISTS account_settings (
        user_id               INTEGER PRIMARY KEY,
        time_zone             TEXT    NOT NULL,
        daily_limit_credits   INTEGER CHECK (daily_limit_credits >= 0),
        monthly_limit_credits INTEGER CHECK (monthly_limit_credits >= 0)
    );
    CREATE TABLE IF NOT EXISTS spend (
        user_id       INTEGER NOT NULL,
        key_id        TEXT    NOT NULL,
        slot          INTEGER NOT NULL,
        spent_credits INTEGER NOT NULL CHECK (spent_credits >= 0),
        PRIMARY KEY (user_id, key_id, slot)
    );
    CREATE INDEX IF NOT EXISTS spend_by_slot ON spend (user_id, slot);
    CREATE TABLE IF NOT EXISTS spend_holds (
        task_id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL,
        key_id  TEXT    NOT NULL,
        slot    INTEGER NOT NULL
    );
    """

    async def apply(self, db: SqlDatabase, recorded: RecordedEvent) -> None:
        event = recorded.event
        if isinstance(event, AccountOpened):
            await db.execute("INSERT INTO account_settings VALUES (?, 'UTC', NULL, NULL)",
                             (event.user_id,))
        elif isinstance(event, TimeZoneSet):
            await db.execute("UPDATE account_settings SET time_zone = ? WHERE user_id = ?",
                             (event.time_zone, event.user_id))
        elif isinstance(event, LimitsSet):
            await db.execute(
                "UPDATE account_settings SET daily_limit_credits = ?, "
                "monthly_limit_credits = ? WHERE user_id = ?",
                (event.daily_credits, event.monthly_credits, event.user_id))
        elif isinstance(event, CreditsHeld):
            slot, key_id = limits.slot_of(recorded.recorded_at), event.key_id or NO_KEY
            await db.execute("INSERT INTO spend_holds VALUES (?, ?, ?, ?)",
                             (event.task_id, event.user_id, key_id, slot))
            await _add(db, event.user_id, key_id, slot, event.amount_credits)
        elif isinstance(event, CreditsWithdrawn):
            await _add(db, event.user_id, NO_KEY, limits.slot_of(recorded.recorded_at),
                       event.amount_credits)
        elif isinstance(event, HoldSettled | HoldReleased):
            returned = (event.released_credits if isinstance(event, HoldSettled)
                        else event.amount_credits)
            row = await db.fetchone("SELECT key_id, slot FROM spend_holds WHERE task_id = ?",
                                    (event.task_id,))
            assert row is not None, f"task {event.task_id} resolved a hold never taken"
            await db.execute("DELETE FROM spend_holds WHERE task_id = ?", (event.task_id,))
            if returned:  # the slot's row exists: the hold added to it
                await db.execute(
                    "UPDATE spend SET spent_credits = spent_credits - ? "
                    "WHERE user_id = ? AND key_id = ? AND slot = ?",
                    (returned, event.user_id, row["key_id"], row["slot"]))

    async def apply_all(self, db: SqlDatabase, appended: Sequence[RecordedEvent],
                        facts: Mapping[str, Any] = NO_FACTS) -> None:
        """A whole task in one write: the slot gets what was charged, and no spend_holds row
        is made only to be deleted; anything else event by event."""
        if (task := whole_task(appended)) is None:
            for recorded in appended:
                await self.apply(db, recorded)
            return
        held, resolved = task[1].event, task[2].event
        assert isinstance(held, CreditsHeld) and isinstance(resolved, HoldSettled | HoldReleased)
        returned = (resolved.released_credits if isinstance(resolved, HoldSettled)
                    else resolved.amount_credits)
        await _add(db, held.user_id, held.key_id or NO_KEY, limits.slot_of(task[1].recorded_at),
                   held.amount_credits - returned)


# Spending only grows by addition here (a hold's return is an UPDATE, which, like the limit
# checks' reads, has the batch's held additions written first): events/sums.py.
SPEND = SumTable("spend", ("user_id", "key_id", "slot"), ("spent_credits",))


async def _add(db: SqlDatabase, user_id: int, key_id: str, slot: int, credits: int) -> None:
    assert credits >= 0, "an addition to spending is never negative"
    await add_sums(db, SPEND, (user_id, key_id, slot), (credits,))


# -- reads ---------------------------------------------------------------------------------

async def account_limits(db: SqlDatabase, user_id: int) -> Limits:
    row = await db.fetchone("SELECT * FROM account_settings WHERE user_id = ?", (user_id,))
    if row is None:
        return Limits()
    return Limits(daily_credits=row["daily_limit_credits"],
                  monthly_credits=row["monthly_limit_credits"], time_zone=row["time_zone"])


async def spent_in(db: SqlDatabase, user_id: int, period: tuple[datetime, datetime],
                   key_id: str | None = None) -> int:
    first, end = limits.slots(period)
    if key_id is None:
        row = await db.fetchone(
            "SELECT COALESCE(SUM(spent_credits), 0) AS s FROM spend "
            "WHERE user_id = ? AND slot >= ? AND slot < ?", (user_id, first, end))
    else:
        row = await db.fetchone(
            "SELECT COALESCE(SUM(spent_credits), 0) AS s FROM spend "
            "WHERE user_id = ? AND key_id = ? AND slot >= ? AND slot < ?",
            (user_id, key_id, first, end))
    return int(row["s"]) if row else 0


async def periods_at(db: SqlDatabase, user_id: int, at: datetime,
                     key: KeyLimit | None = None) -> list[PeriodSpend]:
    """The account's day and month (and the key's month) around `at`, with what is spent."""
    settings = await account_limits(db, user_id)
    tz = limits.zone(settings.time_zone)
    day, month = limits.day_period(at, tz), limits.month_period(at, tz)
    found = [
        PeriodSpend(limit="daily", limit_credits=settings.daily_credits,
                    spent_credits=await spent_in(db, user_id, day), resets_at=day[1]),
        PeriodSpend(limit="monthly", limit_credits=settings.monthly_credits,
                    spent_credits=await spent_in(db, user_id, month), resets_at=month[1]),
    ]
    if key is not None:
        found.append(PeriodSpend(
            limit="key_monthly", limit_credits=key.monthly_limit_credits,
            spent_credits=await spent_in(db, user_id, month, key.key_id), resets_at=month[1]))
    return found
