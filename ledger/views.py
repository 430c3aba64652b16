"""What the ledger's use cases return: frozen, typed results instead of string-keyed dicts.

Money fields carry their unit (`*_credits`). Shaping these into HTTP JSON is the web edge's
job; the one dict format kept here is the outcome stored for idempotent replays.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from ledger.limits import PeriodSpend

# A task's inputs and outputs: numbers today, rows keyed by feature and classifier outputs
# (`{"label": ..., "probabilities": {...}}`) as soon as tabular models arrive.
JsonValue = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class Page(Generic[T]):
    """One page of a newest-first listing; `has_more` says whether an older page exists."""

    data: tuple[T, ...]
    has_more: bool


@dataclass(frozen=True, kw_only=True)
class BalanceView:
    balance_credits: int
    held_credits: int  # reserved for predictions still running

    @property
    def available_credits(self) -> int:
        return self.balance_credits - self.held_credits


@dataclass(frozen=True, kw_only=True)
class TransactionView:
    """One credit movement: a top-up (positive) or a charge (negative)."""

    id: int
    kind: str
    amount_credits: int
    balance_after_credits: int
    description: str
    task_id: int | None
    created_at: str


@dataclass(frozen=True, kw_only=True)
class TopUpOutcome:
    """A deposit's (or a direct charge's) transaction and the balance right after it."""

    transaction: TransactionView
    balance: BalanceView


@dataclass(frozen=True, kw_only=True)
class TaskOutcome:
    """How a task ended for the ledger: what it cost (or was quoted) and the balance after."""

    task_id: int
    cost_credits: int
    balance: BalanceView
    refusal: PeriodSpend | None = None  # the spend limit a rejected task would have passed


@dataclass(frozen=True, kw_only=True)
class LimitsView:
    """The account's spend limits, each in its current period, and the zone of the periods."""

    time_zone: str
    daily: PeriodSpend
    monthly: PeriodSpend


@dataclass(frozen=True, kw_only=True)
class RegisteredUser:
    id: int
    username: str
    balance_credits: int
    created_at: str


@dataclass(frozen=True, kw_only=True)
class IssuedToken:
    user_id: int
    access_token: str
    token_type: str
    expires_at: str


@dataclass(frozen=True, kw_only=True)
class Profile:
    """The account as its owner sees it: who, since when, and the balance."""

    id: int
    username: str
    created_at: str
    balance: BalanceView
    time_zone: str = "UTC"


@dataclass(frozen=True, kw_only=True)
class TaskView:
    """One prediction request as the tasks projection holds it."""

    id: int
    model_id: int
    status: str  # pending, completed, failed or rejected
    input_data: list[JsonValue]
    input_indexes: list[int]  # where each valid input stood in the request
    output_data: list[JsonValue] | None
    invalid: list[dict[str, JsonValue]]
    cost_credits: int  # charged: 0 unless completed
    quoted_credits: int  # the price asked when it was submitted
    error: str | None
    created_at: str
    updated_at: str
    model_version: str | None = None  # which artifact predicted it; None before versions


# -- the stored outcomes of idempotent operations ---------------------------------------------
# Rows written by every earlier version use these exact keys: change them only with a reader
# for the old form.

def stored_balance(balance: BalanceView) -> dict[str, int]:
    return {"balance": balance.balance_credits, "held": balance.held_credits,
            "available": balance.available_credits}


def balance_from_stored(stored: dict[str, Any]) -> BalanceView:
    return BalanceView(balance_credits=int(stored["balance"]), held_credits=int(stored["held"]))


def stored_top_up(outcome: TopUpOutcome) -> dict[str, Any]:
    t = outcome.transaction
    return {"transaction": {"id": t.id, "kind": t.kind, "amount": t.amount_credits,
                            "balance_after": t.balance_after_credits,
                            "description": t.description, "task_id": t.task_id,
                            "created_at": t.created_at},
            "balance": stored_balance(outcome.balance)}


def top_up_from_stored(stored: dict[str, Any]) -> TopUpOutcome:
    t = stored["transaction"]
    return TopUpOutcome(
        transaction=TransactionView(
            id=t["id"], kind=t["kind"], amount_credits=t["amount"],
            balance_after_credits=t["balance_after"], description=t["description"],
            task_id=t["task_id"], created_at=t["created_at"]),
        balance=balance_from_stored(stored["balance"]))


def stored_task_outcome(outcome: TaskOutcome) -> dict[str, Any]:
    stored = {"task_id": outcome.task_id, "cost": outcome.cost_credits,
              "balance": stored_balance(outcome.balance)}
    if (r := outcome.refusal) is not None:  # absent from rows written before limits
        stored["refusal"] = {"limit": r.limit, "limit_credits": r.limit_credits,
                             "spent": r.spent_credits, "resets_at": r.resets_at.isoformat()}
    return stored


def task_outcome_from_stored(stored: dict[str, Any]) -> TaskOutcome:
    r = stored.get("refusal")
    refusal = None if r is None else PeriodSpend(
        limit=r["limit"], limit_credits=r["limit_credits"], spent_credits=int(r["spent"]),
        resets_at=datetime.fromisoformat(r["resets_at"]))
    return TaskOutcome(task_id=int(stored["task_id"]), cost_credits=int(stored["cost"]),
                       balance=balance_from_stored(stored["balance"]), refusal=refusal)
