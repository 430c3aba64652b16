"""Row validation for tabular models: a table per failure kind, and the same reason whichever way
the row arrived (JSON object, JSON array, pasted text, CSV file)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from ml import BadCsv, BadCsvHeader, Feature, InputSchema, TooManyItems, check_rows, parse_csv
from ml.rows import MISSING, NOT_WHOLE, ROW, UNKNOWN, CheckedRows
from ml.validation import (
    A_LIST,
    AN_OBJECT,
    BEYOND_RANGE,
    BOOLEAN,
    NAN,
    NOT_A_NUMBER,
    NULL,
    SHOWN_CHARS,
)

SCHEMA = InputSchema(features=(
    Feature(name="a", minimum=0, maximum=10),
    Feature(name="n", type="integer", categories=(1, 2)),
    Feature(name="free"),
    Feature(name="opt", required=False, default=5.0),
), kind="regression")
GOOD_JSON = {"a": 1.5, "n": 2, "free": -3e5, "opt": 7}
GOOD_TEXT = {"a": "1.5", "n": "2", "free": "-3e5", "opt": "7"}


def four_ways(feature: str, json_value: object, text_value: str) -> list[CheckedRows]:
    """One row with `feature` set, as a JSON object, a JSON array, pasted text and a CSV file."""
    as_object = {**GOOD_JSON, feature: json_value}
    as_text = {**GOOD_TEXT, feature: text_value}
    csv_text = "opt,free,n,a\n" + ",".join(as_text[k] for k in ("opt", "free", "n", "a")) + "\n"
    parsed = parse_csv(SCHEMA, csv_text, max_items=10)
    return [check_rows(SCHEMA, [as_object], source="json"),
            check_rows(SCHEMA, [list(as_object.values())], source="json"),
            check_rows(SCHEMA, [as_text], source="text"),
            check_rows(SCHEMA, parsed.rows, source="csv", lines=parsed.lines)]


SAME_REASON_EVERY_WAY = [  # feature, as JSON, as text, the one reason
    ("a", "abc", "abc", NOT_A_NUMBER),
    ("a", "1", "1x", NOT_A_NUMBER),  # a JSON string is not a number even when it spells one
    ("free", 10**400, "1" + "0" * 400, BEYOND_RANGE),
    ("free", math.inf, "1e999", BEYOND_RANGE),
    ("free", -math.inf, "-1e999", BEYOND_RANGE),
    ("free", 1e39, "1e39", BEYOND_RANGE),  # finite, but past float32: the model would see inf
    ("a", 10.5, "10.5", "the number is above the maximum of 10"),
    ("a", -0.1, "-0.1", "the number is below the minimum of 0"),
    ("n", 1.5, "1.5", NOT_WHOLE),
    ("n", 3, "3", "the number is not one of 1, 2"),
    ("n", 0, "0.0", "the number is not one of 1, 2"),
]


@pytest.mark.parametrize(("feature", "json_value", "text_value", "reason"),
                         SAME_REASON_EVERY_WAY)
def test_a_bad_value_reads_the_same_however_it_arrived(
        feature: str, json_value: object, text_value: str, reason: str) -> None:
    for checked in four_ways(feature, json_value, text_value):
        assert (checked.rows, checked.indexes) == ([], [])
        [entry] = checked.invalid
        assert entry["index"] == 0
        assert entry["errors"] == {feature: [reason]}
        assert entry["error"] == f"{feature}: {reason}."
        json.dumps(entry, allow_nan=False)


@pytest.mark.parametrize(("value", "reason"), [
    (True, BOOLEAN), (False, BOOLEAN), (None, NULL), ([1], A_LIST), ({"x": 1}, AN_OBJECT),
    (math.nan, NAN), ("", NOT_A_NUMBER),
])
def test_a_json_value_of_the_wrong_type_is_named(value: object, reason: str) -> None:
    for row in ({**GOOD_JSON, "a": value}, [value, 2, 0, 5]):
        [entry] = check_rows(SCHEMA, [row], source="json").invalid
        assert entry["errors"] == {"a": [reason]}


def test_a_missing_required_value_reads_the_same_left_out_or_empty() -> None:
    left_out = {k: v for k, v in GOOD_JSON.items() if k != "n"}
    empty_cell = parse_csv(SCHEMA, "a,n,free\n1, ,3\n", max_items=10)
    for checked in (check_rows(SCHEMA, [left_out], source="json"),
                    check_rows(SCHEMA, [{**GOOD_TEXT, "n": ""}], source="text"),
                    check_rows(SCHEMA, empty_cell.rows, source="csv", lines=empty_cell.lines)):
        [entry] = checked.invalid
        assert entry["errors"] == {"n": [MISSING]}


def test_an_optional_value_left_out_takes_its_default() -> None:
    checked = check_rows(SCHEMA, [{"a": 1, "n": 1, "free": 0}, [2, 2, 0, 9]], source="json")
    assert checked.rows == [[1.0, 1.0, 0.0, 5.0], [2.0, 2.0, 0.0, 9.0]]
    assert checked.invalid == []


def test_every_problem_of_a_row_is_listed_under_its_feature() -> None:
    [entry] = check_rows(SCHEMA, [{"a": "x", "n": 7, "zz": 1}], source="json").invalid
    assert entry["errors"] == {"a": [NOT_A_NUMBER], "n": ["the number is not one of 1, 2"],
                               "free": [MISSING], "zz": [UNKNOWN]}
    assert entry["error"] == ("a: not a number; n: the number is not one of 1, 2; "
                              "free: the value is missing; zz: the model has no such feature.")


@pytest.mark.parametrize(("row", "reason"), [
    ([1, 2, 3], "the row has 3 values; the model takes 4 (a, n, free, opt)"),
    ([1, 2, 3, 4, 5], "the row has 5 values; the model takes 4 (a, n, free, opt)"),
    ([], "the row has 0 values; the model takes 4 (a, n, free, opt)"),
    (5, "a number is not a row; send an object keyed by feature name or an array of values "
        "in feature order"),
    ("1,2,0,5", "a string is not a row; send an object keyed by feature name or an array of "
                "values in feature order"),
    (None, "null is not a row; send an object keyed by feature name or an array of values in "
           "feature order"),
])
def test_a_row_of_the_wrong_shape_is_invalid_as_a_whole(row: object, reason: str) -> None:
    [entry] = check_rows(SCHEMA, [GOOD_JSON, row], source="json").invalid
    assert (entry["index"], entry["errors"]) == (1, {ROW: [reason]})
    assert entry["error"] == f"the row: {reason}."


def test_valid_rows_come_out_in_feature_order_with_their_indexes() -> None:
    rows = [{"opt": 0, "free": 3, "n": 1, "a": 2}, "bad", [4, 2, 6, 8], {"a": -1}]
    checked = check_rows(SCHEMA, rows, source="json")
    assert checked.rows == [[2.0, 1.0, 3.0, 0.0], [4.0, 2.0, 6.0, 8.0]]
    assert checked.indexes == [0, 2]
    assert [entry["index"] for entry in checked.invalid] == [1, 3]
    matrix = checked.matrix(4)
    assert matrix.dtype == np.float32 and matrix.shape == (2, 4)
    assert check_rows(SCHEMA, [], source="json").matrix(4).shape == (0, 4)


def test_an_invalid_row_is_echoed_short_and_json_safe() -> None:
    hostile = {"a": "x" * 5000, "k" * 5000: 1, **{f"u{i}": math.nan for i in range(100)}}
    [entry] = check_rows(SCHEMA, [hostile], source="json").invalid
    value = entry["value"]
    assert isinstance(value, dict) and len(value) <= 4 + 20
    assert all(len(str(k)) <= SHOWN_CHARS + 1 and len(str(v)) <= SHOWN_CHARS + 1
               for k, v in value.items())
    assert len(entry["errors"]) <= 4 + 20  # unknown keys are reported up to a bound
    json.dumps(entry, allow_nan=False)


def test_a_scalar_schema_keeps_the_seed_behaviour() -> None:
    from ml import SCALAR
    checked = check_rows(SCALAR, [1, "2", True], source="json")
    assert (checked.rows, checked.indexes) == ([[1.0]], [0])
    assert [(e["index"], e["error"]) for e in checked.invalid] == [(1, NOT_A_NUMBER),
                                                                     (2, BOOLEAN)]
    from_text = check_rows(SCALAR, ["1", "x"], source="text", lines=[3, 4])
    assert from_text.invalid == [{"index": 1, "value": "x", "error": NOT_A_NUMBER, "line": 4}]


# ---- CSV files -----------------------------------------------------------------------------

def test_csv_with_a_bom_crlf_quotes_and_semicolons_gives_rows_with_their_lines() -> None:
    text = '\ufeff"n";free;a\r\n1;"2";3\r\n\r\n2;0;"x"\r\n;;\r\n1;1;1\r\n'
    parsed = parse_csv(SCHEMA, text, max_items=10)
    assert parsed.rows == [{"n": "1", "free": "2", "a": "3"}, {"n": "2", "free": "0", "a": "x"},
                           {"n": "1", "free": "1", "a": "1"}]
    assert parsed.lines == [2, 4, 6]
    checked = check_rows(SCHEMA, parsed.rows, source="csv", lines=parsed.lines)
    assert checked.rows == [[3.0, 1.0, 2.0, 5.0], [1.0, 1.0, 1.0, 5.0]]
    assert [(e["line"], e["errors"]) for e in checked.invalid] == [(4, {"a": [NOT_A_NUMBER]})]


def test_a_quoted_cell_keeps_its_separator_and_a_multi_line_cell_its_first_line() -> None:
    parsed = parse_csv(SCHEMA, 'a,n,free\n"1,5",1,2\n"two\nlines",1,2\n3,1,2\n', max_items=10)
    assert [row["a"] for row in parsed.rows] == ["1,5", "two\nlines", "3"]
    assert parsed.lines == [2, 3, 5]


def test_a_cell_past_the_header_is_an_unknown_feature_but_a_trailing_comma_is_not() -> None:
    parsed = parse_csv(SCHEMA, "a,n,free\n1,1,1,\n1,1,1,9\n1,1\n", max_items=10)
    checked = check_rows(SCHEMA, parsed.rows, source="csv", lines=parsed.lines)
    assert checked.indexes == [0]
    assert [(e["line"], e["errors"]) for e in checked.invalid] == [
        (3, {"column 4": [UNKNOWN]}), (4, {"free": [MISSING]})]


@pytest.mark.parametrize(("header", "message"), [
    ("a,n,free,colour", "the header row names columns the model does not have: colour; "
                        "the model takes: a, n, free, opt"),
    ("a,n", "the header row lacks required columns: free; the model takes: a, n, free, opt"),
    ("a,n,free,a", "the header row names a more than once"),
    ("a,,n,free", "the header row has an empty column name"),
    ("1,2,3", "the header row names columns the model does not have: 1, 2, 3"),
])
def test_a_header_that_does_not_name_the_features_refuses_the_whole_file(
        header: str, message: str) -> None:
    with pytest.raises(BadCsvHeader, match="^" + message):
        parse_csv(SCHEMA, header + "\n1,1,1,1\n", max_items=10)


def test_csv_rows_are_bounded_one_past_the_limit() -> None:
    assert len(parse_csv(SCHEMA, "a,n,free\n" + "1,1,1\n" * 3, max_items=3).rows) == 3
    with pytest.raises(TooManyItems, match="more than the 3 items"):
        parse_csv(SCHEMA, "a,n,free\n" + "1,1,1\n" * 10_000, max_items=3)


def test_a_cell_too_large_for_csv_is_a_clear_error_and_an_empty_file_no_rows() -> None:
    with pytest.raises(BadCsv, match="not readable as CSV"):
        parse_csv(SCHEMA, 'a,n,free\n"' + "1" * 200_000 + '",1,1\n', max_items=10)
    assert parse_csv(SCHEMA, "", max_items=10).rows == []
    assert parse_csv(SCHEMA, "\ufeff\r\n\n", max_items=10).rows == []
    assert parse_csv(SCHEMA, "a,n,free\n", max_items=10).rows == []


def test_pasted_rows_are_lines_of_values_in_feature_order() -> None:
    from ml import split_text_rows
    rows = split_text_rows("1.5, 2, 0, 5\r\n\n  3;1;x;4 \n7\t1 2 3\n1 2")
    assert rows == [["1.5", "2", "0", "5"], ["3", "1", "x", "4"], ["7", "1", "2", "3"],
                    ["1", "2"]]
    checked = check_rows(SCHEMA, rows, source="text")
    assert checked.indexes == [0, 2]
    assert [e["errors"] for e in checked.invalid] == [
        {"free": [NOT_A_NUMBER]},
        {ROW: ["the row has 2 values; the model takes 4 (a, n, free, opt)"]}]
