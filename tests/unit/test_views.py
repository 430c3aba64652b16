"""The typed results: the stored outcome format stays what old databases hold, and the web
edge shapes them into the API's field names."""

from __future__ import annotations

from dataclasses import FrozenInstanceError

import pytest

from ledger import BalanceView, Page, TaskView, TransactionView
from ledger.views import (
    stored_task_outcome,
    stored_top_up,
    task_outcome_from_stored,
    top_up_from_stored,
)
from ml import Prediction, predictions_of
from web import schemas
from web.public_ids import PublicIds

IDS = PublicIds(b"k" * 32)

# Exactly what the previous version wrote into `operations.outcome`.
OLD_TOP_UP = {
    "transaction": {"id": 7, "kind": "top_up", "amount": 250, "balance_after": 260,
                    "description": "Top-up", "task_id": None,
                    "created_at": "2026-11-26T19:52:09.257964+00:00"},
    "balance": {"balance": 260, "held": 4, "available": 256},
}
OLD_TASK_OUTCOME = {"task_id": 3, "cost": 4, "balance": {"balance": 6, "held": 0,
                                                          "available": 6}}


def task(**changes: object) -> TaskView:
    fields: dict[str, object] = dict(
        id=3, model_id=1, status="completed", input_data=[1.0, 2.5], input_indexes=[0, 2],
        output_data=[2.0, 5.0], invalid=[{"index": 1, "value": "x", "error": "not a number"}],
        cost_credits=2, quoted_credits=2, error=None, created_at="c", updated_at="u")
    fields.update(changes)
    return TaskView(**fields)  # type: ignore[arg-type]


def test_an_old_stored_top_up_reads_as_a_typed_outcome_and_writes_back_the_same() -> None:
    outcome = top_up_from_stored(OLD_TOP_UP)
    assert outcome.transaction.amount_credits == 250
    assert outcome.balance == BalanceView(balance_credits=260, held_credits=4)
    assert outcome.balance.available_credits == 256
    assert stored_top_up(outcome) == OLD_TOP_UP


def test_an_old_stored_task_outcome_round_trips() -> None:
    outcome = task_outcome_from_stored(OLD_TASK_OUTCOME)
    assert (outcome.task_id, outcome.cost_credits) == (3, 4)
    assert stored_task_outcome(outcome) == OLD_TASK_OUTCOME


def test_the_api_keeps_its_field_names_for_money() -> None:
    outcome = top_up_from_stored(OLD_TOP_UP)
    # The same names; the ids shown are the opaque forms of the stored numbers.
    shown = {**OLD_TOP_UP["transaction"], "id": IDS.transaction(7)}
    assert schemas.top_up_json(outcome, IDS) == {**OLD_TOP_UP, "transaction": shown}
    assert schemas.public_task(task(), IDS) == {
        "id": IDS.task(3), "model_id": 1, "status": "completed", "input_data": [1.0, 2.5],
        "output_data": [2.0, 5.0], "invalid": [{"index": 1, "value": "x",
                                                "error": "not a number"}],
        "cost": 2, "error": None, "created_at": "c", "model_version": None}


def test_results_are_frozen() -> None:
    balance = BalanceView(balance_credits=1, held_credits=0)
    with pytest.raises(FrozenInstanceError):
        balance.balance_credits = 2  # type: ignore[misc]


def test_predictions_pair_each_valid_input_with_its_output_under_its_request_index() -> None:
    assert predictions_of(task()) == (Prediction(index=0, input=1.0, output=2.0),
                                      Prediction(index=2, input=2.5, output=5.0))
    assert predictions_of(task(status="failed", output_data=None)) == ()


def test_inputs_and_outputs_may_be_rows_and_classifier_outputs() -> None:
    row = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
    label = {"label": "setosa", "probabilities": {"setosa": 0.97, "versicolor": 0.03}}
    view = task(input_data=[row], input_indexes=[0], output_data=[label])
    assert schemas.prediction_json(predictions_of(view)[0]) == {
        "index": 0, "input": row, "output": label}


def test_a_page_is_shaped_with_has_more() -> None:
    page = Page(data=(TransactionView(id=1, kind="charge", amount_credits=-4,
                                      balance_after_credits=6, description="d", task_id=3,
                                      created_at="c"),), has_more=True)
    assert schemas.page_json(page, lambda t: schemas.transaction_json(t, IDS)) == {
        "data": [{"id": IDS.transaction(1), "kind": "charge", "amount": -4,
                  "balance_after": 6, "description": "d", "task_id": IDS.task(3),
                  "created_at": "c"}],
        "has_more": True}
