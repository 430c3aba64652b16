"""Random runs of top-ups, holds, adjustments, suspensions and resumes on a real SQLite
file, checked against a plain model: every refusal is the model's, the balances are the
model's, and the audit's replay of the log gives the same projections."""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import (
    BalanceView,
    InsufficientCredits,
    LedgerService,
    Operation,
    TaskDraft,
    ledger_store_at,
)
from ledger.account import fold
from ledger.admin import AdminService
from ledger.audit import audit
from ledger.errors import SuspendedAccount, SuspensionConflict

USERS = (1, 2)
steps = st.lists(st.one_of(
    st.tuples(st.just("top_up"), st.sampled_from(USERS), st.integers(1, 50)),
    st.tuples(st.just("adjust"), st.sampled_from(USERS), st.integers(-60, 60).filter(bool)),
    st.tuples(st.just("hold"), st.sampled_from(USERS), st.integers(1, 20)),
    st.tuples(st.just("settle"), st.sampled_from(USERS), st.just(0)),
    st.tuples(st.just("suspend"), st.sampled_from(USERS), st.just(0)),
    st.tuples(st.just("resume"), st.sampled_from(USERS), st.just(0)),
), max_size=25)


@dataclass
class Model:
    balance: int = 0
    holds: list[tuple[int, int]] = field(default_factory=list)  # (task id, credits)
    suspended: bool = False

    @property
    def available(self) -> int:
        return self.balance - sum(amount for _, amount in self.holds)


async def run(path: Path, plan: list[tuple[str, int, int]]) -> None:
    store = ledger_store_at(path)
    await store.open()
    ledger = LedgerService(store, owner="model")
    admin = AdminService(ledger)
    try:
        for name in ("ann", "bob"):
            await ledger.open_account(name, "hash")
        operator = USERS[0]
        model = {user: Model() for user in USERS}
        for n, (kind, user, amount) in enumerate(plan):
            await step(ledger, admin, model[user], operator, n, kind, user, amount)
        for user in USERS:
            held = sum(a for _, a in model[user].holds)
            assert await ledger.get_balance(user) == BalanceView(
                balance_credits=model[user].balance, held_credits=held)
            replayed = fold([r.event async for r in store.read_stream(f"account-{user}")])
            assert replayed is not None
            assert (replayed.balance_credits, replayed.held_credits, replayed.suspended) == (
                model[user].balance, held, model[user].suspended)
        totals = await admin.totals()
        assert totals.balanced
    finally:
        await store.close()
    report = await audit(path, show_progress=False)
    assert report.ok, report.render()


async def step(ledger: LedgerService, admin: AdminService, model: Model, operator: int,
               n: int, kind: str, user: int, amount: int) -> None:
    if kind == "top_up":
        await ledger.top_up(user, amount)
        model.balance += amount
    elif kind == "adjust":
        try:
            await admin.adjust(operator, user, amount, f"step {n}")
            assert amount > 0 or -amount <= model.available
            model.balance += amount
        except InsufficientCredits:
            assert -amount > model.available
    elif kind == "hold":
        draft = TaskDraft(model_id=1, input_data=[1.0], input_indexes=[0], invalid=[],
                          cost_credits=amount)
        op = Operation(user_id=user, operation_id=f"op{n}", kind="predict", fingerprint="x")
        try:
            ticket = await ledger.submit_task(user, draft, op)
        except SuspendedAccount:
            assert model.suspended
            return
        assert not model.suspended
        assert ticket.run == (model.available > 0 and amount <= model.available)
        if ticket.run:
            model.holds.append((ticket.task_id, amount))
    elif kind == "settle" and model.holds:
        task_id, held = model.holds.pop(0)
        await ledger.complete_task(user, task_id, [2.0], "charge")
        model.balance -= held
    elif kind in ("suspend", "resume"):
        try:
            if kind == "suspend":
                await admin.suspend(operator, user, f"step {n}")
                model.holds.clear()  # released, uncharged
            else:
                await admin.resume(operator, user, f"step {n}")
            assert model.suspended == (kind == "resume")
            model.suspended = kind == "suspend"
        except SuspensionConflict:
            assert model.suspended == (kind == "suspend")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=steps)
def test_adjustments_and_suspensions_replay_to_the_models_balances(
        plan: list[tuple[str, int, int]]) -> None:
    with tempfile.TemporaryDirectory(prefix="admin-model-") as scratch:
        asyncio.run(run(Path(scratch) / "ledger.db", plan))
