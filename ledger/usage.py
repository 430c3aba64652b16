"""The usage projection: what each account was charged, per local calendar day and model.

Charges are counted twice, in the same transaction as the charge: per 15-minute UTC slot
(exact whatever the zone: every zone in use is offset by a multiple of 15 minutes), and per
calendar day in the account's current time zone. Reads use the day rows, so a year is at most
366 rows a model; a time-zone change folds the account's slots into days of the new zone once,
so every past charge lands on the day it reads as in the credit history now.

Each charge (a settled hold, or a direct withdrawal) adds its credits to the day of its
recording, the same instant the credit history shows; a settled task counts as one
prediction, its items are the rows the model predicted (the ones charged for).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from events import RecordedEvent, SqlDatabase
from events.projection import NO_FACTS
from events.sums import SumTable, add_sums
from ledger import limits
from ledger.events import (
    AccountOpened,
    CreditsWithdrawn,
    HoldReleased,
    HoldSettled,
    TaskCompleted,
    TaskFailed,
    TaskSubmitted,
    TimeZoneSet,
)
from ledger.projections import ZONE_FACT
from ledger.whole_task import whole_task

NO_MODEL = 0  # the model column of a direct charge (no task, no model)
MAX_RANGE_DAYS = 366  # a leap year: a range is at most this many days, both ends included


@dataclass(frozen=True, kw_only=True)
class UsageRow:
    """One day (`day` set) or one model (`model_id` set; None: direct charges)."""

    day: date | None = None
    model_id: int | None = None
    predictions: int = 0
    items: int = 0
    credits: int = 0


@dataclass(frozen=True, kw_only=True)
class UsageReport:
    first: date
    last: date
    time_zone: str
    rows: tuple[UsageRow, ...]
    total: UsageRow


class UsageProjector:
    name = "usage"
    tables: tuple[str, ...] = ("usage_slots", "usage_days", "usage_tasks", "usage_zones")
    schema = """
    CREATE TABLE IF NOT EXISTS usage_slots (
        user_id     INTEGER NOT NULL,
        slot        INTEGER NOT NULL,
        model_id    INTEGER NOT NULL,
        predictions INTEGER NOT NULL CHECK (predictions >= 0),
        items       INTEGER NOT NULL CHECK (items >= 0),
        credits     INTEGER NOT NULL CHECK (credits >= 0),
        PRIMARY KEY (user_id, slot, model_id)
    );
    CREATE TABLE IF NOT EXISTS usage_days (
        user_id     INTEGER NOT NULL,
        day         INTEGER NOT NULL,
        model_id    INTEGER NOT NULL,
        predictions INTEGER NOT NULL CHECK (predictions >= 0),
        items       INTEGER NOT NULL CHECK (items >= 0),
        credits     INTEGER NOT NULL CHECK (credits >= 0),
        PRIMARY KEY (user_id, day, model_id)
    );
    CREATE TABLE IF NOT EXISTS usage_tasks (
        task_id  INTEGER PRIMARY KEY,
        user_id  INTEGER NOT NULL,
        model_id INTEGER NOT NULL,
        items    INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS usage_zones (
        user_id   INTEGER PRIMARY KEY,
        time_zone TEXT    NOT NULL
    );
    """

    async def apply(self, db: SqlDatabase, recorded: RecordedEvent) -> None:
        event, at = recorded.event, recorded.recorded_at
        if isinstance(event, AccountOpened):
            await db.execute("INSERT INTO usage_zones VALUES (?, 'UTC')", (event.user_id,))
        elif isinstance(event, TimeZoneSet):
            await db.execute("UPDATE usage_zones SET time_zone = ? WHERE user_id = ?",
                             (event.time_zone, event.user_id))
            await _refold_days(db, event.user_id, event.time_zone)
        elif isinstance(event, TaskSubmitted):
            await db.execute("INSERT INTO usage_tasks VALUES (?, ?, ?, ?)",
                             (event.task_id, event.user_id, event.model_id,
                              len(event.input_data)))
        elif isinstance(event, HoldSettled):
            model, items = await _task(db, event.task_id)
            await _add(db, event.user_id, at, model, (1, items, event.amount_credits))
        elif isinstance(event, TaskCompleted):
            if event.unpredictable:  # rows the model could not predict were not charged
                model, _ = await _task(db, event.task_id)
                await _take_items(db, event.user_id, at, model, len(event.unpredictable))
            await db.execute("DELETE FROM usage_tasks WHERE task_id = ?", (event.task_id,))
        elif isinstance(event, TaskFailed | HoldReleased):
            await db.execute("DELETE FROM usage_tasks WHERE task_id = ?", (event.task_id,))
        elif isinstance(event, CreditsWithdrawn):
            await _add(db, event.user_id, at, NO_MODEL, (0, 0, event.amount_credits))


    async def apply_all(self, db: SqlDatabase, appended: Sequence[RecordedEvent],
                        facts: Mapping[str, Any] = NO_FACTS) -> None:
        """A whole task in one write: its slot and day rows get the charge once, with the
        rows the model could not predict already taken off, and no usage_tasks row is made
        only to be deleted (a failed task leaves no row at all); else event by event. The
        day is in the zone the writer read just before (ZONE_FACT), when it says."""
        task = whole_task(appended)
        if task is None or task[2].recorded_at != task[3].recorded_at:
            for recorded in appended:  # (one append has one instant; never seen otherwise)
                await self.apply(db, recorded)
            return
        submitted, resolved, finished = task[0].event, task[2].event, task[3].event
        assert isinstance(submitted, TaskSubmitted)
        if not isinstance(resolved, HoldSettled):
            return  # held, released, failed: nothing charged, nothing to count
        assert isinstance(finished, TaskCompleted)
        items = len(submitted.input_data) - len(finished.unpredictable)
        zone = facts.get(ZONE_FACT)
        await _add(db, resolved.user_id, task[2].recorded_at, submitted.model_id,
                   (1, items, resolved.amount_credits),
                   time_zone=zone if type(zone) is str else None)


async def _task(db: SqlDatabase, task_id: int) -> tuple[int, int]:
    """The task's model and its valid rows, as submitted."""
    row = await db.fetchone("SELECT model_id, items FROM usage_tasks WHERE task_id = ?",
                            (task_id,))
    assert row is not None, f"task {task_id} was charged but never submitted"
    return int(row["model_id"]), int(row["items"])


@functools.lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return limits.zone(name)


def day_number(at: datetime, time_zone: str) -> int:
    """The local calendar date of an instant, as a proleptic ordinal (date.toordinal)."""
    return at.astimezone(_zone(time_zone)).date().toordinal()


def _slot_start(slot: int) -> datetime:
    return datetime.fromtimestamp(slot * limits.SLOT_S, UTC)


# Counter tables (events/sums.py): in a write session their additions are held for the
# batch and written once at its end, summed by key.
SLOTS = SumTable("usage_slots", ("user_id", "slot", "model_id"),
                 ("predictions", "items", "credits"))
DAYS = SumTable("usage_days", ("user_id", "day", "model_id"),
                ("predictions", "items", "credits"))


async def _add(db: SqlDatabase, user_id: int, at: datetime, model_id: int,
               counts: tuple[int, int, int], *, time_zone: str | None = None) -> None:
    """`time_zone`: the account's, if the caller knows it (else read). The day is fixed
    now: a later change of zone refolds the days from the slots (their rows written first)."""
    if time_zone is None:
        time_zone = await time_zone_of(db, user_id)
    await add_sums(db, SLOTS, (user_id, limits.slot_of(at), model_id), counts)
    await add_sums(db, DAYS, (user_id, day_number(at, time_zone), model_id), counts)


async def _take_items(db: SqlDatabase, user_id: int, at: datetime, model_id: int,
                      items: int) -> None:
    """Appended with its HoldSettled, so at the same instant: the rows it added to exist."""
    time_zone = await time_zone_of(db, user_id)
    await db.execute("UPDATE usage_slots SET items = items - ? "
                     "WHERE user_id = ? AND slot = ? AND model_id = ?",
                     (items, user_id, limits.slot_of(at), model_id))
    await db.execute("UPDATE usage_days SET items = items - ? "
                     "WHERE user_id = ? AND day = ? AND model_id = ?",
                     (items, user_id, day_number(at, time_zone), model_id))


async def _refold_days(db: SqlDatabase, user_id: int, time_zone: str) -> None:
    """The account's day rows again, from its slots, in the new zone. Bounded by the
    account's active slots (35,040 a year at most per model), and zone changes are rare."""
    slots = await db.fetchall("SELECT * FROM usage_slots WHERE user_id = ? ORDER BY slot",
                              (user_id,))
    days: dict[tuple[int, int], list[int]] = {}
    for row in slots:
        key = (day_number(_slot_start(int(row["slot"])), time_zone), int(row["model_id"]))
        total = days.setdefault(key, [0, 0, 0])
        for i, column in enumerate(("predictions", "items", "credits")):
            total[i] += int(row[column])
    await db.execute("DELETE FROM usage_days WHERE user_id = ?", (user_id,))
    for (day, model_id), (predictions, items, credits) in sorted(days.items()):
        await db.execute("INSERT INTO usage_days VALUES (?, ?, ?, ?, ?, ?)",
                         (user_id, day, model_id, predictions, items, credits))


# -- reads ---------------------------------------------------------------------------------

async def time_zone_of(db: SqlDatabase, user_id: int) -> str:
    row = await db.fetchone("SELECT time_zone FROM usage_zones WHERE user_id = ?", (user_id,))
    return "UTC" if row is None else str(row["time_zone"])


def _sum(rows: list[UsageRow]) -> UsageRow:
    return UsageRow(predictions=sum(r.predictions for r in rows),
                    items=sum(r.items for r in rows), credits=sum(r.credits for r in rows))


async def usage(db: SqlDatabase, user_id: int, first: date, last: date,
                group_by: str) -> UsageReport:
    """Every day of [first, last] (zeros included), or every model charged in it, with the
    range's total. The caller bounds the range (MAX_RANGE_DAYS)."""
    assert first <= last and group_by in ("day", "model")
    time_zone = await time_zone_of(db, user_id)
    column = "day" if group_by == "day" else "model_id"
    found = await db.fetchall(
        f"SELECT {column} AS k, SUM(predictions) AS p, SUM(items) AS i, SUM(credits) AS c "
        f"FROM usage_days WHERE user_id = ? AND day >= ? AND day <= ? GROUP BY {column} "
        f"ORDER BY {column}", (user_id, first.toordinal(), last.toordinal()))
    counts = {int(r["k"]): (int(r["p"]), int(r["i"]), int(r["c"])) for r in found}
    if group_by == "day":
        days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        rows = [_row(counts.get(d.toordinal(), (0, 0, 0)), day=d) for d in days]
    else:
        rows = [_row(c, model_id=None if k == NO_MODEL else k) for k, c in counts.items()]
    return UsageReport(first=first, last=last, time_zone=time_zone, rows=tuple(rows),
                       total=_sum(rows))


def _row(counts: tuple[int, int, int], *, day: date | None = None,
         model_id: int | None = None) -> UsageRow:
    predictions, items, credits = counts
    return UsageRow(day=day, model_id=model_id, predictions=predictions, items=items,
                    credits=credits)


def today_in(time_zone: str, now: datetime) -> date:
    return now.astimezone(_zone(time_zone)).date()
