"""Input validation, item by item: a valid item is a finite real number; every other item is
reported with its index and the reason, and the valid ones go on to the model."""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ml.decimal_comma import QUOTED, check_cell, has_decimal_comma, values_of
from ml.errors import AmbiguousDecimalComma

# Decimal notation only: "nan", "inf", "0x10" and "1_000" are not numbers a person typed. A
# comma between digits is a decimal mark here: the splitters (ml.decimal_comma) only leave one
# in a value where it cannot have been a separator.
NUMBER_RE = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+|\d+,\d+)([eE][+-]?\d+)?", re.ASCII)
SHOWN_CHARS = 60  # an invalid value is echoed back at most this long


class NotANumber(ValueError):
    """Why a value is not a number the model can take; its text is the reason shown to people."""


# One wording per problem kind, whichever way the value arrived (JSON, pasted text, CSV, form).
NOT_A_NUMBER = "not a number"  # a JSON string, or text that is not ASCII decimal notation
BOOLEAN = "a boolean is not a number"
NULL = "null is not a number"
A_LIST = "a list is not a number"
AN_OBJECT = "an object is not a number"
NAN = "NaN is not a number"
BEYOND_RANGE = "the number is infinite or beyond the float range"


def read_number(value: object, *, as_text: bool = False) -> float:
    """The finite float `value` stands for, or NotANumber with the reason.

    bool is refused though Python calls it int; `json.loads` hands over NaN and ±Infinity, and
    turns 1e309 into inf, so those are refused here too.
    """
    if as_text and isinstance(value, str):
        text = value.strip()
        if not NUMBER_RE.fullmatch(text):
            raise NotANumber(NOT_A_NUMBER)
        value = float(text.replace(",", "."))
    if isinstance(value, bool):
        raise NotANumber(BOOLEAN)
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            raise NotANumber(BEYOND_RANGE) from None
    if isinstance(value, float):
        if math.isnan(value):
            raise NotANumber(NAN)
        if math.isinf(value):
            raise NotANumber(BEYOND_RANGE)
        return value
    raise NotANumber(_WRONG_TYPE.get(type(value), NOT_A_NUMBER))


_WRONG_TYPE: dict[type, str] = {type(None): NULL, str: NOT_A_NUMBER, list: A_LIST,
                                tuple: A_LIST, dict: AN_OBJECT}


@dataclass(frozen=True, kw_only=True)
class Checked:
    values: list[float]
    indexes: list[int]
    invalid: list[dict[str, object]]


def shown(value: object) -> object:
    """The invalid value as it is echoed back: JSON-safe and short."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and abs(value) < 2**53:
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    text = value if isinstance(value, str) else _short_repr(value)
    # Lone surrogates cannot be stored as UTF-8; they are shown as '?'.
    text = text.encode("utf-8", "replace").decode("utf-8")
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "…"


def _short_repr(value: object) -> str:
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, int):
        # str() refuses an int over 4,300 digits (CPython's limit): estimate those from the bits.
        if value.bit_length() < 14_000:
            return f"an integer of {len(str(abs(value)))} digits"
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1:,} digits"
    if isinstance(value, list | tuple):
        return f"a list of {len(value)} items"
    if isinstance(value, dict):
        return f"an object with {len(value)} keys"
    return type(value).__name__


def check_items(items: Sequence[object], *, as_text: bool = False) -> Checked:
    """Split items into valid numbers (with their indexes) and invalid ones with reasons."""
    if not as_text and (plain := plain_numbers(items)) is not None:
        return Checked(values=plain, indexes=list(range(len(plain))), invalid=[])
    return check_each(items, as_text=as_text)


def check_each(items: Sequence[object], *, as_text: bool = False) -> Checked:
    """check_items item by item, whatever the items are."""
    values: list[float] = []
    indexes: list[int] = []
    invalid: list[dict[str, object]] = []
    for index, item in enumerate(items):
        try:
            values.append(read_number(item, as_text=as_text))
            indexes.append(index)
        except NotANumber as error:
            invalid.append({"index": index, "value": shown(item), "error": str(error)})
    return Checked(values=values, indexes=indexes, invalid=invalid)


def plain_numbers(items: Sequence[object]) -> list[float] | None:
    """What read_number gives for each item, when every one is a finite float or an int
    well inside the float range (a JSON list of numbers, the usual request), read without
    its exceptions and branches; None as soon as one item is anything else."""
    values: list[float] = []
    for item in items:
        kind = type(item)
        if kind is float and math.isfinite(item):  # type: ignore[arg-type]
            values.append(item)  # type: ignore[arg-type]
        elif kind is int and -2**63 < item < 2**63:  # type: ignore[operator]
            values.append(float(item))  # type: ignore[arg-type]
        else:
            return None
    return values


def split_text(text: str) -> list[str]:
    """Numbers pasted into a form: separated by commas, semicolons, spaces or new lines; with
    a comma between digits, by `;`, tabs or new lines only (see ml.decimal_comma)."""
    if has_decimal_comma(text):
        return values_of(text)
    return [token for token in re.split(r"[\s,;]+", text) if token]


def split_csv(text: str) -> list[str]:
    """One value per cell; a first row with no number in it is a header and is skipped.

    The separator is the first line's: `;` or a tab (a Russian spreadsheet's, whose cells may
    hold decimal commas), else a comma. A first line of one value means one column, so each
    line is one value (`1,5` a decimal comma). A file whose first line is data holding a comma
    between digits, with no `;` or tab, is refused: `1,5` there is one number or two.
    """
    first = next((line for line in text.splitlines() if line.strip()), "")
    bare = QUOTED.sub("", first)
    delimiter = max(";\t", key=bare.count) if bare.count(";") + bare.count("\t") else ","
    if not bare.count(delimiter) and has_decimal_comma(text):  # one column
        rows = [[line.strip()] for line in text.splitlines()]
        for row in rows:
            check_cell(row[0])
    else:
        if delimiter == "," and has_decimal_comma(first) and _is_data(first):
            raise AmbiguousDecimalComma(first.strip())
        rows = [[cell.strip() for cell in row]
                for row in csv.reader(io.StringIO(text), delimiter=delimiter)]
    rows = [[cell for cell in row if cell] for row in rows]
    rows = [row for row in rows if row]
    if rows and not any(NUMBER_RE.fullmatch(cell) for cell in rows[0]):
        rows = rows[1:]
    return [cell for row in rows for cell in row]


def _is_data(line: str) -> bool:
    return any(NUMBER_RE.fullmatch(cell.strip()) for cell in next(csv.reader([line]), []))
