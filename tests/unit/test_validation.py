"""Item-by-item validation: valid numbers go on to the model, each invalid one is reported."""

from __future__ import annotations

import json
import math

import pytest

from ml.validation import (
    A_LIST,
    AN_OBJECT,
    BEYOND_RANGE,
    BOOLEAN,
    NAN,
    NOT_A_NUMBER,
    NULL,
    SHOWN_CHARS,
    check_items,
    split_csv,
    split_text,
)

VALID_JSON_ITEMS = [
    (0, 0.0), (-5, -5.0), (1.5, 1.5), (10**20, 1e20), (-0.0, -0.0), (1e308, 1e308),
    (-1e308, -1e308), (10**308, 1e308), (5e-324, 5e-324),
]
INVALID_JSON_ITEMS = [
    (True, True, BOOLEAN),
    (False, False, BOOLEAN),
    (None, None, NULL),
    ("1", "1", NOT_A_NUMBER),
    ("nan", "nan", NOT_A_NUMBER),
    (math.nan, "NaN", NAN),
    (math.inf, "Infinity", BEYOND_RANGE),
    (-math.inf, "-Infinity", BEYOND_RANGE),
    (10**400, "an integer of 401 digits", BEYOND_RANGE),
    (-(10**309), "an integer of 310 digits", BEYOND_RANGE),
    ([1], "a list of 1 items", A_LIST),
    ({"a": 1}, "an object with 1 keys", AN_OBJECT),
    ("x" * 1000, "x" * SHOWN_CHARS + "…", NOT_A_NUMBER),
]


@pytest.mark.parametrize(("item", "number"), VALID_JSON_ITEMS)
def test_a_finite_json_number_is_valid(item: object, number: float) -> None:
    checked = check_items(["bad", item])
    assert checked.values == [number]
    assert math.copysign(1, checked.values[0]) == math.copysign(1, number)  # -0.0 stays -0.0
    assert checked.indexes == [1]
    assert [entry["index"] for entry in checked.invalid] == [0]


@pytest.mark.parametrize(("item", "shown", "reason"), INVALID_JSON_ITEMS)
def test_anything_else_is_reported_with_its_index_and_reason(
        item: object, shown: object, reason: str) -> None:
    checked = check_items([1, item, 2])
    assert checked.values == [1.0, 2.0]
    assert checked.indexes == [0, 2]
    [entry] = checked.invalid
    assert entry["index"] == 1
    assert entry["value"] == shown
    assert entry["error"] == reason
    json.dumps(checked.invalid, allow_nan=False)  # what is echoed back is valid JSON


def test_an_integer_too_long_to_print_is_still_reported_not_crashed_on() -> None:
    checked = check_items([10**5000, 3])
    assert checked.values == [3.0]
    [entry] = checked.invalid
    assert entry["index"] == 0
    assert "5,001 digits" in str(entry["value"])
    json.dumps(checked.invalid, allow_nan=False)


def test_every_item_is_accounted_for_exactly_once() -> None:
    items = [item for item, _, _ in INVALID_JSON_ITEMS] + [x for x, _ in VALID_JSON_ITEMS]
    checked = check_items(items)
    reported = checked.indexes + [int(str(entry["index"])) for entry in checked.invalid]
    assert sorted(reported) == list(range(len(items)))
    assert len(checked.values) == len(VALID_JSON_ITEMS)


@pytest.mark.parametrize(("text", "number"), [
    ("1.5", 1.5), (" 2 ", 2.0), ("-3e2", -300.0), ("+4", 4.0), (".5", 0.5), ("7.", 7.0),
    ("1E-3", 0.001), ("1e308", 1e308),
    ("1,5", 1.5), ("-0,25", -0.25), ("2,5e3", 2500.0),  # a value's one comma: a decimal mark
])
def test_decimal_text_is_valid(text: str, number: float) -> None:
    checked = check_items([text], as_text=True)
    assert (checked.values, checked.indexes, checked.invalid) == ([number], [0], [])


@pytest.mark.parametrize(("text", "reason"), [
    ("nan", NOT_A_NUMBER), ("NaN", NOT_A_NUMBER), ("inf", NOT_A_NUMBER),
    ("-Infinity", NOT_A_NUMBER), ("0x10", NOT_A_NUMBER), ("1_000", NOT_A_NUMBER),
    ("", NOT_A_NUMBER), ("1e", NOT_A_NUMBER), ("1,5,2", NOT_A_NUMBER), (",5", NOT_A_NUMBER),
    ("1.000,5", NOT_A_NUMBER), ("١٢", NOT_A_NUMBER),
    ("1e400", BEYOND_RANGE), ("-1e400", BEYOND_RANGE), ("1" * 400, BEYOND_RANGE),
])
def test_other_text_is_invalid(text: str, reason: str) -> None:
    checked = check_items(["1", text], as_text=True)
    assert checked.values == [1.0]
    [entry] = checked.invalid
    assert (entry["index"], entry["value"]) == (1, text[:SHOWN_CHARS] + "…" * (len(text) > 60))
    assert entry["error"] == reason
    json.dumps(checked.invalid, allow_nan=False)


@pytest.mark.parametrize(("json_item", "text"), [
    ("12x", "12x"), (10**400, "1" + "0" * 400), (math.inf, "1e400"), (-math.inf, "-1e999"),
])
def test_a_value_reads_the_same_reason_from_json_and_from_text(json_item: object,
                                                               text: str) -> None:
    [from_json] = check_items([json_item]).invalid
    [from_text] = check_items([text], as_text=True).invalid
    assert from_json["error"] == from_text["error"]


def test_split_text_accepts_commas_semicolons_spaces_and_new_lines() -> None:
    assert split_text(" 1, 2;3\n\n4\t5 ,, 6\r\n") == ["1", "2", "3", "4", "5", "6"]
    assert split_text("  \n ,") == []


def test_split_text_keeps_bad_tokens_so_they_can_be_reported() -> None:
    tokens = split_text("1 two 3")
    checked = check_items(tokens, as_text=True)
    assert checked.values == [1.0, 3.0]
    assert checked.invalid == [{"index": 1, "value": "two", "error": "not a number"}]


@pytest.mark.parametrize(("text", "cells"), [
    ("x,y\n1,2\n", ["1", "2"]),                   # a header is skipped
    ("value\n1\n2\n", ["1", "2"]),
    ("1, 2\nx,y\n", ["1", "2", "x", "y"]),         # only the first row can be a header
    ("x,1\n2,3\n", ["x", "1", "2", "3"]),          # a row with a number is data
    ("1,,2\n\n,3,\n", ["1", "2", "3"]),            # empty cells and rows are skipped
    (' 4 ,"5,6","7"\n', ["4", "5,6", "7"]),        # quoted cells keep their commas
    ("x,y\n", []),
    ("", []),
])
def test_split_csv(text: str, cells: list[str]) -> None:
    assert split_csv(text) == cells
