"""The wrk bench's balance check (bench/wrk_load.py check_totals) fails the runs it must.

Its throughput figures count only if every prediction wrk counted was charged, nothing
more was charged than the predictions still in flight when wrk stopped counting, and
nothing stayed held. wrk counts 200s for all users together, so the check is over their
sum (a double charge inside that window passes it; the Python generator's per-user check
is the exact one). The server is a fake here: the check's arithmetic is the subject."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from http_bench import COST_CREDITS, User
from wrk_load import Spent, check_totals

START_CREDITS = 10_000


class Ledger:
    """A contender whose balance reply is whatever each user's account says."""

    name = "ours"
    base = "http://127.0.0.1:9"  # never dialled: balance() below answers

    def __init__(self, accounts: dict[str, tuple[int, int]]) -> None:
        self.accounts = accounts

    async def balance(self, http: Any, token: str) -> tuple[int, int]:
        return self.accounts[token]


def users_and_ledger(charged_predictions: list[int], *, held: int = 0, odd_credits: int = 0,
                     warm_up: int = 0) -> tuple[list[User], Ledger]:
    # `warm_up`: predictions each user made before wrk, counted by the Python generator.
    users = [User(token=f"t{i}", initial_credits=START_CREDITS, successes=warm_up)
             for i in range(len(charged_predictions))]
    accounts = {u.token: (START_CREDITS - COST_CREDITS * (n + warm_up), 0)
                for u, n in zip(users, charged_predictions, strict=True)}
    first = users[0].token
    balance, _ = accounts[first]
    accounts[first] = (balance - odd_credits, held)
    return users, Ledger(accounts)


async def problems(charged: list[int], spent: Spent, **kwargs: int) -> list[str]:
    users, ledger = users_and_ledger(charged, **kwargs)
    check = await check_totals(ledger, users, spent)  # type: ignore[arg-type]
    assert check.users_checked == len(charged)
    return check.balances_wrong


async def test_every_counted_reply_charged_once_passes() -> None:
    assert await problems([3, 0, 7], Spent(ok=10, unseen_max=0)) == []


@pytest.mark.parametrize("in_flight", [1, 4])
async def test_predictions_finished_after_wrk_stopped_counting_are_allowed(
        in_flight: int) -> None:
    # wrk stops counting with up to one request a connection still in the server.
    assert await problems([3, 0, 7 + in_flight], Spent(ok=10, unseen_max=4)) == []


async def test_more_charges_than_the_in_flight_window_fail() -> None:
    found = await problems([3, 0, 12], Spent(ok=10, unseen_max=4))
    assert found == [f"all users: {15 * COST_CREDITS} credits spent under wrk, "
                     f"expected {10 * COST_CREDITS}..{14 * COST_CREDITS}"]


async def test_a_counted_reply_that_was_not_charged_fails() -> None:
    found = await problems([3, 0, 6], Spent(ok=10, unseen_max=4))
    assert found == [f"all users: {9 * COST_CREDITS} credits spent under wrk, "
                     f"expected {10 * COST_CREDITS}..{14 * COST_CREDITS}"]


async def test_the_warm_ups_charges_are_not_counted_as_wrks() -> None:
    assert await problems([3, 0, 7], Spent(ok=10), warm_up=4) == []
    found = await problems([3, 0, 6], Spent(ok=10), warm_up=4)
    assert found == [f"all users: {9 * COST_CREDITS} credits spent under wrk, "
                     f"expected {10 * COST_CREDITS}..{10 * COST_CREDITS}"]


async def test_credits_left_on_hold_fail() -> None:
    found = await problems([3, 0, 7], Spent(ok=10), held=COST_CREDITS)
    assert found == [f"user 0: balance {START_CREDITS - 3 * COST_CREDITS} held {COST_CREDITS}"]


async def test_a_charge_that_is_not_a_whole_prediction_fails() -> None:
    found = await problems([3, 0, 7], Spent(ok=10, unseen_max=1), odd_credits=1)
    assert found and found[0] == f"user 0: balance {START_CREDITS - 3 * COST_CREDITS - 1} held 0"


async def test_a_balance_above_its_start_fails() -> None:
    # Credits that came from nowhere: spent is negative for that user.
    found = await problems([0, 3, 7], Spent(ok=10, unseen_max=8), odd_credits=-COST_CREDITS)
    assert found and found[0] == f"user 0: balance {START_CREDITS + COST_CREDITS} held 0"
