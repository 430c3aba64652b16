"""The account's calendar days as UTC bounds, and the statement's tally (pure code)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.history import StatementTally, day_range
from ledger.views import TransactionView


def test_out_of_order_and_out_of_bounds_days_are_refused() -> None:
    with pytest.raises(ValueError, match="after"):
        day_range(date(2026, 12, 2), date(2026, 12, 1), "UTC")
    for day in (date(1969, 12, 31), date(9999, 12, 31)):
        with pytest.raises(ValueError, match="a day from"):
            day_range(day, None, "Pacific/Kiritimati")


def test_the_edges_of_the_calendar_convert_in_the_furthest_zones() -> None:
    east = day_range(date(1970, 1, 1), date(9998, 12, 31), "Pacific/Kiritimati")
    assert east.start == datetime(1970, 1, 1, 10, 40, tzinfo=UTC)  # the island was UTC-10:40
    assert east.end == datetime(9998, 12, 31, 10, tzinfo=UTC)  # UTC+14 now
    west = day_range(date(2026, 12, 1), date(2026, 12, 1), "Pacific/Pago_Pago")  # UTC-11
    assert (west.start, west.end) == (datetime(2026, 12, 1, 11, tzinfo=UTC),
                                      datetime(2026, 12, 2, 11, tzinfo=UTC))
    assert day_range(None, None, "UTC").condition() == ("", ())


def movement(amount: int) -> TransactionView:
    return TransactionView(id=1, kind="top_up" if amount > 0 else "charge",
                           amount_credits=amount, balance_after_credits=0, description="",
                           task_id=None, created_at="")


@given(st.integers(0, 10**12), st.lists(st.integers(-10**9, 10**9)))
def test_closing_is_opening_plus_the_movements(opening: int, amounts: list[int]) -> None:
    tally = StatementTally(opening)
    for amount in amounts:
        tally.add(movement(amount))
    totals = tally.totals()
    assert totals.closing_credits == opening + sum(amounts)
    assert totals.in_credits == sum(a for a in amounts if a > 0)
    assert totals.out_credits == -sum(a for a in amounts if a < 0) >= 0
    assert totals.movements == len(amounts)
