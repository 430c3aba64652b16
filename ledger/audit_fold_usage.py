"""The usage projection (ledger/usage.py) folded in memory, for the audit's fast path: the
rows of usage_slots, usage_days, usage_tasks and usage_zones that UsageProjector writes, as
tuples in their tables' column order. Fold (ledger/audit_fold.py) hands it every event it
folds; what the projector's SQL would refuse raises `Unexpected`, so the projectors decide.
"""

from __future__ import annotations

from collections.abc import Callable
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
        self.handlers: dict[str, Callable[[int, dict[str, Any], datetime], None]] = {
            "AccountOpened": self._opened, "TimeZoneSet": self._time_zone,
            "TaskSubmitted": self._submitted, "HoldSettled": self._settled,
            "TaskCompleted": self._completed, "TaskFailed": self._ended,
            "HoldReleased": self._ended, "CreditsWithdrawn": self._withdrawn}

    def apply(self, type_name: str, user_id: int, event: dict[str, Any],
              at: datetime) -> None:
        """One event the ledger's other projections folded, as UsageProjector.apply."""
        if (handler := self.handlers.get(type_name)) is not None:
            handler(user_id, event, at)

    def _opened(self, user_id: int, event: dict[str, Any], at: datetime) -> None:
        self.usage_zones[user_id] = (user_id, "UTC")

    def _time_zone(self, user_id: int, event: dict[str, Any], at: datetime) -> None:
        if event["time_zone"] is None:
            raise Unexpected("a time zone the table refuses")
        if user_id in self.usage_zones:  # an UPDATE: no row, no change
            self.usage_zones[user_id] = (user_id, event["time_zone"])
        self._refold_days(user_id, event["time_zone"])

    def _submitted(self, user_id: int, event: dict[str, Any], at: datetime) -> None:
        if event["task_id"] in self.usage_tasks:
            raise Unexpected("a task of usage submitted twice")
        self.usage_tasks[event["task_id"]] = (event["task_id"], user_id, event["model_id"],
                                              len(event["input_data"]))

    def _settled(self, user_id: int, event: dict[str, Any], at: datetime) -> None:
        model_id, items = self._task(event["task_id"])
        self._add(user_id, at, model_id, 1, items, event["amount_credits"])

    def _completed(self, user_id: int, event: dict[str, Any], at: datetime) -> None:
        if event["unpredictable"]:  # rows the model could not predict were not charged
            model_id, _ = self._task(event["task_id"])
            self._take_items(user_id, at, model_id, len(event["unpredictable"]))
        self.usage_tasks.pop(event["task_id"], None)

    def _ended(self, user_id: int, event: dict[str, Any], at: datetime) -> None:
        self.usage_tasks.pop(event["task_id"], None)

    def _withdrawn(self, user_id: int, event: dict[str, Any], at: datetime) -> None:
        self._add(user_id, at, NO_MODEL, 0, 0, event["amount_credits"])

    def _task(self, task_id: int) -> tuple[int, int]:
        task = self.usage_tasks.get(task_id)
        if task is None:
            raise Unexpected("a task charged that usage never saw submitted")
        return task[2], task[3]

    def _keys(self, user_id: int, at: datetime, model_id: int) -> tuple[
            tuple[int, int, int], tuple[int, int, int]]:
        """The keys of the slot's row and of the day's row a charge at `at` counts in."""
        zone = self.usage_zones.get(user_id)
        if (zone is None or zone[1] == "UTC") and at.tzinfo is UTC:
            day = at.toordinal()  # day_number(at, "UTC"), without the zone's conversion
        else:
            day = day_number(at, "UTC" if zone is None else zone[1])
        return (user_id, slot_of(at), model_id), (user_id, day, model_id)

    def _add(self, user_id: int, at: datetime, model_id: int, predictions: int, items: int,
             credits: int) -> None:
        slot_key, day_key = self._keys(user_id, at, model_id)
        for table, key in ((self.usage_slots, slot_key), (self.usage_days, day_key)):
            total = table.get(key)
            if total is None:
                total = table[key] = [predictions, items, credits]
            else:
                total[0] += predictions
                total[1] += items
                total[2] += credits
            if total[0] < 0 or total[1] < 0 or total[2] < 0:
                raise Unexpected("usage counts the table refuses")

    def _take_items(self, user_id: int, at: datetime, model_id: int, items: int) -> None:
        slot_key, day_key = self._keys(user_id, at, model_id)
        for table, key in ((self.usage_slots, slot_key), (self.usage_days, day_key)):
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
