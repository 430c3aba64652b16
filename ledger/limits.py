"""Spend limits: calendar periods in the account's time zone and the pure decision.

Spending is counted in 15-minute UTC slots (every time zone in use today is offset from UTC
by a multiple of 15 minutes), so a local day or month is a range of whole slots, whatever
zone the account had when the credits were spent: a time-zone change mid-month needs no
recomputation. Credits on hold count as spent; released credits stop counting.
"""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

SLOT_S = 15 * 60
MAX_LIMIT_CREDITS = 10**12  # no limit above the largest possible balance
MAX_TIME_ZONE_LENGTH = 64
# The decision's clock and the append's clock are read microseconds apart in one
# transaction: within this much of a boundary both periods are checked, so a hold recorded
# just past midnight was still checked against the new day's limit.
BOUNDARY_GRACE = timedelta(seconds=5)


@functools.cache
def _known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) | {"UTC"}


def is_time_zone(name: object) -> bool:
    """An IANA name this machine knows ("Europe/Moscow", "UTC"); never a path."""
    return isinstance(name, str) and len(name) <= MAX_TIME_ZONE_LENGTH and name in _known_zones()


def zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def slot_of(at: datetime) -> int:
    """The 15-minute UTC slot an instant falls in."""
    return int(at.timestamp()) // SLOT_S


def _local_midnight(day: date, tz: zoneinfo.ZoneInfo) -> datetime:
    """The first instant whose local date is `day`. Where the clock jumps over midnight the
    day starts at the jump (fold 0); where midnight happens twice it starts at the second
    one, since the instants between them still read as the day before (fold 1)."""
    candidates = (datetime(day.year, day.month, day.day, tzinfo=tz, fold=fold)
                  for fold in (0, 1))
    return max(c.astimezone(UTC) for c in candidates)


def day_period(at: datetime, tz: zoneinfo.ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) in UTC of the local calendar day that `at` falls in."""
    local = at.astimezone(tz).date()
    return _local_midnight(local, tz), _local_midnight(local + timedelta(days=1), tz)


def month_period(at: datetime, tz: zoneinfo.ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) in UTC of the local calendar month that `at` falls in."""
    local = at.astimezone(tz).date()
    first = local.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return _local_midnight(first, tz), _local_midnight(following, tz)


def slots(period: tuple[datetime, datetime]) -> tuple[int, int]:
    """The period as a half-open range of slots [first, end)."""
    return slot_of(period[0]), slot_of(period[1])


@dataclass(frozen=True, kw_only=True)
class Limits:
    """The account's own limits; None is no limit."""

    daily_credits: int | None = None
    monthly_credits: int | None = None
    time_zone: str = "UTC"


@dataclass(frozen=True, kw_only=True)
class PeriodSpend:
    """One limit in its current period: what it allows, what is spent, when it resets."""

    limit: str  # "daily", "monthly" or "key_monthly"
    limit_credits: int | None
    spent_credits: int
    resets_at: datetime

    @property
    def left_credits(self) -> int | None:
        if self.limit_credits is None:
            return None
        return max(self.limit_credits - self.spent_credits, 0)

    def allows(self, cost_credits: int) -> bool:
        return self.limit_credits is None or self.spent_credits + cost_credits <= (
            self.limit_credits)


def refused_by(periods: Sequence[PeriodSpend], cost_credits: int) -> PeriodSpend | None:
    """The first limit that `cost_credits` more would take past it, or None: it may run.
    Exact at the edge: spending up to the limit itself is allowed."""
    assert cost_credits >= 0
    return next((p for p in periods if not p.allows(cost_credits)), None)


def check_limit(value: object) -> int | None:
    """A limit as sent: None, or a whole number of credits from 0 (nothing may be spent)."""
    if value is None:
        return None
    if type(value) is not int or not 0 <= value <= MAX_LIMIT_CREDITS:
        raise ValueError(f"a limit is null or a whole number of credits from 0 to "
                         f"{MAX_LIMIT_CREDITS:,}")
    return value
