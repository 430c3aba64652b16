"""Russian-style input: a decimal comma is read as one where `;`, tabs or new lines separate
the values, and a comma that could be either refuses the request (AmbiguousDecimalComma is
raised while reading, before anything is priced). Tables first, then properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ml import AmbiguousDecimalComma, Feature, InputSchema, check_rows, parse_csv
from ml.rows import split_text_rows
from ml.validation import check_items, split_csv, split_text

IRIS_LIKE = InputSchema(features=tuple(Feature(name=n) for n in (
    "sepal_length", "sepal_width", "petal_length", "petal_width")), kind="regression")


def numbers(text: str) -> list[float]:
    checked = check_items(split_text(text), as_text=True)
    assert checked.invalid == []
    return checked.values


@pytest.mark.parametrize(("text", "values"), [
    ("1,5; 2,25; 3", [1.5, 2.25, 3.0]),               # the example: three, not five
    ("1,5\n2,25\n3\n", [1.5, 2.25, 3.0]),              # a spreadsheet column copied
    ("1,5\t2,25\t-0,5", [1.5, 2.25, -0.5]),             # a spreadsheet row copied
    ("1,5;;2\r\n", [1.5, 2.0]),                         # an empty cell is no value
    ("1, 2, 3", [1.0, 2.0, 3.0]),                       # no comma between digits: as before
    ("1.5,2.5" .replace(",", ", "), [1.5, 2.5]),
])
def test_a_decimal_comma_is_read_where_the_separators_tell(text: str,
                                                          values: list[float]) -> None:
    assert numbers(text) == values


@pytest.mark.parametrize("text", [
    "1,5,2", "1,5 2", "1,5", "1,5, 2", "1,5; 2 3,5", "1 000,5; 2", "1,5; 2,3,4", "1.5,2",
])
def test_a_comma_that_could_be_either_refuses_the_text(text: str) -> None:
    with pytest.raises(AmbiguousDecimalComma) as refused:
        split_text(text)
    assert refused.value.code == "ambiguous_decimal_comma"
    assert "“;”" in str(refused.value) and "dot" in str(refused.value)
    assert refused.value.params["fragment"]


def test_rows_with_decimal_commas_are_lines_of_semicolon_or_tab_separated_values() -> None:
    rows = split_text_rows("5,1;3,5;1,4;0,2\n6,3\t2,9\t5,6\t1,8\n\n4,9;3;1,4;\n")
    assert rows == [["5,1", "3,5", "1,4", "0,2"], ["6,3", "2,9", "5,6", "1,8"],
                    ["4,9", "3", "1,4"]]
    checked = check_rows(IRIS_LIKE, rows, source="text")
    assert checked.rows == [[5.1, 3.5, 1.4, 0.2], [6.3, 2.9, 5.6, 1.8]]
    [short] = checked.invalid  # a trailing `;` is not a left-out value; a row of 3 is short
    assert "the row has 3 values; the model takes 4" in str(short["error"])


@pytest.mark.parametrize("text", ["5,1,3,5,1,4,0,2", "5,1 3,5 1,4 0,2", "5,1;3,5\n1, 4; 0,2"])
def test_rows_where_a_comma_could_be_either_are_refused(text: str) -> None:
    with pytest.raises(AmbiguousDecimalComma):
        split_text_rows(text)


def test_a_russian_excel_csv_has_semicolons_and_decimal_commas() -> None:
    text = ("\ufeffsepal_length;sepal_width;petal_length;petal_width\r\n"
            "5,1;3,5;1,4;0,2\r\n6,3;2,9;5,6;1,8\r\n")
    parsed = parse_csv(IRIS_LIKE, text, max_items=10)
    checked = check_rows(IRIS_LIKE, parsed.rows, source="csv", lines=parsed.lines)
    assert checked.rows == [[5.1, 3.5, 1.4, 0.2], [6.3, 2.9, 5.6, 1.8]]
    tabs = parse_csv(IRIS_LIKE, text.replace(";", "\t"), max_items=10)
    assert tabs.rows == parsed.rows


@pytest.mark.parametrize(("text", "cells"), [
    ("x\n1,5\n2,25\n", ["1,5", "2,25"]),       # one column: each line one value
    ("x;y\n1,5;2\n", ["1,5", "2"]),            # `;` between values
    ("1,5\t2\n", ["1,5", "2"]),
    ("x,y\n1,2\n", ["1", "2"]),                # the header shows the commas are separators
    ('1,"2,5"\n', ["1", "2,5"]),               # quoted: one value
])
def test_a_one_number_models_csv_reads_decimal_commas_where_unambiguous(
        text: str, cells: list[str]) -> None:
    assert split_csv(text) == cells


@pytest.mark.parametrize("text", ["1,5\n2,25\n", "x\n1,5,2\n", "x\n1,5 2\n"])
def test_a_one_number_models_csv_where_a_comma_could_be_either_is_refused(text: str) -> None:
    with pytest.raises(AmbiguousDecimalComma):
        split_csv(text)


# -- properties -------------------------------------------------------------------------------

def russian(whole: int, fraction: str, negative: bool) -> tuple[str, float]:
    """A number as a Russian spreadsheet writes it, and the number it stands for."""
    text = f"{'-' if negative else ''}{whole}{',' + fraction if fraction else ''}"
    return text, float(text.replace(",", "."))


NUMBER = st.builds(russian, st.integers(0, 10**7), st.from_regex(r"[0-9]{0,6}", fullmatch=True),
                   st.booleans())
SEPARATOR = st.sampled_from([";", "; ", " ;", "\t", "\n", "\r\n", ";\n", " ; "])


@given(st.lists(NUMBER, min_size=2, max_size=30), st.data())
def test_any_numbers_written_the_russian_way_parse_to_themselves(
        written: list[tuple[str, float]], data: st.DataObject) -> None:
    text = written[0][0]
    for cell, _ in written[1:]:
        text += data.draw(SEPARATOR) + cell
    checked = check_items(split_text(text), as_text=True)
    assert checked.values == [number for _, number in written]
    assert len(checked.indexes) == len(written)  # the count the request is priced by


@given(st.lists(st.lists(NUMBER, min_size=4, max_size=4), min_size=1, max_size=10),
       st.sampled_from([";", "\t", "; "]))
def test_any_rows_written_the_russian_way_parse_to_themselves(
        rows: list[list[tuple[str, float]]], separator: str) -> None:
    text = "\n".join(separator.join(cell for cell, _ in row) for row in rows)
    checked = check_rows(IRIS_LIKE, split_text_rows(text), source="text")
    assert checked.rows == [[number for _, number in row] for row in rows]
    header = ";".join(IRIS_LIKE.names)
    parsed = parse_csv(IRIS_LIKE, header + "\n" + text.replace("\t", ";"), max_items=20)
    assert check_rows(IRIS_LIKE, parsed.rows, source="csv").rows == checked.rows


@given(st.lists(NUMBER, min_size=1, max_size=10), st.data())
def test_a_decimal_comma_between_ambiguous_separators_is_always_refused(
        written: list[tuple[str, float]], data: st.DataObject) -> None:
    with_comma = data.draw(st.integers(0, len(written) - 1))
    cells = [cell for cell, _ in written]
    if "," not in cells[with_comma]:
        cells[with_comma] += ",5"
    text = data.draw(st.sampled_from([",", " ", ", ", " , "])).join(cells)
    with pytest.raises(AmbiguousDecimalComma):
        split_text(text)
