"""An account's state as a fold over its events, and the pure decisions that extend it.

Decisions take the current state and return new events, or raise a named error. They do no
I/O, so the property tests can run them millions of times against a plain model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from events import Event
from ledger.credentials import InvalidInput
from ledger.errors import (
    AdjustmentBelowZero,
    BalanceLimitExceeded,
    InsufficientCredits,
    InvalidAmount,
    SuspendedAccount,
    SuspensionConflict,
    UnknownHold,
)
from ledger.events import (
    AccountOpened,
    AccountResumed,
    AccountSuspended,
    CreditsAdjusted,
    CreditsDeposited,
    CreditsHeld,
    CreditsWithdrawn,
    HoldReleased,
    HoldSettled,
    TaskCompleted,
    TaskCompletedAtOnce,
    TaskFailed,
    TaskRejected,
    TaskSubmitted,
)

MIN_TOP_UP_CREDITS = 1
MAX_TOP_UP_CREDITS = 1_000_000
# Far below SQLite's 2**63 - 1, so no sum of balances can overflow a 64-bit integer.
MAX_BALANCE_CREDITS = 10**12


@dataclass(frozen=True, kw_only=True)
class Account:
    user_id: int
    username: str
    version: int = 0
    balance_credits: int = 0
    held_credits: int = 0
    open_holds: Mapping[int, int] = field(default_factory=lambda: MappingProxyType({}))
    suspended: bool = False

    @property
    def available_credits(self) -> int:
        return self.balance_credits - self.held_credits

    def check_invariants(self) -> None:
        assert 0 <= self.held_credits <= self.balance_credits <= MAX_BALANCE_CREDITS, self
        assert self.held_credits == sum(self.open_holds.values()), self


def evolve(account: Account | None, event: Event) -> Account:
    """One step of the fold. Events that do not move credits only advance the version."""
    if isinstance(event, AccountOpened):
        assert account is None, "an account is opened once"
        return Account(user_id=event.user_id, username=event.username, version=1)
    assert account is not None, f"{event.type_name} before AccountOpened"
    # One Account built at the end rather than a replace() a field (the fold runs in every
    # write: replace() looks up the dataclass's fields each time).
    balance, held = account.balance_credits, account.held_credits
    holds, suspended = account.open_holds, account.suspended
    if isinstance(event, CreditsDeposited | CreditsAdjusted):
        balance += event.amount_credits
    elif isinstance(event, CreditsWithdrawn):
        balance -= event.amount_credits
    elif isinstance(event, AccountSuspended | AccountResumed):
        suspended = isinstance(event, AccountSuspended)
    elif isinstance(event, TaskCompletedAtOnce):  # held and settled at once: the charge
        assert event.task_id not in holds, f"task {event.task_id} is held already"
        assert 0 < event.charged_credits <= event.quoted_credits <= balance - held, event
        balance -= event.charged_credits
    elif isinstance(event, CreditsHeld):
        held += event.amount_credits
        holds = MappingProxyType({**holds, event.task_id: event.amount_credits})
    elif isinstance(event, HoldSettled | HoldReleased):
        remaining = dict(holds)
        assert event.task_id in remaining, f"task {event.task_id} has no open hold to resolve"
        amount = remaining.pop(event.task_id)
        charged = event.amount_credits if isinstance(event, HoldSettled) else 0
        returned = event.released_credits if isinstance(event, HoldSettled) else amount
        assert charged + returned == amount, f"task {event.task_id}: a hold resolves whole"
        held, balance = held - amount, balance - charged
        holds = MappingProxyType(remaining)
    account = Account(user_id=account.user_id, username=account.username,
                      version=account.version + 1, balance_credits=balance,
                      held_credits=held, open_holds=holds, suspended=suspended)
    account.check_invariants()
    return account


def fold(events: Iterable[Event]) -> Account | None:
    account: Account | None = None
    for event in events:
        account = evolve(account, event)
    return account


def deposit(account: Account, amount_credits: int, description: str) -> list[Event]:
    if type(amount_credits) is not int or not (
            MIN_TOP_UP_CREDITS <= amount_credits <= MAX_TOP_UP_CREDITS):
        raise InvalidAmount(
            f"a top-up is a whole number of credits from {MIN_TOP_UP_CREDITS:,} "
            f"to {MAX_TOP_UP_CREDITS:,}")
    if account.balance_credits + amount_credits > MAX_BALANCE_CREDITS:
        raise BalanceLimitExceeded(
            f"a balance cannot exceed {MAX_BALANCE_CREDITS:,} credits")
    return [CreditsDeposited(user_id=account.user_id, amount_credits=amount_credits,
                             description=description)]


def withdraw(account: Account, amount_credits: int, description: str) -> list[Event]:
    if type(amount_credits) is not int or amount_credits < 1:
        raise InvalidAmount("a charge is a whole, positive number of credits")
    if account.available_credits < amount_credits:
        raise InsufficientCredits(account.available_credits, amount_credits)
    return [CreditsWithdrawn(user_id=account.user_id, amount_credits=amount_credits,
                             description=description)]


def submit_task(account: Account, submitted: TaskSubmitted, owner: str,
                key_id: str | None = None) -> list[Event]:
    """Accept a task and hold its cost, or raise when the available balance cannot cover it.

    Nothing runs on an available balance that is not positive, even a task that costs 0.
    """
    assert submitted.user_id == account.user_id
    assert submitted.cost_credits >= 0
    if account.suspended:  # a request authenticated a moment before the suspension
        raise SuspendedAccount(f"account {account.user_id} is suspended")
    available = account.available_credits
    if available <= 0 or available < submitted.cost_credits:
        raise InsufficientCredits(available, submitted.cost_credits)
    held = CreditsHeld(user_id=account.user_id, task_id=submitted.task_id,
                       amount_credits=submitted.cost_credits, owner=owner, key_id=key_id)
    return [submitted, held]


def reject_task(submitted: TaskSubmitted, reason: str) -> TaskRejected:
    return TaskRejected(
        user_id=submitted.user_id, task_id=submitted.task_id, model_id=submitted.model_id,
        input_data=submitted.input_data, input_indexes=submitted.input_indexes,
        invalid=submitted.invalid, cost_credits=submitted.cost_credits, reason=reason,
        model_version=submitted.model_version)


def settle(account: Account, task_id: int, description: str) -> HoldSettled:
    """Charge the whole hold, whatever it is (a task may cost 0)."""
    held = _hold(account, task_id)
    return HoldSettled(user_id=account.user_id, task_id=task_id, amount_credits=held,
                       description=description, released_credits=0)


def settle_part(
    account: Account, task_id: int, amount_credits: int, description: str
) -> HoldSettled:
    """Charge `amount_credits` of the hold and give the rest back: the hold was taken for
    every valid row, and the rows the model could not predict are not charged."""
    held = _hold(account, task_id)
    if type(amount_credits) is not int or not 0 < amount_credits <= held:
        raise InvalidAmount(f"a settle charges 1 to {held} credits of the hold, "
                            f"not {amount_credits!r}")
    return HoldSettled(user_id=account.user_id, task_id=task_id, amount_credits=amount_credits,
                       description=description, released_credits=held - amount_credits)


def _hold(account: Account, task_id: int) -> int:
    if task_id not in account.open_holds:
        raise UnknownHold(f"task {task_id} has no open hold")
    return account.open_holds[task_id]


def release(account: Account, task_id: int, reason: str) -> HoldReleased:
    return HoldReleased(user_id=account.user_id, task_id=task_id,
                        amount_credits=_hold(account, task_id), reason=reason)


# An adjustment corrects mistakes; a bigger move is a top-up or a question for the books.
MAX_ADJUSTMENT_CREDITS = MAX_TOP_UP_CREDITS
MAX_REASON_CHARS = 500


def adjust(account: Account, amount_credits: int, reason: str,
           operator_id: int) -> list[Event]:
    """An operator's credit (positive) or debit (negative). A debit never takes the
    available balance (what is not held) below zero: held credits belong to running tasks."""
    if type(amount_credits) is not int or amount_credits == 0 or (
            abs(amount_credits) > MAX_ADJUSTMENT_CREDITS):
        raise InvalidAmount(f"an adjustment is a whole number of credits, not 0, from "
                            f"-{MAX_ADJUSTMENT_CREDITS:,} to {MAX_ADJUSTMENT_CREDITS:,}")
    check_reason(reason)
    if amount_credits < 0 and account.available_credits < -amount_credits:
        raise AdjustmentBelowZero(account.available_credits, -amount_credits)
    if account.balance_credits + amount_credits > MAX_BALANCE_CREDITS:
        raise BalanceLimitExceeded(f"a balance cannot exceed {MAX_BALANCE_CREDITS:,} credits")
    return [CreditsAdjusted(user_id=account.user_id, amount_credits=amount_credits,
                            reason=reason.strip(), operator_id=operator_id)]


def check_reason(reason: str) -> None:
    """Printable text, 1 to MAX_REASON_CHARS characters, not only spaces."""
    if not isinstance(reason, str) or len(reason) > MAX_REASON_CHARS or not reason.strip() or (
            any(ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) < 0xE000 for c in reason)):
        raise InvalidInput("reason", f"a reason is required: 1 to {MAX_REASON_CHARS} "
                                     "characters")


def suspend(account: Account, reason: str, operator_id: int) -> list[Event]:
    """Suspend, releasing every open hold uncharged in the same append."""
    check_reason(reason)
    if account.suspended:
        raise SuspensionConflict(f"account {account.user_id} is already suspended")
    new: list[Event] = [AccountSuspended(user_id=account.user_id, reason=reason.strip(),
                                         operator_id=operator_id)]
    for task_id in sorted(account.open_holds):
        new += [release(account, task_id, "account suspended"),
                TaskFailed(user_id=account.user_id, task_id=task_id,
                           error="the account was suspended while the task ran")]
    return new


def resume(account: Account, reason: str, operator_id: int) -> list[Event]:
    check_reason(reason)
    if not account.suspended:
        raise SuspensionConflict(f"account {account.user_id} is not suspended")
    return [AccountResumed(user_id=account.user_id, reason=reason.strip(),
                           operator_id=operator_id)]
def complete_at_once(
    account: Account, submitted: TaskSubmitted, owner: str, key_id: str | None, *,
    charged_credits: int, description: str, completed: TaskCompleted,
) -> list[Event]:
    """The one-transaction path of a task whose model already ran: the four facts the
    two-phase path writes in two transactions (submitted, held, settled, completed), decided
    on the account as it stands now, as one event (TaskCompletedAtOnce). Raises
    InsufficientCredits exactly where submit_task does, so a task is charged only on
    success and only if covered."""
    opened = submit_task(account, submitted, owner, key_id)
    holding = fold_onto(account, opened)
    settled = settle_part(holding, submitted.task_id, charged_credits, description)
    _, held = opened
    assert isinstance(held, CreditsHeld)
    return [TaskCompletedAtOnce.of(submitted, held, settled, completed)]


def fail_at_once(account: Account, submitted: TaskSubmitted, owner: str, key_id: str | None,
                 error: str) -> list[Event]:
    """As complete_at_once for a model that failed: submitted, held, released, failed."""
    opened = submit_task(account, submitted, owner, key_id)
    released = release(fold_onto(account, opened), submitted.task_id, error)
    return [*opened, released,
            TaskFailed(user_id=account.user_id, task_id=submitted.task_id, error=error)]


def fold_onto(account: Account, events: Iterable[Event]) -> Account:
    for event in events:
        account = evolve(account, event)
    return account
