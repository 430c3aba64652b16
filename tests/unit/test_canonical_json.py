"""canonical_json writes by orjson only where that is json.dumps's text byte for byte: the
hash chain covers these texts, so a log written before must hash the same (the v1 log's
audit: tests/e2e/test_old_database.py)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.codec import canonical_bytes, canonical_json
from events.hashing import chain_hash
from ledger.events import ALL_EVENTS, ledger_codec


def slow(value: Any) -> str:
    """canonical_json as it was before orjson: the text every stored hash covers."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


ANY_TEXT = st.text(st.characters(codec=None, categories=None), max_size=12)  # surrogates too
LEAVES = (st.none() | st.booleans() | st.integers() | st.integers(min_value=2**63 - 4)
          | st.floats() | st.floats(min_value=-1e-3, max_value=1e-3)
          | st.floats(min_value=1e14, max_value=1e18) | st.text() | ANY_TEXT)
PAYLOADS = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
    | st.dictionaries(st.text() | ANY_TEXT, inner, max_size=4)
    | st.dictionaries(st.integers(), inner, max_size=2),
    max_leaves=16)


def same_outcome(value: Any) -> None:
    try:
        expected = slow(value)
    except (ValueError, TypeError) as exc:  # NaN, mixed keys: refused as before
        with pytest.raises(type(exc)):
            canonical_json(value)
        return
    assert canonical_json(value) == expected
    try:
        expected_bytes = expected.encode()
    except UnicodeEncodeError:  # a lone surrogate: hashing it fails, as it did
        with pytest.raises(UnicodeEncodeError):
            canonical_bytes(value)
        return
    assert canonical_bytes(value) == expected_bytes


@settings(max_examples=1500, deadline=None)
@given(PAYLOADS)
def test_any_payload_is_written_as_json_dumps_writes_it(value: Any) -> None:
    same_outcome(value)
    same_outcome({"data": value, "user_id": 1})


@settings(max_examples=3000, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_finite_float_is_written_as_python_writes_it(number: float) -> None:
    assert canonical_json([number, {"x": number}]) == slow([number, {"x": number}])


@pytest.mark.parametrize("odd", [math.nan, math.inf, -math.inf, 2**64, 10**400, "\ud800",
                                 {1: "a"}, {True: 1}, 1e-5, 1e-7, 1e16, 1e22, -0.0, 5e-324])
def test_what_orjson_refuses_or_writes_otherwise_goes_to_json(odd: Any) -> None:
    same_outcome([odd, {"k": odd}])


def test_values_json_writes_its_own_way_or_refuses_go_to_json() -> None:
    class Text(str):
        pass

    @dataclasses.dataclass
    class Nested:
        b: int = 2
        a: int = 1

    same_outcome([Text("x"), {"k": Text("y")}])
    with pytest.raises(TypeError):  # the codec then falls back to asdict(), as before
        canonical_json({"nested": Nested()})


def _field(annotation: object) -> st.SearchStrategy[Any]:
    text = str(annotation)
    simple: dict[str, st.SearchStrategy[Any]] = {
        "int": st.integers(), "str": st.text() | ANY_TEXT, "bool": st.booleans(),
        "int | None": st.none() | st.integers(), "str | None": st.none() | st.text()}
    return simple.get(text, PAYLOADS)  # lists and JSON values: any payload


def _event(cls: type) -> st.SearchStrategy[Any]:
    return st.builds(cls, **{f.name: _field(f.type) for f in dataclasses.fields(cls)})


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(ALL_EVENTS).flatmap(_event))
def test_every_event_type_encodes_and_hashes_as_before(event: Any) -> None:
    codec = ledger_codec()
    data = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
    try:
        expected = slow(data)
    except (ValueError, TypeError):
        return  # hypothesis built a value no event could hold (NaN, a nested object)
    _, _, text = codec.encode(event)
    assert text == expected
    fields = ["0" * 64, 5, "account-1", 2, event.type_name, event.schema_version, text,
              '{"actor":"user:1"}', "2026-12-01T21:28:50.079137+00:00"]
    try:
        before = hashlib.sha256(slow(fields).encode()).hexdigest()
    except UnicodeEncodeError:
        return
    assert chain_hash("0" * 64, position=5, stream_id="account-1", version=2,
                      type_name=event.type_name, schema_version=event.schema_version,
                      data_json=text, metadata_json='{"actor":"user:1"}',
                      recorded_at="2026-12-01T21:28:50.079137+00:00") == before
