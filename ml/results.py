"""What a prediction gives back: frozen, typed, the same for the first call and its retries."""

from __future__ import annotations

from dataclasses import dataclass

from ledger import BalanceView, JsonValue, TaskView


@dataclass(frozen=True, kw_only=True)
class Prediction:
    """One valid input beside its output, under the index it had in the request."""

    index: int
    input: JsonValue
    output: JsonValue


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


def predictions_of(task: TaskView) -> tuple[Prediction, ...]:
    outputs = task.output_data or []  # none for a rejected or failed task
    return tuple(Prediction(index=i, input=x, output=y) for i, x, y in
                 zip(task.input_indexes, task.input_data, outputs, strict=False))
