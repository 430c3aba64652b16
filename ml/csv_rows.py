"""CSV uploads for tabular models: the header row names the features, each data row becomes an
object keyed by feature name, with its 1-based line in the file for the report.

csv.Sniffer guesses wrong on short files, so the separator is read from the header line alone:
feature names never contain ',', ';' or a tab, so whichever it holds most of is the one. A
Russian spreadsheet writes `;` (or tabs, when copied) and decimal commas in its cells; those
cells are read as numbers by ml.validation.read_number.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

from ml.errors import BadCsv, BadCsvHeader, TooManyItems
from ml.schema import InputSchema

HEADER_CHARS = 4096  # a header longer than this names no model's features


@dataclass(frozen=True, kw_only=True)
class CsvRows:
    rows: list[dict[str, str]]
    lines: list[int]  # 1-based line of each row in the file, for the report


def parse_csv(schema: InputSchema, text: str, *, max_items: int) -> CsvRows:
    """Read at most max_items data rows (one more is refused with TooManyItems)."""
    assert not schema.scalar, "a scalar model's CSV is read by split_csv"
    text = text.removeprefix("\ufeff")
    header_line = next((line for line in text.splitlines() if line.strip()), "")
    if not header_line:
        return CsvRows(rows=[], lines=[])
    delimiter = max(",;\t", key=header_line.count)  # ties (one column): a comma
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header: list[str] | None = None
    rows: list[dict[str, str]] = []
    lines: list[int] = []
    last_line = 0
    for record in _records(reader):
        first_line, last_line = last_line + 1, reader.line_num
        if not any(cell.strip() for cell in record):
            continue  # blank lines and rows of empty cells (spreadsheets leave those) are skipped
        if header is None:
            header = _header(schema, record, header_line)
            continue
        if len(rows) == max_items:
            raise TooManyItems(max_items + 1, max_items, at_least=True)
        rows.append(_row(header, record))
        lines.append(first_line)
    return CsvRows(rows=rows, lines=lines)


def _records(reader: Iterator[list[str]]) -> Iterator[list[str]]:
    try:
        yield from reader
    except csv.Error as error:  # a cell over csv's field size limit, a NUL byte, …
        raise BadCsv(f"the file is not readable as CSV: {error}") from None


def _header(schema: InputSchema, record: list[str], header_line: str) -> list[str]:
    if len(header_line) > HEADER_CHARS:
        raise BadCsvHeader(f"the header row is longer than {HEADER_CHARS} characters")
    names = [cell.strip() for cell in record]
    takes = f"the model takes: {', '.join(schema.names)}"
    if "" in names:
        raise BadCsvHeader(f"the header row has an empty column name; {takes}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise BadCsvHeader(f"the header row names {', '.join(repeated)} more than once")
    unknown = [name for name in names if name not in schema.names]
    if unknown:
        raise BadCsvHeader(f"the header row names columns the model does not have: "
                           f"{', '.join(unknown)}; {takes}")
    missing = [f.name for f in schema.features if f.required and f.name not in names]
    if missing:
        raise BadCsvHeader(f"the header row lacks required columns: {', '.join(missing)}; "
                           f"{takes}")
    return names


def _row(header: list[str], record: list[str]) -> dict[str, str]:
    """Cells under their column's name; a cell past the header's last column is kept under
    'column N' so that the row is reported as having an unknown feature, not cut silently."""
    row = dict(zip(header, record, strict=False))
    for number in range(len(header) + 1, len(record) + 1):
        if record[number - 1].strip():  # a trailing separator leaves an empty cell: no matter
            row[f"column {number}"] = record[number - 1]
    return row
