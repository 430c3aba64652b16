"""Ledger-wide totals: the starting point of the operator's counters (credits topped up and
charged, predictions by model and outcome, items predicted, adjustments), and the open holds
at this moment.

The counters are read at every start, so they come from a small projection, `account_totals`
(a few rows per account: one per kind of movement, and per model and outcome of its tasks),
written in the same transaction as the events it counts. Start-up reads O(accounts) rows,
not every transaction and task the log ever had.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from events import RecordedEvent, SqlDatabase
from events.projection import NO_FACTS
from events.sums import SumTable, add_sums
from ledger.events import (
    CreditsAdjusted,
    CreditsDeposited,
    CreditsWithdrawn,
    HoldSettled,
    TaskCompleted,
    TaskFailed,
    TaskRejected,
    TaskSubmitted,
)
from ledger.whole_task import whole_task

NO_MODEL = 0  # the model column of the rows that are not about tasks
TASK_KINDS = ("completed", "failed", "rejected")


class TotalsProjector:
    """Per account: kind (top_up, charge, credit, debit, completed, failed, rejected) and
    model -> events counted, their credits (positive: charges and debits as amounts taken),
    the items a model predicted (completed tasks: its outputs that are not None)."""

    name = "totals"
    version = 1
    tables: tuple[str, ...] = ("account_totals",)
    schema = """
    CREATE TABLE IF NOT EXISTS account_totals (
        user_id  INTEGER NOT NULL,
        kind     TEXT    NOT NULL CHECK (kind IN ('top_up', 'charge', 'credit', 'debit',
                                                  'completed', 'failed', 'rejected')),
        model_id INTEGER NOT NULL,
        events   INTEGER NOT NULL CHECK (events >= 0),
        credits  INTEGER NOT NULL CHECK (credits >= 0),
        items    INTEGER NOT NULL CHECK (items >= 0),
        PRIMARY KEY (user_id, kind, model_id)
    );
    """

    async def apply(self, db: SqlDatabase, recorded: RecordedEvent) -> None:
        event = recorded.event
        if isinstance(event, CreditsDeposited):
            await _add(db, event.user_id, "top_up", NO_MODEL, event.amount_credits)
        elif isinstance(event, HoldSettled | CreditsWithdrawn):
            await _add(db, event.user_id, "charge", NO_MODEL, event.amount_credits)
        elif isinstance(event, CreditsAdjusted):
            direction = "debit" if event.amount_credits < 0 else "credit"
            await _add(db, event.user_id, direction, NO_MODEL, abs(event.amount_credits))
        elif isinstance(event, TaskRejected):
            await _add(db, event.user_id, "rejected", event.model_id, 0)
        elif isinstance(event, TaskCompleted | TaskFailed):
            # The tasks projector (before this one) has the task's model.
            row = await db.fetchone("SELECT model_id FROM tasks WHERE id = ?", (event.task_id,))
            if row is None:  # as the tasks projector's UPDATE: no task, nothing counted
                return
            if isinstance(event, TaskCompleted):
                await _add(db, event.user_id, "completed", int(row["model_id"]), 0,
                           items=predicted_items(event.output_data))
            else:
                await _add(db, event.user_id, "failed", int(row["model_id"]), 0)

    async def apply_all(self, db: SqlDatabase, appended: Sequence[RecordedEvent],
                        facts: Mapping[str, Any] = NO_FACTS) -> None:
        """A whole task in one write: its model is in the append, no read needed."""
        if (task := whole_task(appended)) is None:
            for recorded in appended:
                await self.apply(db, recorded)
            return
        submitted, resolved, finished = task[0].event, task[2].event, task[3].event
        assert isinstance(submitted, TaskSubmitted)
        rows: list[tuple[int, str, int, int, int]] = []
        if isinstance(resolved, HoldSettled):
            rows.append((resolved.user_id, "charge", NO_MODEL, resolved.amount_credits, 0))
        if isinstance(finished, TaskCompleted):
            rows.append((finished.user_id, "completed", submitted.model_id, 0,
                         predicted_items(finished.output_data)))
        else:
            rows.append((submitted.user_id, "failed", submitted.model_id, 0, 0))
        await _add_rows(db, rows)


def predicted_items(output_data: Sequence[object]) -> int:
    """The rows a model predicted (and was paid for): its outputs that are not None."""
    return sum(output is not None for output in output_data)


async def _add(db: SqlDatabase, user_id: int, kind: str, model_id: int, credits: int,
               *, items: int = 0) -> None:
    await _add_rows(db, [(user_id, kind, model_id, credits, items)])


# A counter table (events/sums.py): in a write session its additions are held for the
# batch and written once at its end, summed by key.
TOTALS = SumTable("account_totals", ("user_id", "kind", "model_id"),
                  ("events", "credits", "items"))


async def _add_rows(db: SqlDatabase, rows: Sequence[tuple[int, str, int, int, int]]) -> None:
    """One event counted in each row (user, kind, model, credits, items)."""
    for user_id, kind, model_id, credits, items in rows:
        await add_sums(db, TOTALS, (user_id, kind, model_id), (1, credits, items))


@dataclass(frozen=True, kw_only=True)
class LedgerTotals:
    topped_up_credits: int = 0
    charged_credits: int = 0
    items_predicted: int = 0
    # (model_id, status) -> tasks, for the final statuses completed, failed and rejected
    predictions: dict[tuple[int, str], int] = field(default_factory=dict)
    # "credit" or "debit" -> (operator adjustments, their credits as a positive number)
    adjustments: dict[str, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class OpenHolds:
    holds: int
    held_credits: int


async def ledger_totals(db: SqlDatabase) -> LedgerTotals:
    """The account_totals rows summed: O(accounts), run once at start-up, not per scrape."""
    rows = await db.fetchall(
        "SELECT kind, model_id, SUM(events) AS events, SUM(credits) AS credits, "
        "SUM(items) AS items FROM account_totals GROUP BY kind, model_id")
    found = {(str(r["kind"]), int(r["model_id"])): (int(r["events"]), int(r["credits"]),
                                                     int(r["items"])) for r in rows}
    return LedgerTotals(
        topped_up_credits=found.get(("top_up", NO_MODEL), (0, 0, 0))[1],
        charged_credits=found.get(("charge", NO_MODEL), (0, 0, 0))[1],
        items_predicted=sum(items for (kind, _), (_, _, items) in found.items()
                            if kind == "completed"),
        predictions={(model_id, kind): events for (kind, model_id), (events, _, _)
                     in found.items() if kind in TASK_KINDS},
        adjustments={kind: (events, credits) for (kind, _), (events, credits, _)
                     in found.items() if kind in ("credit", "debit")})


async def open_holds(db: SqlDatabase) -> OpenHolds:
    row = await db.fetchone(
        "SELECT COUNT(*) AS n, COALESCE(SUM(amount_credits), 0) AS credits FROM holds "
        "WHERE status = 'open'")
    assert row is not None
    return OpenHolds(holds=int(row["n"]), held_credits=int(row["credits"]))


async def pending_task_models(db: SqlDatabase) -> dict[int, int]:
    """task id -> model id of every task still running (or interrupted): O(pending), by
    the tasks projection's partial index tasks_pending."""
    rows = await db.fetchall("SELECT id, model_id FROM tasks WHERE status = 'pending'")
    return {int(row["id"]): int(row["model_id"]) for row in rows}
