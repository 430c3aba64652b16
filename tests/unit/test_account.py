"""The account fold and its pure decisions: deposit, withdraw, hold, settle, release."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events import Event
from ledger import account as decide
from ledger.account import MAX_BALANCE_CREDITS, MAX_TOP_UP_CREDITS, Account, evolve, fold
from ledger.errors import (
    BalanceLimitExceeded,
    InsufficientCredits,
    InvalidAmount,
    LedgerError,
    UnknownHold,
)
from ledger.events import (
    AccountOpened,
    CreditsDeposited,
    CreditsHeld,
    HoldReleased,
    HoldSettled,
    TaskCompleted,
    TaskFailed,
    TaskRejected,
    TaskSubmitted,
)


def opened(balance_credits: int = 0) -> Account:
    """A freshly opened account, with a balance as if its deposits had been folded in."""
    account = evolve(None, AccountOpened(user_id=7, username="alice"))
    return replace(account, balance_credits=balance_credits)


def apply(account: Account, events: list[Event]) -> Account:
    for event in events:
        account = evolve(account, event)
    return account


def submitted(task_id: int, cost_credits: int) -> TaskSubmitted:
    return TaskSubmitted(user_id=7, task_id=task_id, model_id=1, input_data=[1.0],
                         input_indexes=[0], invalid=[], cost_credits=cost_credits,
                         model_version="0123456789ab")


# -- deposit ---------------------------------------------------------------------------------

@pytest.mark.parametrize("amount", [1, 2, 999_999, MAX_TOP_UP_CREDITS])
def test_deposit_accepts_whole_credits_within_bounds(amount: int) -> None:
    account = apply(opened(), decide.deposit(opened(), amount, "Top-up"))
    assert account.balance_credits == amount
    assert account.available_credits == amount


@pytest.mark.parametrize("amount", [0, -1, MAX_TOP_UP_CREDITS + 1, True, False, 1.5, 1.0, "5",
                                    None])
def test_deposit_refuses_anything_but_a_whole_number_in_bounds(amount: object) -> None:
    with pytest.raises(InvalidAmount):
        decide.deposit(opened(), amount, "Top-up")  # type: ignore[arg-type]


def test_deposit_records_the_exact_int_it_was_given() -> None:
    [event] = decide.deposit(opened(), 5, "Top-up")
    assert isinstance(event, CreditsDeposited)
    assert type(event.amount_credits) is int
    assert (event.user_id, event.amount_credits, event.description) == (7, 5, "Top-up")


def test_a_balance_may_reach_the_ceiling_but_not_pass_it() -> None:
    near = opened(MAX_BALANCE_CREDITS - 10)
    at_ceiling = apply(near, decide.deposit(near, 10, "Top-up"))
    assert at_ceiling.balance_credits == MAX_BALANCE_CREDITS == 10**12
    with pytest.raises(BalanceLimitExceeded):
        decide.deposit(near, 11, "Top-up")
    with pytest.raises(BalanceLimitExceeded):
        decide.deposit(at_ceiling, 1, "Top-up")


# -- withdraw --------------------------------------------------------------------------------

def test_withdraw_takes_only_what_is_available() -> None:
    account = opened(10)
    account = apply(account, decide.submit_task(account, submitted(1, 4), "me"))
    assert account.available_credits == 6
    with pytest.raises(InsufficientCredits) as raised:
        decide.withdraw(account, 7, "Charge")
    assert (raised.value.available_credits, raised.value.cost_credits) == (6, 7)
    account = apply(account, decide.withdraw(account, 6, "Charge"))
    assert (account.balance_credits, account.held_credits, account.available_credits) == (4, 4, 0)


@pytest.mark.parametrize("amount", [0, -3, True, 2.0])
def test_withdraw_refuses_amounts_that_are_not_positive_whole_credits(amount: object) -> None:
    with pytest.raises(InvalidAmount):
        decide.withdraw(opened(10), amount, "Charge")  # type: ignore[arg-type]


# -- tasks: hold, settle, release --------------------------------------------------------------

def test_submit_task_holds_the_cost_without_charging_it() -> None:
    account = opened(10)
    new = decide.submit_task(account, submitted(1, 3), "worker-a")
    assert new[0] == submitted(1, 3)
    assert new[1] == CreditsHeld(user_id=7, task_id=1, amount_credits=3, owner="worker-a")
    account = apply(account, new)
    assert (account.balance_credits, account.held_credits, account.available_credits) == (10, 3, 7)
    assert dict(account.open_holds) == {1: 3}


@pytest.mark.parametrize(("balance", "held", "cost"), [
    (0, 0, 0),      # nothing runs on an empty balance, even for free
    (0, 0, 1),
    (5, 5, 0),      # everything is held already
    (5, 0, 6),      # the cost is more than is available
    (5, 2, 4),
])
def test_submit_task_refuses_when_the_available_balance_cannot_cover_it(
        balance: int, held: int, cost: int) -> None:
    account = Account(user_id=7, username="alice", version=3, balance_credits=balance,
                      held_credits=held, open_holds=MappingProxyType({99: held} if held else {}))
    with pytest.raises(InsufficientCredits) as raised:
        decide.submit_task(account, submitted(1, cost), "me")
    assert raised.value.available_credits == balance - held
    assert raised.value.cost_credits == cost


@pytest.mark.parametrize("cost", [0, 1, 5])
def test_submit_task_accepts_a_cost_up_to_the_available_balance(cost: int) -> None:
    account = opened(5)
    assert apply(account, decide.submit_task(account, submitted(1, cost), "me")).held_credits \
        == cost


def test_settle_charges_the_held_cost_exactly_once() -> None:
    account = opened(10)
    account = apply(account, decide.submit_task(account, submitted(1, 4), "me"))
    settled = decide.settle(account, 1, "Prediction #1")
    assert settled == HoldSettled(user_id=7, task_id=1, amount_credits=4,
                                  description="Prediction #1", released_credits=0)
    account = evolve(account, settled)
    assert (account.balance_credits, account.held_credits, dict(account.open_holds)) == (6, 0, {})
    with pytest.raises(UnknownHold):
        decide.settle(account, 1, "Prediction #1")
    with pytest.raises(UnknownHold):
        decide.release(account, 1, "too late")


def test_release_gives_the_held_cost_back_exactly_once() -> None:
    account = opened(10)
    account = apply(account, decide.submit_task(account, submitted(1, 4), "me"))
    released = decide.release(account, 1, "the model failed")
    assert released == HoldReleased(user_id=7, task_id=1, amount_credits=4,
                                    reason="the model failed")
    account = evolve(account, released)
    assert (account.balance_credits, account.held_credits, dict(account.open_holds)) == (10, 0, {})
    with pytest.raises(UnknownHold):
        decide.release(account, 1, "again")
    with pytest.raises(UnknownHold):
        decide.settle(account, 1, "after release")


def test_a_partial_settle_charges_the_predicted_rows_and_gives_the_rest_back() -> None:
    account = opened(10)
    account = apply(account, decide.submit_task(account, submitted(1, 6), "me"))
    settled = decide.settle_part(account, 1, 4, "Prediction #1: 2 of 3 rows")
    assert (settled.amount_credits, settled.released_credits) == (4, 2)
    account = evolve(account, settled)
    assert (account.balance_credits, account.held_credits, dict(account.open_holds)) == (6, 0, {})
    with pytest.raises(UnknownHold):
        decide.settle_part(account, 1, 1, "again")


@pytest.mark.parametrize("amount", [0, -1, 7, True, 1.5, "2"])
def test_a_partial_settle_charges_a_positive_part_of_the_hold_only(amount: Any) -> None:
    account = opened(10)
    account = apply(account, decide.submit_task(account, submitted(1, 6), "me"))
    with pytest.raises(InvalidAmount):
        decide.settle_part(account, 1, amount, "x")
    assert dict(account.open_holds) == {1: 6}


def test_fold_refuses_a_settle_whose_parts_do_not_make_the_hold() -> None:
    account = opened(10)
    account = apply(account, decide.submit_task(account, submitted(1, 6), "me"))
    with pytest.raises(AssertionError, match="resolves whole"):
        evolve(account, HoldSettled(user_id=7, task_id=1, amount_credits=4, description="x",
                                    released_credits=1))


def test_settle_and_release_refuse_a_task_that_never_held() -> None:
    with pytest.raises(UnknownHold):
        decide.settle(opened(10), 42, "Prediction")
    with pytest.raises(UnknownHold):
        decide.release(opened(10), 42, "nothing")


def test_a_rejected_task_keeps_its_request_and_moves_no_credits() -> None:
    rejected = decide.reject_task(submitted(3, 8), "insufficient_balance")
    assert isinstance(rejected, TaskRejected)
    assert (rejected.task_id, rejected.cost_credits, rejected.input_data, rejected.reason) == (
        3, 8, [1.0], "insufficient_balance")
    account = evolve(opened(5), rejected)
    assert (account.balance_credits, account.held_credits, account.version) == (5, 0, 2)


# -- the fold -----------------------------------------------------------------------------------

def test_fold_of_nothing_is_no_account() -> None:
    assert fold([]) is None


def test_fold_counts_versions_and_replays_every_movement() -> None:
    events: list[Event] = [
        AccountOpened(user_id=7, username="alice"),
        CreditsDeposited(user_id=7, amount_credits=20, description="Top-up"),
        submitted(1, 5), CreditsHeld(user_id=7, task_id=1, amount_credits=5, owner="a"),
        submitted(2, 6), CreditsHeld(user_id=7, task_id=2, amount_credits=6, owner="a"),
        HoldSettled(user_id=7, task_id=1, amount_credits=5, description="charged",
                    released_credits=0),
        HoldReleased(user_id=7, task_id=2, amount_credits=6, reason="failed"),
    ]
    account = fold(events)
    assert account is not None
    assert account.version == len(events)
    assert (account.balance_credits, account.held_credits, dict(account.open_holds)) == (15, 0, {})


def test_fold_refuses_a_history_that_breaks_an_invariant() -> None:
    with pytest.raises(AssertionError, match="no open hold"):  # a settle without a hold
        fold([AccountOpened(user_id=7, username="alice"),
              HoldSettled(user_id=7, task_id=1, amount_credits=1, description="x",
                          released_credits=0)])
    with pytest.raises(AssertionError):  # a hold larger than the balance
        fold([AccountOpened(user_id=7, username="alice"),
              CreditsHeld(user_id=7, task_id=1, amount_credits=1, owner="a")])
    with pytest.raises(AssertionError):  # an account is opened once
        fold([AccountOpened(user_id=7, username="alice"),
              AccountOpened(user_id=7, username="alice")])
    with pytest.raises(AssertionError):  # nothing happens before the account is opened
        fold([CreditsDeposited(user_id=7, amount_credits=1, description="Top-up")])


# -- property: any sequence of decisions keeps the books -------------------------------------

amounts = st.one_of(st.integers(-2, MAX_TOP_UP_CREDITS + 2), st.booleans(),
                    st.floats(allow_nan=True))
steps = st.lists(st.one_of(
    st.tuples(st.just("deposit"), amounts),
    st.tuples(st.just("withdraw"), amounts),
    st.tuples(st.just("submit"), st.integers(0, 2 * MAX_TOP_UP_CREDITS)),
    st.tuples(st.just("settle"), st.integers(1, 12)),
    st.tuples(st.just("settle_part"), st.tuples(st.integers(1, 12),
                                                st.integers(-1, 2 * MAX_TOP_UP_CREDITS))),
    st.tuples(st.just("release"), st.integers(1, 12)),
), max_size=60)


def decide_step(account: Account, kind: str, value: Any, task_id: int) -> list[Event]:
    if kind == "deposit":
        return decide.deposit(account, value, "Top-up")
    if kind == "withdraw":
        return decide.withdraw(account, value, "Charge")
    if kind == "submit":
        return decide.submit_task(account, submitted(task_id, value), "me")
    if kind == "settle":
        return [decide.settle(account, value, "charged")]
    if kind == "settle_part":
        return [decide.settle_part(account, value[0], value[1], "charged in part")]
    return [decide.release(account, value, "failed")]


@given(steps)
def test_decisions_never_overdraw_and_holds_always_add_up(ops: list[tuple[str, Any]]) -> None:
    account = opened()
    balance, holds = 0, dict[int, int]()  # a plain model of what the account must hold
    for task_id, (kind, value) in enumerate(ops, start=1):
        try:
            account = apply(account, decide_step(account, kind, value, task_id))
        except LedgerError:
            continue
        if kind == "deposit":
            balance += value
        elif kind == "withdraw":
            balance -= value
        elif kind == "submit":
            holds[task_id] = value
        elif kind == "settle":
            balance -= holds.pop(value)
        elif kind == "settle_part":  # only the part is charged; the rest is free again
            held = holds.pop(value[0])
            assert 0 < value[1] <= held
            balance -= value[1]
        else:
            holds.pop(value)
        assert account.balance_credits == balance >= 0
        assert account.available_credits >= 0
        assert account.held_credits == sum(holds.values()) == sum(account.open_holds.values())
        assert dict(account.open_holds) == holds


def test_a_task_that_costs_nothing_settles_whole_for_nothing() -> None:
    account = opened(10)
    account = apply(account, decide.submit_task(account, submitted(1, 0), "me"))
    settled = decide.settle(account, 1, "free")
    assert (settled.amount_credits, settled.released_credits) == (0, 0)
    account = apply(account, [settled])
    assert (account.balance_credits, account.held_credits, dict(account.open_holds)) == (10, 0, {})


# -- the one-write path: the same decisions as hold-then-settle, in one step ------------------

def completed(task_id: int, cost_credits: int) -> TaskCompleted:
    return TaskCompleted(user_id=7, task_id=task_id, output_data=[2.0],
                         cost_credits=cost_credits, unpredictable=[])


def two_phase(account: Account, task: TaskSubmitted, charged: int | None) -> list[Event]:
    """The same task the two-phase way: hold, then settle `charged` (None: the model failed)."""
    opened_ = decide.submit_task(account, task, "me")
    holding = apply(account, opened_)
    if charged is None:
        return [*opened_, decide.release(holding, task.task_id, "failed"),
                TaskFailed(user_id=7, task_id=task.task_id, error="failed")]
    return [*opened_, decide.settle_part(holding, task.task_id, charged, "charged"),
            completed(task.task_id, charged)]


one_write_steps = st.lists(st.one_of(
    st.tuples(st.just("deposit"), st.integers(1, 50)),
    st.tuples(st.just("hold"), st.integers(1, 30)),  # a slow model's hold, left open
    st.tuples(st.just("release"), st.integers(1, 40)),
    # a quote, what the model's rows cost (≤ the quote), or None when the model failed
    st.tuples(st.just("at_once"), st.tuples(st.integers(0, 40), st.integers(1, 40)
                                            | st.none())),
), max_size=60)


@given(one_write_steps)
def test_one_write_charges_only_what_is_covered_and_matches_hold_then_settle(
        ops: list[tuple[str, Any]]) -> None:
    account = opened()
    balance, holds = 0, dict[int, int]()  # the plain model
    for task_id, (kind, value) in enumerate(ops, start=1):
        if kind == "at_once":
            quote, charged = value
            charged = None if charged is None else min(charged, quote)
            task = submitted(task_id, quote)
            covered = 0 < account.available_credits >= quote
            try:
                if charged is None:
                    new = decide.fail_at_once(account, task, "me", None, "failed")
                else:
                    new = decide.complete_at_once(account, task, "me", None,
                                                  charged_credits=charged,
                                                  description="charged",
                                                  completed=completed(task_id, charged))
            except (InsufficientCredits, InvalidAmount) as error:
                # refused exactly where hold-then-settle refuses (a zero charge is a failure)
                assert not covered or isinstance(error, InvalidAmount), (account, value)
                with pytest.raises(type(error)):
                    two_phase(account, task, charged)
                continue
            assert covered, (account, value)
            # A success is one event (TaskCompletedAtOnce) standing for the same four facts.
            assert len(new) == (4 if charged is None else 1)
            facts = [part for event in new for part in event.parts()]
            assert facts == two_phase(account, task, charged)
            stepped = apply(account, new)  # folds as its facts do, one version for the one row
            assert stepped == replace(apply(account, facts), version=account.version + len(new))
            account = stepped
            balance -= charged or 0
        else:
            try:
                account = apply(account, decide_step(
                    account, {"hold": "submit"}.get(kind, kind), value, task_id))
            except LedgerError:
                continue
            if kind == "deposit":
                balance += value
            elif kind == "hold":
                holds[task_id] = value
            else:
                holds.pop(value)
        assert account.balance_credits == balance >= 0
        assert account.held_credits == sum(holds.values())
        assert dict(account.open_holds) == holds  # the one-write path leaves no hold open
