"""The short ways through for the usual prediction (a JSON list of plain numbers, a code model
answering a float per row) give exactly what the general item-by-item code gives, and they
are the ways the usual request takes."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import TaskDraft
from ml.models import Outcome, Unpredictable
from ml.outputs import _column, _number
from ml.registry import default_models
from ml.rows import check_rows
from ml.service import _judged, _judged_each
from ml.validation import check_each, check_items, plain_numbers

JSON_ITEMS = st.lists(st.one_of(
    st.floats(), st.integers(), st.integers(min_value=2**62, max_value=2**70).map(lambda n: -n),
    st.booleans(), st.none(), st.text(max_size=5), st.lists(st.integers(), max_size=2)),
    max_size=12)


@settings(max_examples=2000, deadline=None)
@given(JSON_ITEMS)
def test_any_json_items_are_checked_as_item_by_item(items: list[Any]) -> None:
    assert check_items(items) == check_each(items)


@given(st.lists(st.one_of(st.floats(allow_nan=False, allow_infinity=False),
                          st.integers(min_value=-2**53, max_value=2**53)), max_size=100))
def test_a_list_of_plain_numbers_takes_the_short_way(items: list[Any]) -> None:
    assert plain_numbers(items) == [float(item) for item in items]


@given(st.lists(st.floats(), max_size=12))
def test_a_list_of_floats_is_the_column_number_by_number(raw: list[float]) -> None:
    assert _column(raw, len(raw)) == [_number(value) for value in raw]


def _fields(run: Any) -> tuple[Any, ...]:
    return (list(run.output_data), run.cost_credits, list(run.unpredictable), run.problem,
            run.describe(42))


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(st.floats(allow_nan=False), st.just(Unpredictable(reason="NaN"))),
                min_size=1, max_size=8),
       st.sampled_from([None, "the model failed: ValueError"]))
def test_a_run_is_judged_as_row_by_row(outcomes: list[Outcome], problem: str | None) -> None:
    spec = default_models()[0]
    items: list[object] = [float(n) for n in range(len(outcomes))]
    checked = check_rows(spec.schema, items, source="json")
    draft = TaskDraft(model_id=spec.id, input_data=list(items),  # type: ignore[arg-type]
                      input_indexes=checked.indexes, invalid=[],
                      cost_credits=spec.price_per_item_credits * len(items),
                      model_version=spec.version)
    assert _fields(_judged(spec, checked, draft, outcomes, problem)) == _fields(
        _judged_each(spec, checked, draft, outcomes, problem))
