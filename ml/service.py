"""MLService.process_task: read and validate the rows, price, hold, predict off the event loop
in one vectorised call, settle. A one_transaction model (pure, fast) skips the hold: it runs
first and one write charges it, if the balance still covers it, or records the rejection.

The hold is taken for every valid row before the model runs and resolved exactly once after
it: the rows the model predicted are charged and the rest of the hold is released (a row whose
output is not a finite number is reported, not charged); a model that fails as a whole
releases all of it. Nothing is charged otherwise.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import logging
import math
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from ledger import (
    JsonValue,
    LedgerService,
    ModelRun,
    Operation,
    TaskDraft,
    TaskOutcome,
    TaskView,
)
from ledger.spend import KeyLimit
from ml.csv_rows import parse_csv
from ml.errors import EmptyInput, ModelFailed, ModelNotFound, NoValidData, TooManyItems
from ml.models import Classified, Outcome, Unpredictable
from ml.outputs import run_model
from ml.registry import MLModelManager, ModelSpec
from ml.results import PredictionResult, predictions_of
from ml.rows import ROW, CheckedRows, Source, check_rows, split_text_rows
from ml.validation import split_csv, split_text

log = logging.getLogger(__name__)
# A model that hangs must not keep credits on hold for ever: the task fails after this.
PREDICT_TIMEOUT_S = 30.0


@dataclass(frozen=True, kw_only=True)
class Request:
    """The items of one request, read but not yet validated."""

    items: Sequence[object]
    source: Source
    lines: list[int] | None = None  # 1-based CSV line of each item


class MLService:
    """The prediction use case. One instance per process; models are loaded once."""

    def __init__(
        self, ledger: LedgerService, models: MLModelManager, executor: Executor | None = None,
        *, one_transaction: bool = True,
    ) -> None:
        self.ledger = ledger
        self.models = models
        self.executor = executor
        # False sends every model down the two-phase path (ML_CABINET_ONE_TRANSACTION=0).
        self.one_transaction = one_transaction
        # Operation ids of requests sent without a key: unique per process (a random prefix)
        # and per request (a counter), without a system call for randomness each time.
        self._prefix, self._count = uuid.uuid4().hex, itertools.count(1)
        self.running: set[int] = set()  # tasks between hold and settle in this process
        models.load_models()

    def _new_operation_id(self) -> str:
        return f"{self._prefix}-{next(self._count)}"

    def spec(self, model_id: int) -> ModelSpec:
        spec = self.models.get_spec(model_id) if type(model_id) is int else None
        if spec is None or self.models.get_runtime(spec.id) is None:
            raise ModelNotFound(f"there is no model {model_id}")
        return spec

    def read(self, spec: ModelSpec, input_data: str | Sequence[object], *,
             as_text: bool | None = None, csv: bool = False) -> Request:
        """The items of `input_data`: a list of JSON values (numbers, or rows as objects or
        arrays), pasted text (numbers, or one row per line), or a CSV file's text."""
        if not isinstance(input_data, str):
            return Request(items=input_data, source="text" if as_text else "json")
        if spec.schema.scalar:
            return Request(items=split_csv(input_data) if csv else split_text(input_data),
                           source="text")
        if csv:
            parsed = parse_csv(spec.schema, input_data, max_items=spec.max_items)
            return Request(items=parsed.rows, source="csv", lines=parsed.lines)
        return Request(items=split_text_rows(input_data), source="text")

    def check(self, spec: ModelSpec, request: Request) -> CheckedRows:
        """Whole-request limits first, then row by row."""
        if not request.items:
            raise EmptyInput("send at least one item")
        if len(request.items) > spec.max_items:
            raise TooManyItems(len(request.items), spec.max_items)
        checked = check_rows(spec.schema, request.items, source=request.source,
                             lines=request.lines)
        if not checked.rows:
            raise NoValidData(checked.invalid)
        return checked

    async def process_task(
        self, user: Any, model_id: int, input_data: str | Sequence[object],
        operation_id: str | None = None, *, as_text: bool | None = None, csv: bool = False,
        key: KeyLimit | None = None,
    ) -> PredictionResult:
        """Run a prediction for `user` (a User or a user id) and return its result.

        `input_data` is a list of JSON values, or text: numbers separated by commas, spaces
        or new lines (rows one per line for a tabular model), or with `csv=True` a CSV file
        (for a tabular model its header names the features). `as_text=True` reads a list's
        strings as typed text. A repeated `operation_id` returns the first result, uncharged.
        """
        user_id = int(getattr(user, "id", user))
        spec = self.spec(model_id)
        request = self.read(spec, input_data, as_text=as_text, csv=csv)
        checked = self.check(spec, request)
        draft = TaskDraft(model_id=spec.id, input_data=_echoes(spec, request, checked),
                          input_indexes=checked.indexes, invalid=checked.invalid,
                          cost_credits=spec.price_per_item_credits * len(checked.rows),
                          model_version=spec.version)
        op = Operation(user_id=user_id, operation_id=operation_id or self._new_operation_id(),
                       kind="predict", fingerprint=fingerprint(spec.id, request.items),
                       fresh=operation_id is None)
        if self.one_transaction and spec.one_transaction:
            done = await self._at_once(user_id, spec, checked, draft, op, key,
                                       replay=operation_id is not None)
            if done is not None:
                return done
        ticket = await self.ledger.submit_task(user_id, draft, op, key)
        outcome = ticket.outcome
        if ticket.run:
            outcome = await self._run(user_id, ticket.task_id, spec, checked, draft)
        assert outcome is not None
        return await self.result(user_id, outcome)

    async def _at_once(self, user_id: int, spec: ModelSpec, checked: CheckedRows,
                       draft: TaskDraft, op: Operation, key: KeyLimit | None, *,
                       replay: bool) -> PredictionResult | None:
        """The one-transaction path: read, run the model, then one write decides. None when
        the read side says the balance may not cover the quote: then the two-phase path's
        first write rejects it (or holds it, if credits arrived meanwhile) without a run."""
        if replay and (replayed := await self.ledger.replayed_task(op)) is not None:
            return await self.result(user_id, replayed)  # a retry: no model run, no write
        available = (await self.ledger.quick_balance(user_id)).available_credits
        if available <= 0 or available < draft.cost_credits:
            return None
        outcomes, problem = await self._predict(spec, checked, None, inline=True)
        run = _judged(spec, checked, draft, outcomes, problem)
        outcome, task = await self.ledger.run_at_once(user_id, draft, op, key, run)
        if task is None:  # the operation id was used meanwhile: its first result stands
            return await self.result(user_id, outcome)
        return _result(task, outcome)

    async def _predict(self, spec: ModelSpec, checked: CheckedRows, task_id: int | None, *,
                       inline: bool = False) -> tuple[list[Outcome], str | None]:
        """The model's outcomes, or the problem that fails the task. `inline` runs it on the
        event loop: only for one_transaction models, whose run is shorter than a thread hop."""
        runtime = self.models.get_runtime(spec.id)
        assert runtime is not None
        outcomes: list[Outcome] = []
        try:
            if inline:
                outcomes = run_model(runtime, spec.schema, checked)
            else:
                loop = asyncio.get_running_loop()
                outcomes = await asyncio.wait_for(loop.run_in_executor(
                    self.executor, run_model, runtime, spec.schema, checked),
                    PREDICT_TIMEOUT_S)
            problem = None if len(outcomes) == len(checked.rows) else (
                "the model returned the wrong number of predictions")
        except TimeoutError:
            problem = f"the model took longer than {PREDICT_TIMEOUT_S:.0f} seconds"
        except ModelFailed as exc:
            log.warning("model %s failed on task %s: %s", spec.id, task_id, exc)
            problem = f"the model failed: {exc}"
        except Exception as exc:  # any model failure releases the hold; nothing is charged
            log.exception("model %s failed on task %s", spec.id, task_id)
            problem = f"the model failed: {type(exc).__name__}"
        return outcomes, problem

    async def _run(self, user_id: int, task_id: int, spec: ModelSpec, checked: CheckedRows,
                   draft: TaskDraft) -> TaskOutcome:
        """The two-phase path's second half: the model runs under the hold, then settle."""
        self.running.add(task_id)
        try:
            outcomes, problem = await self._predict(spec, checked, task_id)
            run = _judged(spec, checked, draft, outcomes, problem)
            if run.problem is not None:
                return await self.ledger.fail_task(user_id, task_id, run.problem)
            return await self.ledger.complete_task(
                user_id, task_id, run.output_data, run.describe(task_id),
                cost_credits=run.cost_credits, unpredictable=run.unpredictable)
        finally:
            # If the settle failed (a full disk), the hold sweeper releases it later.
            self.running.discard(task_id)

    async def result(self, user_id: int, outcome: TaskOutcome) -> PredictionResult:
        """The reply for a finished task, rebuilt the same way for the first call and retries."""
        task = await self.ledger.find_task(user_id, outcome.task_id)
        assert task is not None, "an outcome names a task of its own user"
        return _result(task, outcome)


