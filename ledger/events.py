"""The ledger's facts. Every one of them lives in its user's `account-{user_id}` stream.

Amounts are integer credits. Renaming a class never changes its stored type name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from events import Event, EventCodec

# A task's inputs and outputs are JSON: numbers for the code models, rows (objects keyed by
# feature, or arrays) and classifier outputs ({"label": ..., "probabilities": {...}}) for the
# tabular ones. (ledger.views.JsonValue names the same thing for the readers.)
Json = Any


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
class TaskSubmitted(Event, type_name="TaskSubmitted", schema_version=2):
    """A prediction was accepted; its cost is held in the same append (CreditsHeld).

    v2: `model_version`, the version of the model that will run it (None in v1 events);
    `input_data` holds the valid rows as sent (numbers, objects or arrays)."""

    user_id: int
    task_id: int
    model_id: int
    input_data: list[Json]
    input_indexes: list[int]
    invalid: list[dict[str, object]]
    cost_credits: int
    model_version: str | None


@dataclass(frozen=True, kw_only=True)
class CreditsHeld(Event, type_name="CreditsHeld", schema_version=2):
    """Credits reserved for a running task; `owner` is the process that runs it.
    v2: `key_id`, the API key that spends them (None: a login, or v1 events)."""

    user_id: int
    task_id: int
    amount_credits: int
    owner: str
    key_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class HoldSettled(Event, type_name="HoldSettled", schema_version=2):
    """The hold is resolved with a charge: `amount_credits` moved from the user to ML revenue,
    and `released_credits` (rows the model could not predict) went back to the available
    balance uncharged. The two add up to the hold. v2: `released_credits` (0 in v1 events)."""

    user_id: int
    task_id: int
    amount_credits: int
    description: str
    released_credits: int


@dataclass(frozen=True, kw_only=True)
class HoldReleased(Event, type_name="HoldReleased"):
    """The held credits were given back to the available balance, uncharged."""

    user_id: int
    task_id: int
    amount_credits: int
    reason: str


@dataclass(frozen=True, kw_only=True)
class TaskCompleted(Event, type_name="TaskCompleted", schema_version=2):
    """The model ran. `output_data` has one entry per valid input, None where the model gave
    no usable answer; those rows are in `unpredictable` with their reasons, uncharged.
    v2: `unpredictable` ([] in v1 events)."""

    user_id: int
    task_id: int
    output_data: list[Json]
    cost_credits: int
    unpredictable: list[dict[str, object]]


@dataclass(frozen=True, kw_only=True)
class TaskCompletedAtOnce(Event, type_name="TaskCompletedAtOnce"):
    """A task submitted, held, run and settled in one write (the one-transaction path), as
    one row of the log: the four facts the two-phase path records (TaskSubmitted,
    CreditsHeld, HoldSettled, TaskCompleted) always happen together there, so one hash and
    one leaf stand for them. Projectors, the fold and the audit see those four, each at this
    event's position (`parts()`, `completed_at_once_parts`). `quoted_credits` was held (the
    cost of every valid row), `charged_credits` of it charged, the rest released uncharged.
    Logs written before it hold the four events; both read the same."""

    user_id: int
    task_id: int
    model_id: int
    input_data: list[Json]
    input_indexes: list[int]
    invalid: list[dict[str, object]]
    quoted_credits: int
    model_version: str | None
    owner: str
    key_id: str | None
    charged_credits: int
    description: str
    output_data: list[Json]
    unpredictable: list[dict[str, object]]

    @classmethod
    def of(cls, submitted: TaskSubmitted, held: CreditsHeld, settled: HoldSettled,
           completed: TaskCompleted) -> TaskCompletedAtOnce:
        """The four facts as one; they must be one task's, as complete_at_once decides it."""
        assert submitted.task_id == held.task_id == settled.task_id == completed.task_id
        assert submitted.user_id == held.user_id == settled.user_id == completed.user_id
        assert held.amount_credits == submitted.cost_credits
        assert settled.amount_credits == completed.cost_credits
        assert settled.amount_credits + settled.released_credits == held.amount_credits
        return cls(user_id=submitted.user_id, task_id=submitted.task_id,
                   model_id=submitted.model_id, input_data=submitted.input_data,
                   input_indexes=submitted.input_indexes, invalid=submitted.invalid,
                   quoted_credits=submitted.cost_credits,
                   model_version=submitted.model_version, owner=held.owner,
                   key_id=held.key_id, charged_credits=settled.amount_credits,
                   description=settled.description, output_data=completed.output_data,
                   unpredictable=completed.unpredictable)

    def parts(self) -> tuple[TaskSubmitted, CreditsHeld, HoldSettled, TaskCompleted]:
        made = self.__dict__.get("_parts")  # made once: the append's projectors, then its
        if made is None:  # caller, ask for them (not a field: not encoded, not compared)
            submitted, held, settled, completed = (
                data for _, data in completed_at_once_parts(self.__dict__))
            made = (TaskSubmitted(**submitted), CreditsHeld(**held), HoldSettled(**settled),
                    TaskCompleted(**completed))
            object.__setattr__(self, "_parts", made)
        return made


