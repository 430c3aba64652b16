"""What a prediction gives back: frozen, typed, the same for the first call and its retries."""

from __future__ import annotations

from dataclasses import dataclass

from ledger import BalanceView, JsonValue, TaskView
from ledger.limits import PeriodSpend


@dataclass(frozen=True, kw_only=True)
class Prediction:
    """One valid input beside its output, under the index it had in the request."""

    index: int
    input: JsonValue  # the row as sent: a number, an object keyed by feature, or an array
    output: JsonValue  # a number (regression) or {"label": ..., "probabilities": {...}}


@dataclass(frozen=True, kw_only=True)
class PredictionResult:
    """A finished task: completed (charged), failed or rejected (both uncharged)."""

    status: str
    task: TaskView
    predictions: tuple[Prediction, ...]
    invalid: list[dict[str, JsonValue]]
    cost_credits: int  # charged
    quoted_credits: int  # the price asked, which a rejection could not cover
    balance: BalanceView
    refusal: PeriodSpend | None = None  # the spend limit that rejected it, if one did


def predictions_of(task: TaskView) -> tuple[Prediction, ...]:
    """The predicted rows: a None output is a row the model could not predict (it is in
    `invalid`); a rejected or failed task has none."""
    outputs = task.output_data or []
    return tuple(Prediction(index=i, input=x, output=y) for i, x, y in
                 zip(task.input_indexes, task.input_data, outputs, strict=False)
                 if y is not None)
