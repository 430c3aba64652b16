"""Row validation for tabular models: every row is checked feature by feature; valid rows come
out as float vectors in feature order, each invalid one is reported with all its problems.

A row is an object keyed by feature name or an array of values in feature order. From JSON the
values must be JSON numbers; from pasted text or CSV they are ASCII decimal text (a decimal
comma where ml.decimal_comma allows one), and an empty cell is a missing value. The reasons
are the scalar path's (ml.validation), word for word.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # numpy is imported with the first tabular prediction, not at start-up
    import numpy as np
    import numpy.typing as npt

from ml.decimal_comma import has_decimal_comma, rows_of
from ml.schema import Feature, InputSchema
from ml.validation import NotANumber, check_items, read_number, shown

Source = Literal["json", "text", "csv"]
ROW = "_row"  # the key in `errors` for a problem of the whole row, not of one feature
MISSING = "the value is missing"
UNKNOWN = "the model has no such feature"
NOT_WHOLE = "the number is not a whole number"
# float(np.finfo(np.float32).max), written out (tests/unit check it): models take float32,
# a larger number is inf.
FLOAT32_MAX = 3.4028234663852886e38
SHOWN_KEYS = 20  # at most this many unknown keys are reported (and echoed) per row


@dataclass(frozen=True, kw_only=True)
class CheckedRows:
    """The valid rows in feature order with their indexes; the invalid ones with reasons."""

    rows: list[list[float]]
    indexes: list[int]
    invalid: list[dict[str, object]]
    lines: list[int] | None = None  # the CSV line of each valid row, when read from a file

    def matrix(self, width: int) -> npt.NDArray[np.float32]:
        """The valid rows as one float32 array [n, width], ready for a vectorised call."""
        import numpy as np

        return np.array(self.rows, dtype=np.float32).reshape(len(self.rows), width)


def check_rows(schema: InputSchema, items: Sequence[object], *, source: Source,
               lines: Sequence[int] | None = None) -> CheckedRows:
    """Split items into valid rows and invalid ones; `lines` (from parse_csv) are echoed."""
    assert lines is None or len(lines) == len(items), "one line number per row"
    if schema.scalar:
        checked = check_items(items, as_text=source != "json")
        return _with_lines(CheckedRows(rows=[[v] for v in checked.values],
                                       indexes=checked.indexes, invalid=checked.invalid), lines)
    rows: list[list[float]] = []
    indexes: list[int] = []
    invalid: list[dict[str, object]] = []
    for index, item in enumerate(items):
        row, errors = _check_row(schema, item, as_text=source != "json")
        if errors:
            invalid.append({"index": index, "value": _shown_row(item, len(schema.features)),
                            "error": sentence(errors), "errors": errors})
        else:
            rows.append(row)
            indexes.append(index)
    return _with_lines(CheckedRows(rows=rows, indexes=indexes, invalid=invalid), lines)


def split_text_rows(text: str) -> list[list[str]]:
    """Rows pasted into a form: one row per line, values in feature order separated by commas,
    semicolons, tabs or spaces (with a comma between digits, by `;` or tabs only: see
    ml.decimal_comma). Blank lines are skipped; a bad token stays to be reported."""
    if has_decimal_comma(text):
        return rows_of(text)
    return [[token for token in re.split(r"[\s,;]+", line) if token]
            for line in text.splitlines() if line.strip()]


def sentence(errors: Mapping[str, list[str]]) -> str:
    """All of a row's problems in one sentence: 'bmi: not a number; s1: the value is missing.'"""
    parts = [f"{'the row' if name == ROW else name}: {', '.join(problems)}"
             for name, problems in errors.items()]
    return "; ".join(parts) + "."


def _check_row(schema: InputSchema, item: object, *,
               as_text: bool) -> tuple[list[float], dict[str, list[str]]]:
    features = schema.features
    if isinstance(item, Mapping):
        given = {f.name: item[f.name] for f in features if f.name in item}
        unknown = [str(key) for key in item if key not in given]
    elif isinstance(item, list | tuple):
        if len(item) != len(features):
            return [], {ROW: [f"the row has {len(item)} values; the model takes "
                              f"{len(features)} ({', '.join(schema.names)})"]}
        given, unknown = dict(zip(schema.names, item, strict=True)), []
    else:
        return [], {ROW: [f"{_what(item)} is not a row; send an object keyed by feature name "
                          "or an array of values in feature order"]}
    errors: dict[str, list[str]] = {}
    row: list[float] = []
    for feature in features:
        value, problem = _check_value(feature, given.get(feature.name), feature.name in given,
                                      as_text=as_text)
        row.append(value)
        if problem:
            errors[feature.name] = [problem]
    for key in unknown[:SHOWN_KEYS]:
        errors[str(shown(key))] = [UNKNOWN]
    return row, errors


def _check_value(feature: Feature, value: object, present: bool, *,
                 as_text: bool) -> tuple[float, str | None]:
    if as_text and isinstance(value, str) and not value.strip():
        present = False  # an empty cell is a value left out
    if not present:
        return (feature.default, None) if feature.default is not None else (math.nan, MISSING)
    try:
        number = read_number(value, as_text=as_text)
    except NotANumber as error:
        return math.nan, str(error)
    return number, _out_of_bounds(feature, number)


def _out_of_bounds(feature: Feature, number: float) -> str | None:
    if abs(number) > FLOAT32_MAX:
        return "the number is infinite or beyond the float range"
    if feature.type == "integer" and not number.is_integer():
        return NOT_WHOLE
    if feature.minimum is not None and number < feature.minimum:
        return f"the number is below the minimum of {_g(feature.minimum)}"
    if feature.maximum is not None and number > feature.maximum:
        return f"the number is above the maximum of {_g(feature.maximum)}"
    if feature.categories and number not in feature.categories:
        return f"the number is not one of {', '.join(_g(c) for c in feature.categories)}"
    return None


def _g(number: float) -> str:
    return f"{number:g}"


def _what(item: object) -> str:
    if item is None:
        return "null"
    if isinstance(item, bool):
        return "a boolean"
    if isinstance(item, str):
        return "a string"
    return "a number" if isinstance(item, int | float) else type(item).__name__


def _shown_row(item: object, width: int) -> object:
    """The invalid row as it is echoed back: JSON-safe, every key and value short."""
    limit = width + SHOWN_KEYS
    if isinstance(item, Mapping):
        return {str(shown(str(key))): shown(value)
                for key, value in list(item.items())[:limit]}
    if isinstance(item, list | tuple):
        return [shown(value) for value in item[:limit]]
    return shown(item)


def _with_lines(checked: CheckedRows, lines: Sequence[int] | None) -> CheckedRows:
    if lines is None:
        return checked
    for entry in checked.invalid:
        entry["line"] = lines[int(str(entry["index"]))]
    return replace(checked, lines=[lines[index] for index in checked.indexes])