def _result(task: TaskView, outcome: TaskOutcome) -> PredictionResult:
    return PredictionResult(
        status=task.status, task=task, predictions=predictions_of(task),
        invalid=task.invalid, cost_credits=task.cost_credits,
        quoted_credits=outcome.cost_credits, balance=outcome.balance, refusal=outcome.refusal)


def _judged(spec: ModelSpec, checked: CheckedRows, draft: TaskDraft,
            outcomes: Sequence[Outcome], problem: str | None) -> ModelRun:
    """What the ledger records of a model's run: rows charged, rows it could not predict, or
    the problem (a model that predicted no row at all fails the task)."""
    if problem is None and outcomes and all(type(o) is float for o in outcomes):
        # Every row a number (the usual run): what _judged_each gives, without its passes.
        predicted = len(outcomes)
        return ModelRun(describe=_describe(spec, predicted),
                        output_data=list(outcomes),  # type: ignore[arg-type]
                        cost_credits=spec.price_per_item_credits * predicted, unpredictable=[])
    return _judged_each(spec, checked, draft, outcomes, problem)


def _judged_each(spec: ModelSpec, checked: CheckedRows, draft: TaskDraft,
                 outcomes: Sequence[Outcome], problem: str | None) -> ModelRun:
    predicted = sum(not isinstance(o, Unpredictable) for o in outcomes)
    if problem is None and not predicted:
        reason = next(o.reason for o in outcomes if isinstance(o, Unpredictable))
        problem = f"the model could not predict any row: {reason}"
    if problem is not None:
        return ModelRun(describe=_describe(spec, predicted), problem=problem)
    return ModelRun(describe=_describe(spec, predicted),
                    output_data=[_output_json(o) for o in outcomes],
                    cost_credits=spec.price_per_item_credits * predicted,
                    unpredictable=_unpredictable(spec, checked, draft, outcomes))


