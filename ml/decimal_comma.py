"""Decimal commas in typed text and CSV, as Russian spreadsheets write them (`1,5; 2,25; 3`).

A comma between two digits is either a decimal mark or a separator. It is read as a decimal
mark only where the separators between values are `;`, tabs or new lines and each value holds
that one comma; any other text with such a comma is refused with AmbiguousDecimalComma before
it is priced, never split into more (charged) items than were meant. Text with no comma between
digits (`1, 2, 3`, `1.5 2`) reads as before.
"""

from __future__ import annotations

import re

from ml.errors import AmbiguousDecimalComma

TIGHT_COMMA = re.compile(r"\d,\d")  # the only comma that could be a decimal mark
DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+([eE][+-]?\d+)?", re.ASCII)
CELL_SEPARATORS = re.compile(r"[;\t]")
QUOTED = re.compile(r'"[^"]*"')  # a quoted CSV cell is one value, whatever commas it holds


def has_decimal_comma(text: str) -> bool:
    """Whether a comma in `text` (outside CSV quotes) stands between two digits."""
    return TIGHT_COMMA.search(QUOTED.sub("", text)) is not None


def values_of(text: str) -> list[str]:
    """The values of pasted text holding a comma between digits (numbers for a one-number
    model): separated by `;`, tabs or new lines, each with at most one decimal comma."""
    cells = [cell.strip() for line in text.splitlines()
             for cell in CELL_SEPARATORS.split(line)]
    cells = [cell for cell in cells if cell]
    if len(cells) < 2:  # `1,5` alone: one number or two? No separator tells.
        raise AmbiguousDecimalComma(text.strip())
    for cell in cells:
        check_cell(cell)
    return cells


def rows_of(text: str) -> list[list[str]]:
    """Rows of pasted text holding a comma between digits: one row per line, values separated
    by `;` or tabs. An empty cell between two separators is a value left out."""
    rows: list[list[str]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        cells = [cell.strip() for cell in CELL_SEPARATORS.split(line)]
        while cells and not cells[-1]:  # a trailing separator, as spreadsheets leave
            cells.pop()
        if len(cells) < 2 and "," in line:
            raise AmbiguousDecimalComma(line.strip())
        for cell in cells:
            check_cell(cell)
        rows.append(cells)
    return rows


def check_cell(cell: str) -> None:
    """A value between strong separators may hold one comma, as its decimal mark: `1,5 2`,
    `1 000,5` and `1,5,2` could each be one value or several. (Other bad text, `2 x`, is one
    invalid value, reported like any other.)"""
    if "," in cell and not DECIMAL_COMMA.fullmatch(cell):
        raise AmbiguousDecimalComma(cell)
