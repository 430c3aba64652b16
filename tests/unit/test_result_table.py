"""How a task's rows are shaped for the pages: cells by feature, outputs, reasons, pages."""

from __future__ import annotations

import pytest

from ledger import TaskView
from web.result_table import (
    invalid_rows,
    number_text,
    output_view,
    page_of,
    row_text,
    task_rows,
)

NAMES = ["sepal_length", "sepal_width"]


def task(**fields: object) -> TaskView:
    base: dict[str, object] = dict(
        id=1, model_id=4, status="completed", input_data=[], input_indexes=[],
        output_data=[], invalid=[], cost_credits=0, quoted_credits=0, error=None,
        created_at="", updated_at="")
    return TaskView(**{**base, **fields})  # type: ignore[arg-type]


def test_cells_follow_the_feature_order_whichever_way_the_row_came() -> None:
    rows = task_rows(NAMES, task(
        input_data=[{"sepal_width": 3.5, "sepal_length": 5.1}, [4.9, 3.0]],
        input_indexes=[0, 2], output_data=[1.5, 2.0]))

    assert [(r["index"], r["cells"]) for r in rows] == [(0, ["5.1", "3.5"]), (2, ["4.9", "3.0"])]
    assert [r["number"] for r in rows] == [1, 3]  # shown to people, who count from 1


def test_an_unpredictable_row_is_left_out_and_a_rejected_tasks_inputs_stay() -> None:
    completed = task_rows(NAMES, task(input_data=[[1, 2], [3, 4]], input_indexes=[0, 1],
                                      output_data=[None, 7.0]))
    rejected = task_rows(NAMES, task(input_data=[[1, 2]], input_indexes=[0], output_data=None,
                                     status="rejected"))

    assert [r["index"] for r in completed] == [1]
    assert rejected[0]["output"] == {}


def test_a_classifier_shows_its_label_and_top_probability() -> None:
    view = output_view({"label": "setosa",
                        "probabilities": {"setosa": 0.9712, "versicolor": 0.0288}})

    assert view == {"label": "setosa", "probability": "97.1 %",
                    "title": "setosa 97.1 %, versicolor 2.9 %"}


@pytest.mark.parametrize(("value", "text"), [
    (2.0, "2.0"), (152.123456, "152.1235"), (3, "3"), (1e-7, "1e-07"), (2e300, "2e+300"),
    (0.0, "0.0"), ("x", "x"), (None, "null")])
def test_numbers_are_short(value: object, text: str) -> None:
    assert number_text(value) == text


def test_invalid_rows_say_where_and_why_per_feature() -> None:
    shaped = invalid_rows(NAMES, [
        {"index": 1, "line": 3, "value": {"sepal_width": "x", "sepal_length": "5"},
         "error": "sepal_width: not a number.", "errors": {"sepal_width": ["not a number"]}},
        {"index": 4, "value": [1], "error": "…", "errors": {"_row": ["the row has 1 value"]}}])

    assert shaped[0] == {"where": "Line 3", "value": "sepal_length=5, sepal_width=x",
                         "reasons": [("sepal_width", "not a number")]}
    assert shaped[1]["where"] == "Row #5"  # index 4 is the fifth: people count from 1
    assert shaped[1]["reasons"] == [("the row", "the row has 1 value")]
    assert invalid_rows([], [{"index": 2, "value": "x", "error": "not a number"}]) == [
        {"where": "Item #3", "value": "x", "reasons": [("", "not a number")]}]


def test_pages_are_clamped_and_count_their_rows() -> None:
    items = list(range(120))

    last = page_of(items, 99)

    assert (last["page"], last["pages"], last["first"], last["last"]) == (3, 3, 101, 120)
    assert last["items"] == items[100:] and last["has_prev"] and not last["has_next"]
    assert page_of([], 1) | {"items": []} == page_of([], 5) | {"items": []}


def test_a_history_preview_is_the_rows_values_in_feature_order() -> None:
    assert row_text(NAMES, {"sepal_width": 3.5, "sepal_length": 5.1}) == "[5.1, 3.5]"
    assert row_text([], 1.5) == "1.5"


def test_a_russian_page_writes_decimal_commas_and_the_api_keeps_points() -> None:
    from web.i18n import Translator

    ru = Translator("ru")
    rows = task_rows(NAMES, task(input_data=[[5.1, 3.5]], input_indexes=[0],
                                 output_data=[152.123456]), tr=ru)
    view = output_view({"label": "setosa",
                        "probabilities": {"setosa": 0.981, "versicolor": 0.019}}, ru)

    assert rows[0]["cells"] == ["5,1", "3,5"] and rows[0]["output"] == {"number": "152,1235"}
    assert view == {"label": "setosa", "probability": "98,1 %",
                    "title": "setosa 98,1 %; versicolor 1,9 %"}
    assert row_text(NAMES, [5.1, 3.5], ru) == "[5,1; 3,5]"
    # What a person typed is echoed as typed; only numbers take the page's decimal sign.
    assert invalid_rows(NAMES, [{"index": 0, "value": {"sepal_length": 5.5, "sepal_width": "x.y"},
                                 "errors": {"sepal_width": ["not a number"]}}], ru
                        )[0]["value"] == "sepal_length=5,5; sepal_width=x.y"
    assert task_rows(NAMES, task(input_data=[[5.1, 3.5]], input_indexes=[0],
                                 output_data=[1.5]))[0]["cells"] == ["5.1", "3.5"]
