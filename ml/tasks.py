"""The seed's MLTask: one prediction request as the tasks projection shows it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ledger import JsonValue, LedgerService, TaskView

if TYPE_CHECKING:
    from ml.service import MLService


@dataclass(frozen=True, kw_only=True)
class MLTask:
    id: int
    user_id: int
    model_id: int
    input_data: list[JsonValue]
    output_data: list[JsonValue] | None
    status: str
    created_at: str
    cost: int
    invalid: list[dict[str, JsonValue]]
    error: str | None
    model_version: str | None = None  # the version of the model that predicted it

    @classmethod
    def from_view(cls, user_id: int, view: TaskView) -> MLTask:
        return cls(id=view.id, user_id=user_id, model_id=view.model_id,
                   input_data=view.input_data, output_data=view.output_data,
                   status=view.status, created_at=view.created_at, cost=view.cost_credits,
                   invalid=view.invalid, error=view.error, model_version=view.model_version)

    @classmethod
    async def create(
        cls, service: MLService, user_id: int, model_id: int, input_data: str,
    ) -> MLTask:
        """Tasks come into being only by running one: this is MLService.process_task."""
        result = await service.process_task(user_id, model_id, input_data)
        return cls.from_view(user_id, result.task)

    @classmethod
    async def get_user_tasks(cls, ledger: LedgerService, user_id: int) -> list[MLTask]:
        """Newest first. Reads go through the ledger: no caller holds a connection."""
        views = await ledger.all_tasks(user_id)
        return [cls.from_view(user_id, view) for view in views]
