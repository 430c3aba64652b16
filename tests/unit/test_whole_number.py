"""Ids, amounts and page numbers typed into URLs and forms: ASCII digits, bounded length."""

from __future__ import annotations

import pytest

from web.bodies import whole_number


@pytest.mark.parametrize(("text", "number"), [("1", 1), ("007", 7), (" 42 ", 42),
                                              ("999999999", 999_999_999)])
def test_plain_digits_are_read(text: str, number: int) -> None:
    assert whole_number(text, 9) == number


@pytest.mark.parametrize("text", ["", " ", "²", "٣", "１", "-1", "+1", "1.0", "1e3", "0x10",
                                  "1_000", "9" * 10])
def test_anything_else_is_refused_without_raising(text: str) -> None:
    assert whole_number(text, 9) is None
