"""A prediction's fingerprint is stored with its idempotency key and compared on every retry:
the quick text for plain numbers must be json.dumps's text byte for byte, or a retry across
an upgrade would be refused as a different request."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ml.service import _numbers_text, _printable, fingerprint


def before(model_id: int, items: list[Any]) -> str:
    """The fingerprint as every stored operation row has it."""
    text = json.dumps([model_id, [_printable(item) for item in items]], default=repr,
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


NUMBERS = st.floats() | st.integers() | st.integers(min_value=2**63 - 2, max_value=2**63 + 2) \
    | st.booleans() | st.none() | st.text(max_size=3)


@settings(max_examples=2000, deadline=None)
@given(st.integers(min_value=-5, max_value=10**6), st.lists(NUMBERS, max_size=12))
def test_the_fingerprint_of_any_list_is_as_before(model_id: int, items: list[Any]) -> None:
    assert fingerprint(model_id, items) == before(model_id, items)


def test_odd_numbers_and_rows_keep_their_fingerprint() -> None:
    for items in ([math.nan, 1.0], [math.inf], [-0.0, 1e-7, 5e-324, 1e22], [True, 1],
                  [2**63, -2**63], [[1.0, 2.0], {"b": 1, "a": 2}], [], [10**5000]):
        assert fingerprint(3, items) == before(3, items)


@settings(max_examples=500, deadline=None)
@given(st.integers(1, 2**31), st.lists(st.floats(allow_nan=False, allow_infinity=False)
                                       | st.integers(-2**62, 2**62), max_size=10))
def test_plain_numbers_take_the_fast_path(model_id: int, items: list[Any]) -> None:
    assert _numbers_text(model_id, items) is not None
    assert fingerprint(model_id, items) == before(model_id, items)


def test_anything_else_takes_json() -> None:
    for odd in ([True], [math.nan], [math.inf], [None], ["1"], [2**70], [{"a": 1}]):
        assert _numbers_text(1, odd) is None
