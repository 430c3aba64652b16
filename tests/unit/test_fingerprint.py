"""A request's fingerprint (what an idempotency key's retry must match) is the same text
whether it is written by the plain-numbers fast path or by json.dumps: a key used before the
fast path keeps matching its retries after it."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ml.service import _plain_numbers, _printable, fingerprint


def by_json(model_id: int, items: list[Any]) -> str:
    """fingerprint's formula before the fast path."""
    text = json.dumps([model_id, [_printable(item) for item in items]], default=repr,
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


NUMBERS = (st.floats() | st.integers() | st.integers(-2**64, 2**64) | st.booleans()
           | st.floats(min_value=-1e-6, max_value=1e-6) | st.floats(min_value=1e15))
ITEMS = st.lists(NUMBERS | st.none() | st.text(max_size=3)
                 | st.dictionaries(st.text(max_size=2), NUMBERS, max_size=2), max_size=8)


@settings(max_examples=2000, deadline=None)
@given(st.integers(1, 2**31), ITEMS)
def test_the_fast_path_writes_json_dumps_own_text(model_id: int, items: list[Any]) -> None:
    assert fingerprint(model_id, items) == by_json(model_id, items)


@settings(max_examples=500, deadline=None)
@given(st.integers(1, 2**31), st.lists(st.floats(allow_nan=False, allow_infinity=False)
                                       | st.integers(-2**62, 2**62), max_size=10))
def test_plain_numbers_take_the_fast_path(model_id: int, items: list[Any]) -> None:
    assert _plain_numbers(model_id, items) is not None
    assert fingerprint(model_id, items) == by_json(model_id, items)


def test_anything_else_takes_json() -> None:
    for odd in ([True], [math.nan], [math.inf], [None], ["1"], [2**70], [{"a": 1}]):
        assert _plain_numbers(1, odd) is None
