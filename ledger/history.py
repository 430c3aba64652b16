"""The history by date: the account's calendar days as UTC bounds, every transaction or task
of a range read in keyset pages (oldest first), and a statement's arithmetic.

Reads go page by page on the id (a transaction's id is its event's position), never one
cursor and never the whole range: an export of a million rows holds one page at a time.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from events import SqlDatabase
from ledger import limits, queries
from ledger.service import LedgerService
from ledger.views import TaskView, TransactionView

# A page of transactions is small (~150 bytes a row); a task holds up to a request's body of
# input and output, so its pages are smaller to keep the worst page to some megabytes.
TRANSACTION_PAGE = 1000
TASK_PAGE = 50
# Far enough from date.min and date.max that local midnight in any zone (±14 h) is a
# datetime, and far enough back for any history this service can hold.
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(9998, 12, 31)


@dataclass(frozen=True, kw_only=True)
class DayRange:
    """Calendar days `first_day`..`last_day` (inclusive) of a time zone, as the half-open UTC
    interval [start, end); None on either side is no bound."""

    first_day: date | None
    last_day: date | None
    time_zone: str
    start: datetime | None
    end: datetime | None

    def condition(self) -> tuple[str, tuple[str, ...]]:
        """The range as SQL over `created_at`: the stored timestamps are fixed-width UTC text
        (`2026-12-01T21:00:00.000000+00:00`), which sorts as time does in any collation."""
        parts, params = [], []
        if self.start is not None:
            parts.append(" AND created_at >= ?")
            params.append(_stamp(self.start))
        if self.end is not None:
            parts.append(" AND created_at < ?")
            params.append(_stamp(self.end))
        return "".join(parts), tuple(params)


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def day_start(day: date, time_zone: str) -> datetime:
    """The first instant (UTC) whose local date in the zone is `day`; DST-safe, as the spend
    limits count days (noon is inside the day everywhere, whatever the clocks do)."""
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=limits.zone(time_zone))
    return limits.day_period(noon, limits.zone(time_zone))[0]


def day_range(first_day: date | None, last_day: date | None, time_zone: str) -> DayRange:
    """The range of whole local days, or ValueError for days out of order or out of bounds."""
    for day in (first_day, last_day):
        if day is not None and not FIRST_DAY <= day <= LAST_DAY:
            raise ValueError(f"a day from {FIRST_DAY} to {LAST_DAY}")
    if first_day is not None and last_day is not None and first_day > last_day:
        raise ValueError("the first day is after the last")
    return DayRange(
        first_day=first_day, last_day=last_day, time_zone=time_zone,
        start=None if first_day is None else day_start(first_day, time_zone),
        end=None if last_day is None else day_start(last_day + timedelta(days=1), time_zone))


def local_day(at: datetime, time_zone: str) -> date:
    return at.astimezone(limits.zone(time_zone)).date()


@dataclass(frozen=True, kw_only=True)
class StatementTotals:
    """A statement's figures: closing = opening + total in − total out."""

    opening_credits: int
    in_credits: int
    out_credits: int  # credits that left the account, as a positive number
    movements: int

    @property
    def closing_credits(self) -> int:
        return self.opening_credits + self.in_credits - self.out_credits


class StatementTally:
    """The running totals of a statement, folded one movement at a time as they stream."""

    def __init__(self, opening_credits: int) -> None:
        self._opening = opening_credits
        self._in = self._out = self._count = 0

    def add(self, movement: TransactionView) -> None:
        if movement.amount_credits >= 0:
            self._in += movement.amount_credits
        else:
            self._out -= movement.amount_credits
        self._count += 1

    def totals(self) -> StatementTotals:
        return StatementTotals(opening_credits=self._opening, in_credits=self._in,
                               out_credits=self._out, movements=self._count)


async def _range_page(db: SqlDatabase, table: str, user_id: int, days: DayRange,
                      after_id: int, limit: int) -> list[dict[str, Any]]:
    condition, params = days.condition()
    return await db.fetchall(
        f"SELECT * FROM {table} WHERE user_id = ? AND id > ?{condition} ORDER BY id LIMIT ?",
        (user_id, after_id, *params, limit))


