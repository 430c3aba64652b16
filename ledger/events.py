"""The ledger's facts. Every one of them lives in its user's `account-{user_id}` stream.

Amounts are integer credits. Renaming a class never changes its stored type name.
"""

from __future__ import annotations

from dataclasses import dataclass

from events import Event, EventCodec


@dataclass(frozen=True, kw_only=True)
class AccountOpened(Event, type_name="AccountOpened"):
    user_id: int
    username: str


@dataclass(frozen=True, kw_only=True)
class CreditsDeposited(Event, type_name="CreditsDeposited"):
    """A top-up: credits moved from the system's top-up account to the user."""

    user_id: int
    amount_credits: int
    description: str


@dataclass(frozen=True, kw_only=True)
class CreditsWithdrawn(Event, type_name="CreditsWithdrawn"):
    """A direct charge outside any task (the seed's User.subtract_balance)."""

    user_id: int
    amount_credits: int
    description: str


@dataclass(frozen=True, kw_only=True)
class TaskSubmitted(Event, type_name="TaskSubmitted"):
    """A prediction was accepted; its cost is held in the same append (CreditsHeld)."""

    user_id: int
    task_id: int
    model_id: int
    input_data: list[float]
    input_indexes: list[int]
    invalid: list[dict[str, object]]
    cost_credits: int


@dataclass(frozen=True, kw_only=True)
class CreditsHeld(Event, type_name="CreditsHeld"):
    """Credits reserved for a running task; `owner` is the process that runs it."""

    user_id: int
    task_id: int
    amount_credits: int
    owner: str


@dataclass(frozen=True, kw_only=True)
class HoldSettled(Event, type_name="HoldSettled"):
    """The held credits were charged: they moved from the user to ML revenue."""

    user_id: int
    task_id: int
    amount_credits: int
    description: str


@dataclass(frozen=True, kw_only=True)
class HoldReleased(Event, type_name="HoldReleased"):
    """The held credits were given back to the available balance, uncharged."""

    user_id: int
    task_id: int
    amount_credits: int
    reason: str


@dataclass(frozen=True, kw_only=True)
class TaskCompleted(Event, type_name="TaskCompleted"):
    user_id: int
    task_id: int
    output_data: list[float]
    cost_credits: int


@dataclass(frozen=True, kw_only=True)
class TaskFailed(Event, type_name="TaskFailed"):
    user_id: int
    task_id: int
    error: str


@dataclass(frozen=True, kw_only=True)
class TaskRejected(Event, type_name="TaskRejected"):
    """A prediction that was not run (the balance did not cover it); nothing was charged."""

    user_id: int
    task_id: int
    model_id: int
    input_data: list[float]
    input_indexes: list[int]
    invalid: list[dict[str, object]]
    cost_credits: int
    reason: str


ALL_EVENTS: tuple[type[Event], ...] = (
    AccountOpened, CreditsDeposited, CreditsWithdrawn, TaskSubmitted, CreditsHeld,
    HoldSettled, HoldReleased, TaskCompleted, TaskFailed, TaskRejected,
)


def ledger_codec() -> EventCodec:
    codec = EventCodec()
    codec.register(*ALL_EVENTS)
    return codec
