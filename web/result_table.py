"""A task's rows as the pages show them: one column per feature and the output, the invalid
rows with their line and reasons per feature, and pages of ROWS_PER_PAGE so that a task of
thousands of rows stays a page a person can scroll."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from babel.numbers import get_decimal_symbol

from ledger import TaskView
from ml import ModelSpec
from web.i18n import Translator
from web.messages import localize

ROWS_PER_PAGE = 50  # rows of a task page; the cabinet's latest result shows fewer
ROW_KEY = "_row"  # ml.rows: a problem of the whole row rather than of one feature
SHOWN_CHARS = 80  # an echoed value is cut to this many characters


def columns(spec: ModelSpec | None) -> list[str]:
    """The feature names of a tabular model; empty for a one-number-per-item model."""
    return [] if spec is None or spec.schema.scalar else spec.schema.names


def whole_columns(spec: ModelSpec | None) -> set[str]:
    """The integer features: their cells read 59, not 59.0 (text rows are echoed as floats)."""
    return set() if spec is None else {f.name for f in spec.schema.features
                                       if f.type == "integer"}


def decimal_for(tr: Translator | None) -> str:
    """The decimal sign a page's reader writes ('5,1' in Russian); the API keeps the point."""
    return "." if tr is None else get_decimal_symbol(tr.lang)


def task_rows(names: Sequence[str], task: TaskView, whole: set[str] | None = None,
              tr: Translator | None = None) -> list[dict[str, Any]]:
    """Each valid input with its output; a rejected or failed task's inputs have none. A row
    the model could not predict (output None) is left out: it is listed with the invalid."""
    outputs: Sequence[object] | None = task.output_data
    decimal = decimal_for(tr)
    # "number" counts from 1 as people do; the API's index stays 0-based.
    return [{"index": index, "number": index + 1,
             "cells": _cells(names, row, whole or set(), decimal),
             "output": {} if outputs is None or i >= len(outputs)
             else output_view(outputs[i], tr)}
            for i, (index, row) in enumerate(zip(task.input_indexes, task.input_data,
                                                 strict=False))
            if outputs is None or i >= len(outputs) or outputs[i] is not None]


def output_view(output: object, tr: Translator | None = None) -> dict[str, str]:
    """A classifier's label and top probability, or a regression's number; nothing for a row
    the model could not predict (it is listed with the invalid rows)."""
    decimal = decimal_for(tr)
    if output is None:
        return {}
    if isinstance(output, Mapping) and "label" in output:
        probabilities = output.get("probabilities") or {}
        top = probabilities.get(output["label"]) if isinstance(probabilities, Mapping) else None
        every = _joiner(decimal).join(f"{label} {_percent(p, decimal)}"
                                      for label, p in probabilities.items())
        return {"label": str(output["label"]), "probability": _percent(top, decimal),
                "title": every}
    return {"number": number_text(output, decimal)}


def row_text(names: Sequence[str], row: object, tr: Translator | None = None) -> str:
    """A row's values in feature order, without the names, for the history's preview."""
    decimal = decimal_for(tr)
    ordered = in_order(names, row)
    values = list(ordered.values()) if isinstance(ordered, Mapping) else ordered
    return (f"[{value_text(values, decimal)}]" if isinstance(values, list | tuple)
            else value_text(values, decimal))


def output_text(output: object, tr: Translator | None = None) -> str:
    """An output in a few characters, for the history's preview: a label or a number."""
    view = output_view(output, tr)
    return view.get("label") or view.get("number") or "—"


def invalid_rows(names: Sequence[str], invalid: Sequence[Mapping[str, Any]],
                 tr: Translator | None = None) -> list[dict[str, Any]]:
    """Each invalid row with where it was (its CSV line or its index) and every reason, in
    the translator's language (English without one)."""
    tr = tr or Translator("en")
    shaped = []
    for entry in invalid:
        line, index = entry.get("line"), entry.get("index")
        # A CSV line is the file's own line number; an item counts from 1 as people do (the
        # API's 0-based index is a program's).
        number = index + 1 if isinstance(index, int) and not isinstance(index, bool) else index
        where = tr("Line %(line)s", line=line) if line is not None else (
            tr("Row #%(index)s", index=number) if names else tr("Item #%(index)s", index=number))
        errors = entry.get("errors")
        reasons = ([(tr("the row") if name == ROW_KEY else str(name),
                     ", ".join(localize(tr, str(p)) for p in problems))
                    for name, problems in errors.items()] if isinstance(errors, Mapping)
                   else [("", localize(tr, str(entry.get("error", ""))))])
        shaped.append({"where": where,
                       "value": value_text(in_order(names, entry.get("value")), decimal_for(tr)),
                       "reasons": reasons})
    return shaped


def page_of(items: Sequence[Any], page: int, per_page: int = ROWS_PER_PAGE) -> dict[str, Any]:
    """One page of `items` (clamped to the last page), with what a pager needs."""
    pages = max(1, -(-len(items) // per_page))
    page = min(max(page, 1), pages)
    start = (page - 1) * per_page
    return {"items": list(items[start:start + per_page]), "page": page, "pages": pages,
            "first": start + 1, "last": min(start + per_page, len(items)), "total": len(items),
            "has_prev": page > 1, "has_next": page < pages}


def number_text(value: object, decimal: str = ".") -> str:
    """A number short enough for a cell, with the page's decimal sign; the API keeps the
    exact value."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value_text(value, decimal)
    if isinstance(value, int) or value == 0 or 1e-3 <= abs(value) < 1e15:
        text = str(round(value, 4)) if isinstance(value, float) else str(value)
    else:
        text = f"{value:.4g}"
    return text.replace(".", decimal)


def value_text(value: object, decimal: str = ".") -> str:
    """A value as sent, cut short; its numbers (not its strings: they are echoed as typed)
    with the page's decimal sign, and a list split by '; ' where the comma is that sign."""
    if isinstance(value, Mapping):
        text = _joiner(decimal).join(f"{key}={_scalar(item, decimal)}"
                                     for key, item in value.items())
    elif isinstance(value, list | tuple):
        text = _joiner(decimal).join(_scalar(item, decimal) for item in value)
    else:
        text = _scalar(value, decimal)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "…"


def in_order(names: Sequence[str], value: object) -> object:
    """A row echoed as an object, its features first in the model's order (the stored echo
    may have sorted its keys), then any unknown keys."""
    if not isinstance(value, Mapping):
        return value
    return {**{name: value[name] for name in names if name in value},
            **{key: item for key, item in value.items() if key not in names}}


def _scalar(value: object, decimal: str) -> str:
    if value is None:
        return "null"
    if isinstance(value, float):
        return str(value).replace(".", decimal)
    return str(value)


def _joiner(decimal: str) -> str:
    return "; " if decimal == "," else ", "


def _cells(names: Sequence[str], row: object, whole: set[str], decimal: str = "."
           ) -> list[str]:
    if not names:
        return [value_text(row, decimal)]
    if isinstance(row, Mapping):
        values = [row.get(name, "") for name in names]
    elif isinstance(row, list | tuple):
        values = [row[i] if i < len(row) else "" for i in range(len(names))]
    else:
        values = [row] + [""] * (len(names) - 1)
    return [value_text(int(v) if name in whole and isinstance(v, float) and v.is_integer()
                       else v, decimal) for name, v in zip(names, values, strict=True)]


def _percent(probability: object, decimal: str = ".") -> str:
    if isinstance(probability, bool) or not isinstance(probability, int | float):
        return "—"
    return f"{probability * 100:.1f} %".replace(".", decimal)
