"""Spend limits' pure part: calendar periods in the account's time zone, and the decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import limits
from ledger.limits import PeriodSpend, day_period, month_period, refused_by

ZONES = ["UTC", "Europe/Moscow", "America/New_York", "Asia/Kathmandu", "Australia/Lord_Howe",
         "America/Santiago", "Pacific/Chatham", "Asia/Kolkata", "Europe/London"]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_a_moscow_day_starts_at_21_utc_the_day_before() -> None:
    assert day_period(utc(2026, 12, 1, 20, 59), ZoneInfo("Europe/Moscow")) == (
        utc(2026, 11, 30, 21), utc(2026, 12, 1, 21))
    assert day_period(utc(2026, 12, 1, 21, 0), ZoneInfo("Europe/Moscow")) == (
        utc(2026, 12, 1, 21), utc(2026, 12, 2, 21))


def test_a_new_york_day_across_the_spring_change_is_23_hours_long() -> None:
    start, end = day_period(utc(2026, 3, 8, 12), ZoneInfo("America/New_York"))
    assert (start, end) == (utc(2026, 3, 8, 5), utc(2026, 3, 9, 4))
    assert end - start == timedelta(hours=23)


def test_a_london_day_across_the_autumn_change_is_25_hours_long() -> None:
    start, end = day_period(utc(2026, 10, 25, 12), ZoneInfo("Europe/London"))
    assert end - start == timedelta(hours=25)


def test_where_midnight_is_skipped_the_day_starts_at_the_jump() -> None:
    # Santiago sets its clocks from 00:00 to 01:00 on 6 September 2026: no local midnight.
    start, _ = day_period(utc(2026, 9, 6, 12), ZoneInfo("America/Santiago"))
    assert start == utc(2026, 9, 6, 4)
    assert start.astimezone(ZoneInfo("America/Santiago")).hour == 1


def test_where_midnight_happens_twice_the_day_starts_at_the_second() -> None:
    # Santiago goes back from 00:00 to 23:00 on 5 April 2026: midnight comes twice.
    tz = ZoneInfo("America/Santiago")
    start, _ = day_period(utc(2026, 4, 5, 12), tz)
    assert start == utc(2026, 4, 5, 4)
    assert (start - timedelta(microseconds=1)).astimezone(tz).day == 4


def test_a_month_in_kathmandu_is_offset_by_5_45() -> None:
    assert month_period(utc(2026, 2, 10), ZoneInfo("Asia/Kathmandu")) == (
        utc(2026, 1, 31, 18, 15), utc(2026, 2, 28, 18, 15))


def test_december_rolls_over_to_january() -> None:
    assert month_period(utc(2026, 12, 31, 23), ZoneInfo("UTC")) == (
        utc(2026, 12, 1), utc(2027, 1, 1))


@given(at=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2037, 12, 31),
                       timezones=st.just(UTC)),
       name=st.sampled_from(ZONES))
def test_every_instant_lies_in_its_local_day_and_month_and_their_edges_are_exact(
        at: datetime, name: str) -> None:
    tz = ZoneInfo(name)
    for period, same in ((day_period(at, tz), lambda d: d.date()),
                         (month_period(at, tz), lambda d: (d.year, d.month))):
        start, end = period
        assert start <= at < end
        local = at.astimezone(tz)
        assert same(start.astimezone(tz)) == same(local)
        assert same((start - timedelta(microseconds=1)).astimezone(tz)) != same(local)
        assert same((end - timedelta(microseconds=1)).astimezone(tz)) == same(local)
        assert same(end.astimezone(tz)) != same(local)
        # Each boundary falls on a 15-minute slot: a period is a range of whole slots.
        assert start.timestamp() % limits.SLOT_S == 0 and end.timestamp() % limits.SLOT_S == 0


def period(limit_credits: int | None, spent_credits: int, name: str = "daily") -> PeriodSpend:
    return PeriodSpend(limit=name, limit_credits=limit_credits, spent_credits=spent_credits,
                       resets_at=utc(2026, 12, 2))


def test_spending_up_to_the_limit_itself_is_allowed_and_one_credit_more_is_not() -> None:
    assert refused_by([period(10, 7)], 3) is None
    assert refused_by([period(10, 7)], 4) == period(10, 7)
    assert period(10, 7).left_credits == 3


def test_no_limit_allows_anything_and_a_zero_limit_nothing_but_free_tasks() -> None:
    assert refused_by([period(None, 10**9)], 10**6) is None
    assert refused_by([period(0, 0)], 1) == period(0, 0)
    assert refused_by([period(0, 0)], 0) is None


def test_the_first_limit_passed_is_named() -> None:
    found = refused_by([period(100, 0), period(50, 45, "monthly"),
                        period(5, 5, "key_monthly")], 6)
    assert found is not None and found.limit == "monthly"


def test_a_limit_lowered_below_what_is_spent_leaves_nothing_not_less() -> None:
    assert period(10, 12).left_credits == 0


@pytest.mark.parametrize("value", [True, 1.0, "5", -1, 10**12 + 1, float("nan")])
def test_a_limit_is_null_or_a_whole_number_of_credits(value: object) -> None:
    with pytest.raises(ValueError, match="whole number"):
        limits.check_limit(value)


@pytest.mark.parametrize("name", ["Europe/Moscow", "UTC", "America/Argentina/Buenos_Aires"])
def test_iana_names_are_time_zones(name: str) -> None:
    assert limits.is_time_zone(name)


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "../../etc/passwd", "/etc/localtime",
                                  "europe/moscow", "Europe/Moscow\x00", 3, None, "A" * 65])
def test_anything_else_is_not(name: object) -> None:
    assert not limits.is_time_zone(name)