def _describe(spec: ModelSpec, predicted: int) -> Callable[[int], str]:
    def describe(task_id: int) -> str:
        return (f"Prediction #{task_id}: {spec.name}, {predicted} × "
                f"{spec.price_per_item_credits} credits")
    return describe


def _echoes(spec: ModelSpec, request: Request, checked: CheckedRows) -> list[JsonValue]:
    """Each valid row as it is echoed in `predictions[].input`: a number for a code model, the
    row as sent for JSON, and an object keyed by feature for text and CSV rows (their cells
    were text; the numbers read from them are what the model got)."""
    if spec.schema.scalar:
        return [row[0] for row in checked.rows]
    if request.source == "json":
        return [_json_row(request.items[i]) for i in checked.indexes]
    return [dict(zip(spec.schema.names, row, strict=True)) for row in checked.rows]


def _json_row(item: object) -> JsonValue:
    # A valid row holds only finite numbers under feature names (or in an array).
    if isinstance(item, dict):
        return {str(k): v for k, v in item.items()}
    assert isinstance(item, list | tuple)
    return list(item)


def _output_json(outcome: Outcome) -> JsonValue:
    if isinstance(outcome, Unpredictable):
        return None
    if isinstance(outcome, Classified):
        return {"label": outcome.label, "probabilities": dict(outcome.probabilities)}
    return float(outcome)


def _unpredictable(spec: ModelSpec, checked: CheckedRows, draft: TaskDraft,
                   outcomes: Sequence[Outcome]) -> list[dict[str, object]]:
    """The rows the model gave no usable answer for, reported like invalid input rows."""
    found: list[dict[str, object]] = []
    for position, outcome in enumerate(outcomes):
        if not isinstance(outcome, Unpredictable):
            continue
        entry: dict[str, object] = {"index": checked.indexes[position],
                                    "value": draft.input_data[position],
                                    "error": outcome.reason}
        if not spec.schema.scalar:
            entry["errors"] = {ROW: [outcome.reason]}
        if checked.lines is not None:
            entry["line"] = checked.lines[position]
        found.append(entry)
    return found


def fingerprint(model_id: int, items: Sequence[object]) -> str:
    """The same request gives the same text, whatever the key order of its rows; repr covers
    NaN and other non-JSON values."""
    text = _numbers_text(model_id, items)
    if text is None:
        text = json.dumps([model_id, [_printable(item) for item in items]], default=repr,
                          sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _numbers_text(model_id: int, items: Sequence[object]) -> str | None:
    """json.dumps's text above for the common request, a list of plain numbers, written
    directly (json writes a finite float and an int by their repr, with ", " between):
    a third of its time. None for anything else (tests/unit/test_fingerprint.py)."""
    if type(model_id) is not int:
        return None
    for item in items:
        kind = type(item)
        if not ((kind is float and math.isfinite(item))  # type: ignore[arg-type]
                or (kind is int and -2**63 < item < 2**63)):  # type: ignore[operator]
            return None
    return f"[{model_id!r}, [{', '.join(map(repr, items))}]]"


def _printable(item: object) -> object:
    """sort_keys orders the keys of a row at every depth; a row's values (one level down,
    never deeper: a hostile item may nest thousands deep) get the same care as an item."""
    if isinstance(item, dict):
        return {str(key): _scalar(value) for key, value in item.items()}
    if isinstance(item, list | tuple):
        return [_scalar(value) for value in item]
    return _scalar(item)


def _scalar(item: object) -> object:
    # Python refuses str() of an int past 4,300 digits; hex has no such limit.
    if isinstance(item, int) and item.bit_length() > 10_000:
        return f"int:{item:x}"
    return item