def completed_at_once_parts(data: Any) -> list[tuple[str, dict[str, Any]]]:
    """A TaskCompletedAtOnce's fields (a mapping of them) as its four facts: (type name,
    fields) each, the fields those classes are made with. The audit folds these directly.
    A part's class that gains a field makes this event gain it too, with a schema_version
    and an upcaster of its own: stored composites keep the fields they were written with
    (tests/unit/test_account.py builds the parts, so a field missing here fails there)."""
    user_id, task_id, quoted = data["user_id"], data["task_id"], data["quoted_credits"]
    charged = data["charged_credits"]
    return [
        (TaskSubmitted.type_name, {
            "user_id": user_id, "task_id": task_id, "model_id": data["model_id"],
            "input_data": data["input_data"], "input_indexes": data["input_indexes"],
            "invalid": data["invalid"], "cost_credits": quoted,
            "model_version": data["model_version"]}),
        (CreditsHeld.type_name, {
            "user_id": user_id, "task_id": task_id, "amount_credits": quoted,
            "owner": data["owner"], "key_id": data["key_id"]}),
        (HoldSettled.type_name, {
            "user_id": user_id, "task_id": task_id, "amount_credits": charged,
            "description": data["description"], "released_credits": quoted - charged}),
        (TaskCompleted.type_name, {
            "user_id": user_id, "task_id": task_id, "output_data": data["output_data"],
            "cost_credits": charged, "unpredictable": data["unpredictable"]}),
    ]


@dataclass(frozen=True, kw_only=True)
class TaskFailed(Event, type_name="TaskFailed"):
    user_id: int
    task_id: int
    error: str


@dataclass(frozen=True, kw_only=True)
class TaskRejected(Event, type_name="TaskRejected", schema_version=2):
    """A prediction that was not run (the balance did not cover it); nothing was charged.
    v2: `model_version` (None in v1 events)."""

    user_id: int
    task_id: int
    model_id: int
    input_data: list[Json]
    input_indexes: list[int]
    invalid: list[dict[str, object]]
    cost_credits: int
    reason: str
    model_version: str | None


@dataclass(frozen=True, kw_only=True)
class TimeZoneSet(Event, type_name="TimeZoneSet"):
    """The account's time zone (an IANA name): its days and months for spend limits."""

    user_id: int
    time_zone: str


@dataclass(frozen=True, kw_only=True)
class LimitsSet(Event, type_name="LimitsSet"):
    """The account's spend limits per calendar day and month, in credits; None is none."""

    user_id: int
    daily_credits: int | None
    monthly_credits: int | None


@dataclass(frozen=True, kw_only=True)
class KeyCreated(Event, type_name="KeyCreated"):
    """An API key was made. Never its secret: only what the owner and the auditor may see
    (the id, its name and scope, the masked form, its monthly limit and expiry)."""

    user_id: int
    key_id: str
    name: str
    scope: str
    prefix: str
    last4: str
    monthly_limit_credits: int | None
    expires_at: str | None


@dataclass(frozen=True, kw_only=True)
class KeyRevoked(Event, type_name="KeyRevoked"):
    user_id: int
    key_id: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class CreditsAdjusted(Event, type_name="CreditsAdjusted"):
    """An operator's correction: `amount_credits` credits (negative: a debit) moved between
    the system's adjustments account and the user, with the reason they gave."""

    user_id: int
    amount_credits: int
    reason: str
    operator_id: int


@dataclass(frozen=True, kw_only=True)
class AccountSuspended(Event, type_name="AccountSuspended"):
    """An operator stopped the account: its credentials are refused until it is resumed."""

    user_id: int
    reason: str
    operator_id: int


@dataclass(frozen=True, kw_only=True)
class AccountResumed(Event, type_name="AccountResumed"):
    user_id: int
    reason: str
    operator_id: int


@dataclass(frozen=True, kw_only=True)
class OperatorRoleGranted(Event, type_name="OperatorRoleGranted"):
    """The account may use the operator console. Granted only from the command line;
    `granted_by` names who ran it (the OS user)."""

    user_id: int
    granted_by: str


@dataclass(frozen=True, kw_only=True)
class OperatorRoleRevoked(Event, type_name="OperatorRoleRevoked"):
    user_id: int
    revoked_by: str


ALL_EVENTS: tuple[type[Event], ...] = (
    AccountOpened, CreditsDeposited, CreditsWithdrawn, TaskSubmitted, CreditsHeld,
    HoldSettled, HoldReleased, TaskCompleted, TaskFailed, TaskRejected, TaskCompletedAtOnce,
    TimeZoneSet, LimitsSet, KeyCreated, KeyRevoked,
    CreditsAdjusted, AccountSuspended, AccountResumed, OperatorRoleGranted, OperatorRoleRevoked,
)


def _with(**defaults: object) -> Any:
    """An upcaster that adds fields with the value they stand for in older events."""
    def upcast(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, **defaults}
    return upcast


# (type name, from schema version) -> upcaster to the next version. Old rows stay as they
# were written (they are hashed); they are read through these.
UPCASTERS = {
    ("TaskSubmitted", 1): _with(model_version=None),
    ("TaskRejected", 1): _with(model_version=None),
    ("TaskCompleted", 1): _with(unpredictable=[]),
    ("HoldSettled", 1): _with(released_credits=0),
    ("CreditsHeld", 1): _with(key_id=None),
}


def ledger_codec() -> EventCodec:
    codec = EventCodec()
    codec.register(*ALL_EVENTS)
    for (type_name, version), upcast in UPCASTERS.items():
        codec.register_upcaster(type_name, version, upcast)
    return codec
