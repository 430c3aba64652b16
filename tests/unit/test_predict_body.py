"""The predict body's fast check and marshmallow's PredictRequest agree: whatever the fast
check accepts the schema accepts with the same values, and on everything else the reply
(values or the 422's code, detail and errors) is the schema's own."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from web import schemas
from web.bodies import load
from web.predict_body import MAX_MODEL_ID, predict_body, usual
from web.problems import Problem

SCHEMA = schemas.PredictRequest()
LEAVES = (st.none() | st.booleans() | st.integers() | st.integers(0, 2**31 + 2)
          | st.floats() | st.text(max_size=6))
JSON = st.recursive(LEAVES, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=12)
MODEL_IDS = (st.integers(-3, 5) | st.integers(MAX_MODEL_ID - 2, MAX_MODEL_ID + 2)
             | st.booleans() | st.floats() | st.text(max_size=3) | st.none() | JSON)
DATA = st.lists(JSON, max_size=6) | JSON
KEYS = st.sampled_from(["model_id", "data", "Model_id", "extra", ""])
BODIES = (st.fixed_dictionaries({"model_id": MODEL_IDS, "data": DATA})
          | st.fixed_dictionaries({"model_id": MODEL_IDS, "data": DATA},
                                  optional={"extra": JSON, "Data": JSON})
          | st.dictionaries(KEYS, JSON, max_size=4))


def by_schema(body: dict[str, Any]) -> tuple[str, Any]:
    try:
        return "ok", load(SCHEMA, body)
    except Problem as problem:
        return "problem", problem.body()


def by_fast_path(body: dict[str, Any]) -> tuple[str, Any]:
    try:
        return "ok", predict_body(body)
    except Problem as problem:
        return "problem", problem.body()


@settings(max_examples=1500, deadline=None)
@given(BODIES)
def test_the_fast_check_and_the_schema_give_the_same_reply(body: dict[str, Any]) -> None:
    expected = by_schema(body)
    if usual(body) is not None:  # what the fast check takes, the schema takes alike
        assert expected == ("ok", usual(body))
    assert by_fast_path(body) == expected


@pytest.mark.parametrize("body", [
    {"model_id": 1, "data": [1.5, 2, None, "x", {"a": 1}]},
    {"model_id": MAX_MODEL_ID, "data": []},
])
def test_the_usual_shape_takes_the_fast_path(body: dict[str, Any]) -> None:
    assert usual(body) == load(SCHEMA, body)


@pytest.mark.parametrize("body", [
    {"model_id": True, "data": [1]},            # a bool is not a model id
    {"model_id": 1.0, "data": [1]},             # nor is a float
    {"model_id": 0, "data": [1]},
    {"model_id": MAX_MODEL_ID + 1, "data": [1]},
    {"model_id": 1, "data": "1, 2"},            # text is the form's, not the JSON API's
    {"model_id": 1},
    {"model_id": 1, "data": [1], "extra": 2},   # unknown fields are refused
])
def test_anything_unusual_is_the_schemas_to_answer(body: dict[str, Any]) -> None:
    assert usual(body) is None
    with pytest.raises(Problem) as caught:
        predict_body(body)
    assert caught.value.code == "validation_error"
