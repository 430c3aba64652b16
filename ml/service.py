"""MLService.process_task: validate, price, hold, predict off the event loop, settle.

The hold is taken before the model runs and resolved exactly once after it: settled when the
model succeeds, released when it raises or returns nonsense. Nothing is charged otherwise.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import uuid
from collections.abc import Sequence
from concurrent.futures import Executor
from typing import Any

from ledger import LedgerService, Operation, TaskDraft, TaskOutcome
from ml.errors import EmptyInput, ModelNotFound, NoValidData, TooManyItems
from ml.registry import MLModelManager, ModelSpec
from ml.results import PredictionResult, predictions_of
from ml.validation import Checked, check_items, split_text

log = logging.getLogger(__name__)
# A model that hangs must not keep credits on hold for ever: the task fails after this.
PREDICT_TIMEOUT_S = 30.0


class MLService:
    """The prediction use case. One instance per process; models are loaded once."""

    def __init__(
        self, ledger: LedgerService, models: MLModelManager, executor: Executor | None = None,
    ) -> None:
        self.ledger = ledger
        self.models = models
        self.executor = executor
        self.running: set[int] = set()  # tasks between hold and settle in this process
        models.load_models()

    def spec(self, model_id: int) -> ModelSpec:
        spec = self.models.get_spec(model_id) if type(model_id) is int else None
        if spec is None or self.models.get_model(spec.id) is None:
            raise ModelNotFound(f"there is no model {model_id}")
        return spec

    def check(self, spec: ModelSpec, items: Sequence[object], *, as_text: bool) -> Checked:
        """Whole-request limits first, then item by item."""
        if not items:
            raise EmptyInput("send at least one item")
        if len(items) > spec.max_items:
            raise TooManyItems(len(items), spec.max_items)
        checked = check_items(items, as_text=as_text)
        if not checked.values:
            raise NoValidData(checked.invalid)
        return checked

    async def process_task(
        self, user: Any, model_id: int, input_data: str | Sequence[object],
        operation_id: str | None = None, *, as_text: bool | None = None,
    ) -> PredictionResult:
        """Run a prediction for `user` (a User or a user id) and return its result.

        `input_data` is a list of JSON values, or text with numbers separated by commas,
        spaces or new lines. A repeated `operation_id` returns the first result, uncharged.
        """
        user_id = int(getattr(user, "id", user))
        spec = self.spec(model_id)
        if isinstance(input_data, str):
            items: Sequence[object] = split_text(input_data)
            as_text = True
        else:
            items = input_data
        checked = self.check(spec, items, as_text=bool(as_text))
        draft = TaskDraft(model_id=spec.id, input_data=checked.values,
                          input_indexes=checked.indexes, invalid=checked.invalid,
                          cost_credits=spec.price_per_item_credits * len(checked.values))
        op = Operation(user_id=user_id, operation_id=operation_id or uuid.uuid4().hex,
                       kind="predict", fingerprint=fingerprint(spec.id, items))
        ticket = await self.ledger.submit_task(user_id, draft, op)
        outcome = ticket.outcome
        if ticket.run:
            outcome = await self._run(user_id, ticket.task_id, spec, checked.values)
        assert outcome is not None
        return await self.result(user_id, outcome)

    async def _run(
        self, user_id: int, task_id: int, spec: ModelSpec, values: list[float]
    ) -> TaskOutcome:
        model = self.models.get_model(spec.id)
        assert model is not None
        self.running.add(task_id)
        try:
            loop = asyncio.get_running_loop()
            output = await asyncio.wait_for(
                loop.run_in_executor(self.executor, model.predict, list(values)),
                PREDICT_TIMEOUT_S)
            problem = output_problem(output, len(values))
        except TimeoutError:
            problem = f"the model took longer than {PREDICT_TIMEOUT_S:.0f} seconds"
        except Exception as exc:  # any model failure releases the hold; nothing is charged
            log.exception("model %s failed on task %s", spec.id, task_id)
            problem = f"the model failed: {type(exc).__name__}"
        try:
            if problem is not None:
                return await self.ledger.fail_task(user_id, task_id, problem)
            description = (f"Prediction #{task_id}: {spec.name}, {len(values)} × "
                           f"{spec.price_per_item_credits} credits")
            return await self.ledger.complete_task(
                user_id, task_id, [float(v) for v in output], description)
        finally:
            # If the settle failed (a full disk), the hold sweeper releases it later.
            self.running.discard(task_id)

    async def result(self, user_id: int, outcome: TaskOutcome) -> PredictionResult:
        """The reply for a finished task, rebuilt the same way for the first call and retries."""
        task = await self.ledger.find_task(user_id, outcome.task_id)
        assert task is not None, "an outcome names a task of its own user"
        return PredictionResult(
            status=task.status, task=task, predictions=predictions_of(task),
            invalid=task.invalid, cost_credits=task.cost_credits,
            quoted_credits=outcome.cost_credits, balance=outcome.balance)


def output_problem(output: object, expected: int) -> str | None:
    if not isinstance(output, list) or len(output) != expected:
        return "the model returned the wrong number of predictions"
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
               for v in output):
        return "the model returned a value that is not a finite number"
    return None


def fingerprint(model_id: int, items: Sequence[object]) -> str:
    """The same request gives the same text; repr covers NaN and other non-JSON values."""
    text = json.dumps([model_id, [_printable(item) for item in items]], default=repr,
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _printable(item: object) -> object:
    # Python refuses str() of an int past 4,300 digits; hex has no such limit.
    if isinstance(item, int) and item.bit_length() > 10_000:
        return f"int:{item:x}"
    return item
