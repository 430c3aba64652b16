"""Ledger-wide totals read from the projections: the starting point of the operator's
counters (credits topped up and charged, predictions by model and outcome, items predicted),
and the open holds at this moment."""

from __future__ import annotations

from dataclasses import dataclass, field

from events import SqlDatabase

# Items predicted = rows charged, summed from the usage projection's day rows (a few per
# account and day) rather than from every task's output: start-up stays flat in the log.
_ITEMS = "SELECT COALESCE(SUM(items), 0) AS n FROM usage_days"


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
    """One pass over transactions and tasks: run once at start-up, not per scrape."""
    moved = {row["kind"]: int(row["total"]) for row in await db.fetchall(
        "SELECT kind, COALESCE(SUM(amount_credits), 0) AS total FROM transactions "
        "GROUP BY kind")}
    tasks = await db.fetchall(
        "SELECT model_id, status, COUNT(*) AS n FROM tasks WHERE status <> 'pending' "
        "GROUP BY model_id, status")
    items = await db.fetchone(_ITEMS)
    adjusted = await db.fetchall(
        "SELECT CASE WHEN amount_credits < 0 THEN 'debit' ELSE 'credit' END AS direction, "
        "COUNT(*) AS n, COALESCE(SUM(ABS(amount_credits)), 0) AS credits FROM transactions "
        "WHERE kind = 'adjustment' GROUP BY 1")
    return LedgerTotals(
        topped_up_credits=moved.get("top_up", 0), charged_credits=-moved.get("charge", 0),
        items_predicted=int(items["n"]) if items else 0,
        predictions={(int(r["model_id"]), str(r["status"])): int(r["n"]) for r in tasks},
        adjustments={str(r["direction"]): (int(r["n"]), int(r["credits"])) for r in adjusted})


async def open_holds(db: SqlDatabase) -> OpenHolds:
    row = await db.fetchone(
        "SELECT COUNT(*) AS n, COALESCE(SUM(amount_credits), 0) AS credits FROM holds "
        "WHERE status = 'open'")
    assert row is not None
    return OpenHolds(holds=int(row["n"]), held_credits=int(row["credits"]))


async def pending_task_models(db: SqlDatabase) -> dict[int, int]:
    """task id -> model id of every task still running (or interrupted)."""
    rows = await db.fetchall("SELECT id, model_id FROM tasks WHERE status = 'pending'")
    return {int(row["id"]): int(row["model_id"]) for row in rows}
