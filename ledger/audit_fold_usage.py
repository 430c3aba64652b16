"""The usage projection (ledger/usage.py) folded in memory, for the audit's fast path: the
rows of usage_slots, usage_days, usage_tasks and usage_zones that UsageProjector writes, as
tuples in their tables' column order. Fold (ledger/audit_fold.py) hands it every event it
folds; what the projector's SQL would refuse raises `Unexpected`, so the projectors decide.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ledger.audit_fold import Unexpected
from ledger.limits import SLOT_S, slot_of
from ledger.usage import NO_MODEL, day_number

Counts = list[int]  # predictions, items, credits


class UsageFold:
    def __init__(self) -> None:
        self.usage_slots: dict[tuple[int, int, int], Counts] = {}  # user, slot, model
        self.usage_days: dict[tuple[int, int, int], Counts] = {}  # user, day, model
        self.usage_tasks: dict[int, tuple[int, int, int, int]] = {}
        self.usage_zones: dict[int, tuple[int, str]] = {}

    def apply(self, type_name: str, user_id: int, event: dict[str, Any],
              at: datetime) -> None:
        """One event the ledger's other projections folded, as UsageProjector.apply."""
        if type_name == "AccountOpened":
            self.usage_zones[user_id] = (user_id, "UTC")
        elif type_name == "TimeZoneSet":
            if event["time_zone"] is None:
                raise Unexpected("a time zone the table refuses")
            if user_id in self.usage_zones:  # an UPDATE: no row, no change
                self.usage_zones[user_id] = (user_id, event["time_zone"])
            self._refold_days(user_id, event["time_zone"])
        elif type_name == "TaskSubmitted":
            if event["task_id"] in self.usage_tasks:
                raise Unexpected("a task of usage submitted twice")
            self.usage_tasks[event["task_id"]] = (event["task_id"], user_id, event["model_id"],
                                                  len(event["input_data"]))
        elif type_name == "HoldSettled":
            model_id, items = self._task(event["task_id"])
            self._add(user_id, at, model_id, (1, items, event["amount_credits"]))
        elif type_name == "TaskCompleted":
            if event["unpredictable"]:  # rows the model could not predict were not charged
                model_id, _ = self._task(event["task_id"])
                self._take_items(user_id, at, model_id, len(event["unpredictable"]))
            self.usage_tasks.pop(event["task_id"], None)
        elif type_name in ("TaskFailed", "HoldReleased"):
            self.usage_tasks.pop(event["task_id"], None)
        elif type_name == "CreditsWithdrawn":
            self._add(user_id, at, NO_MODEL, (0, 0, event["amount_credits"]))

    def _task(self, task_id: int) -> tuple[int, int]:
        task = self.usage_tasks.get(task_id)
        if task is None:
            raise Unexpected("a task charged that usage never saw submitted")
        return task[2], task[3]

    def _zone(self, user_id: int) -> str:
        zone = self.usage_zones.get(user_id)
        return "UTC" if zone is None else zone[1]

    def _rows_of(self, user_id: int, at: datetime, model_id: int) -> tuple[
            tuple[dict[tuple[int, int, int], Counts], tuple[int, int, int]], ...]:
        """The slot's and the day's (table, key) a charge at `at` counts in."""
        day = day_number(at, self._zone(user_id))
        return ((self.usage_slots, (user_id, slot_of(at), model_id)),
                (self.usage_days, (user_id, day, model_id)))

    def _add(self, user_id: int, at: datetime, model_id: int,
             counts: tuple[int, int, int]) -> None:
        for table, key in self._rows_of(user_id, at, model_id):
            total = table.setdefault(key, [0, 0, 0])
            for i, count in enumerate(counts):
                total[i] += count
            if min(total) < 0:
                raise Unexpected("usage counts the table refuses")

    def _take_items(self, user_id: int, at: datetime, model_id: int, items: int) -> None:
        for table, key in self._rows_of(user_id, at, model_id):
            if (total := table.get(key)) is not None:  # an UPDATE: no row, no change
                total[1] -= items
                if total[1] < 0:
                    raise Unexpected("usage items the table refuses")

    def _refold_days(self, user_id: int, time_zone: str) -> None:
        """The account's day rows again from its slots, in the new zone."""
        days: dict[tuple[int, int, int], Counts] = {}
        for (slot_user, slot, model_id), counts in self.usage_slots.items():
            if slot_user != user_id:
                continue
            start = datetime.fromtimestamp(slot * SLOT_S, UTC)
            total = days.setdefault((user_id, day_number(start, time_zone), model_id), [0, 0, 0])
            for i, count in enumerate(counts):
                total[i] += count
        self.usage_days = {key: counts for key, counts in self.usage_days.items()
                           if key[0] != user_id} | days

    def rows(self, table: str) -> list[tuple[Any, ...]]:
        if table in ("usage_slots", "usage_days"):
            return [(*key, *counts) for key, counts in getattr(self, table).items()]
        return list(getattr(self, table).values())
