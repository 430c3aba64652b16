"""The seed's MLTask: one prediction request as the tasks projection shows it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from events import SqlDatabase
from ledger import queries


@dataclass(frozen=True, kw_only=True)
class MLTask:
    id: int
    user_id: int
    model_id: int
    input_data: list[float]
    output_data: list[float] | None
    status: str
    created_at: str
    cost: int
    invalid: list[dict[str, object]]
    error: str | None

    @classmethod
    def from_view(cls, user_id: int, view: dict[str, Any]) -> MLTask:
        return cls(id=view["id"], user_id=user_id, model_id=view["model_id"],
                   input_data=view["input_data"], output_data=view["output_data"],
                   status=view["status"], created_at=view["created_at"], cost=view["cost"],
                   invalid=view["invalid"], error=view["error"])

    @classmethod
    async def create(
        cls, service: Any, user_id: int, model_id: int, input_data: str,
    ) -> MLTask:
        """Tasks come into being only by running one: this is MLService.process_task."""
        result = await service.process_task(user_id, model_id, input_data)
        return cls.from_view(user_id, result["task"])

    @classmethod
    async def get_user_tasks(cls, db: SqlDatabase, user_id: int) -> list[MLTask]:
        views = await queries.everything(db, user_id, queries.list_tasks)
        return [cls.from_view(user_id, view) for view in views]
