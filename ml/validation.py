"""Input validation, item by item: a valid item is a finite real number; every other item is
reported with its index and the reason, and the valid ones go on to the model."""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError, fields

# Decimal notation only: "nan", "inf", "0x10" and "1_000" are not numbers a person typed.
NUMBER_RE = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", re.ASCII)
SHOWN_CHARS = 60  # an invalid value is echoed back at most this long


class FiniteNumber(fields.Field[float]):
    """A JSON number that is finite in float range. bool is refused though Python calls it int."""

    default_error_messages = {  # noqa: RUF012 - marshmallow's own class attribute
        "null": "null is not a number", "required": "missing"}

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> float:
        if isinstance(value, bool):
            raise ValidationError("a boolean is not a number")
        if value is None:
            raise ValidationError("null is not a number")
        if isinstance(value, str):
            raise ValidationError("a string is not a number")
        if isinstance(value, list | tuple):
            raise ValidationError("a list is not a number")
        if isinstance(value, dict):
            raise ValidationError("an object is not a number")
        if isinstance(value, int):
            try:
                return float(value)
            except OverflowError:
                raise ValidationError("the number is beyond the float range") from None
        if isinstance(value, float):
            if math.isnan(value):
                raise ValidationError("NaN is not a number")
            if math.isinf(value):
                raise ValidationError("the number is infinite or beyond the float range")
            return value
        raise ValidationError("not a number")


class DecimalText(fields.Field[float]):
    """A number written as text (a CSV cell, a pasted token)."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> float:
        text = value.strip() if isinstance(value, str) else ""
        if not NUMBER_RE.fullmatch(text):
            raise ValidationError("not a number")
        number = float(text)
        if math.isinf(number):
            raise ValidationError("the number is beyond the float range")
        return number


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
    field: fields.Field[float] = DecimalText() if as_text else FiniteNumber()
    values: list[float] = []
    indexes: list[int] = []
    invalid: list[dict[str, object]] = []
    for index, item in enumerate(items):
        try:
            values.append(field.deserialize(item))
            indexes.append(index)
        except ValidationError as error:
            reason = error.messages[0] if isinstance(error.messages, list) else str(error)
            invalid.append({"index": index, "value": shown(item), "error": str(reason)})
    return Checked(values=values, indexes=indexes, invalid=invalid)


def split_text(text: str) -> list[str]:
    """Numbers pasted into a form: separated by commas, semicolons, spaces or new lines."""
    return [token for token in re.split(r"[\s,;]+", text) if token]


def split_csv(text: str) -> list[str]:
    """One value per cell; a first row with no number in it is a header and is skipped."""
    rows = [[cell.strip() for cell in row] for row in csv.reader(io.StringIO(text))]
    rows = [[cell for cell in row if cell] for row in rows]
    rows = [row for row in rows if row]
    if rows and not any(NUMBER_RE.fullmatch(cell) for cell in rows[0]):
        rows = rows[1:]
    return [cell for row in rows for cell in row]