async def balance_before(db: SqlDatabase, user_id: int, start: datetime | None) -> int:
    """The balance after the last movement recorded before `start` (0 before any)."""
    if start is None:
        return 0
    row = await db.fetchone(
        "SELECT balance_after_credits AS b FROM transactions WHERE user_id = ? "
        "AND created_at < ? ORDER BY id DESC LIMIT 1", (user_id, _stamp(start)))
    return 0 if row is None else int(row["b"])


async def range_totals(db: SqlDatabase, user_id: int, days: DayRange, opening_credits: int
                       ) -> StatementTotals:
    """The range's totals in one aggregate, without reading its rows into Python."""
    condition, params = days.condition()
    row = await db.fetchone(
        "SELECT COUNT(*) AS n, "
        "COALESCE(SUM(CASE WHEN amount_credits > 0 THEN amount_credits ELSE 0 END), 0) AS i, "
        "COALESCE(SUM(CASE WHEN amount_credits < 0 THEN -amount_credits ELSE 0 END), 0) AS o "
        f"FROM transactions WHERE user_id = ?{condition}", (user_id, *params))
    assert row is not None
    return StatementTotals(opening_credits=opening_credits, in_credits=int(row["i"]),
                           out_credits=int(row["o"]), movements=int(row["n"]))


class History:
    """Range reads for one ledger: exports and statements. Each read is one user's."""

    def __init__(self, ledger: LedgerService) -> None:
        self._ledger = ledger

    def _db(self) -> SqlDatabase:
        return self._ledger.store.read_db()

    async def days(self, user_id: int, first_day: date | None, last_day: date | None
                   ) -> DayRange:
        """The range in the account's time zone (AccountNotFound for a stranger)."""
        profile = await self._ledger.profile(user_id)
        return day_range(first_day, last_day, profile.time_zone)

    async def today(self, user_id: int) -> date:
        profile = await self._ledger.profile(user_id)
        return local_day(self._ledger.store.clock(), profile.time_zone)

    async def opened_on(self, user_id: int) -> date:
        """The local day the account was opened: where an open-ended statement starts."""
        profile = await self._ledger.profile(user_id)
        return local_day(datetime.fromisoformat(profile.created_at), profile.time_zone)

    async def transaction_pages(self, user_id: int, days: DayRange,
                                page_size: int = TRANSACTION_PAGE
                                ) -> AsyncGenerator[list[TransactionView], None]:
        """Every transaction in the range, oldest first, one page at a time."""
        after = 0
        while True:
            rows = await _range_page(self._db(), "transactions", user_id, days, after,
                                     page_size)
            if rows:
                yield [queries.transaction_view(r) for r in rows]
            if len(rows) < page_size:
                return
            after = rows[-1]["id"]

    async def task_pages(self, user_id: int, days: DayRange, page_size: int = TASK_PAGE
                         ) -> AsyncGenerator[list[TaskView], None]:
        """Every task submitted in the range, oldest first, one page at a time."""
        after = 0
        while True:
            rows = await _range_page(self._db(), "tasks", user_id, days, after, page_size)
            if rows:
                yield [queries.task_view(r) for r in rows]
            if len(rows) < page_size:
                return
            after = rows[-1]["id"]

    async def opening_balance(self, user_id: int, days: DayRange) -> int:
        return await balance_before(self._db(), user_id, days.start)

    async def totals(self, user_id: int, days: DayRange) -> StatementTotals:
        """Opening balance and totals by aggregate: for a page that shows only some rows."""
        opening = await self.opening_balance(user_id, days)
        return await range_totals(self._db(), user_id, days, opening)

    async def movements(self, user_id: int, days: DayRange, tally: StatementTally,
                        page_size: int = TRANSACTION_PAGE
                        ) -> AsyncGenerator[list[TransactionView], None]:
        """The statement's movements, page by page, each counted in `tally` as it passes."""
        async for page in self.transaction_pages(user_id, days, page_size):
            for movement in page:
                tally.add(movement)
            yield page
