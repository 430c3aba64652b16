"""The totals projection (ledger/totals.py) folded in memory, for the audit's fast path: the
rows of account_totals that TotalsProjector writes, as tuples in the table's column order.
Fold (ledger/audit_fold.py) hands it every event after its own tables took it, with the
tasks folded so far (a completed or failed task's model is its row's)."""

from __future__ import annotations

from typing import Any

from ledger.audit_fold import Unexpected
from ledger.totals import NO_MODEL, predicted_items

Counts = list[int]  # events, credits, items


class TotalsFold:
    def __init__(self) -> None:
        self.account_totals: dict[tuple[int, str, int], Counts] = {}  # user, kind, model

    def apply(self, type_name: str, user_id: int, event: dict[str, Any],
              tasks: dict[int, list[Any]]) -> None:
        """One event, as TotalsProjector.apply (tasks: the fold's rows of the tasks table)."""
        if type_name == "CreditsDeposited":
            self._add(user_id, "top_up", NO_MODEL, event["amount_credits"])
        elif type_name in ("HoldSettled", "CreditsWithdrawn"):
            self._add(user_id, "charge", NO_MODEL, event["amount_credits"])
        elif type_name == "CreditsAdjusted":
            amount = event["amount_credits"]
            self._add(user_id, "debit" if amount < 0 else "credit", NO_MODEL, abs(amount))
        elif type_name == "TaskRejected":
            self._add(user_id, "rejected", event["model_id"], 0)
        elif type_name in ("TaskCompleted", "TaskFailed"):
            task = tasks.get(event["task_id"])
            if task is None:  # as the projector: no task row, nothing counted
                return
            if type_name == "TaskCompleted":
                self._add(user_id, "completed", task[2], 0,
                          predicted_items(event["output_data"]))
            else:
                self._add(user_id, "failed", task[2], 0)

    def _add(self, user_id: int, kind: str, model_id: int, credits: int, items: int = 0
             ) -> None:
        total = self.account_totals.setdefault((user_id, kind, model_id), [0, 0, 0])
        total[0] += 1
        total[1] += credits
        total[2] += items
        if min(total) < 0:
            raise Unexpected("totals the table refuses")

    def rows(self) -> list[tuple[Any, ...]]:
        return [(*key, *counts) for key, counts in self.account_totals.items()]
