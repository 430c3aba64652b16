"""A random walk through the ledger's use cases, checked step by step against a plain model."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)
from pgcluster import PgCluster

from events import Event
from ledger import (
    BalanceLimitExceeded,
    BalanceView,
    IdempotencyConflict,
    InsufficientCredits,
    InvalidAmount,
    LedgerService,
    OperationInProgress,
    TaskDraft,
    TaskOutcome,
    UnknownHold,
    UsernameTaken,
    ledger_store_at,
)
from ledger.account import MAX_BALANCE_CREDITS, MAX_TOP_UP_CREDITS, fold
from ledger.audit import audit
from ledger.control import Operation

T = TypeVar("T")

amounts = st.one_of(
    st.integers(1, 500),
    st.sampled_from([0, -1, 1, MAX_TOP_UP_CREDITS, MAX_TOP_UP_CREDITS + 1, True, 2.5, 7.0]),
)


@dataclass
class Task:
    user_id: int
    op: Operation
    draft: TaskDraft
    state: str  # 'open', 'settled', 'released' or 'rejected'
    outcome: TaskOutcome | None


class LedgerMachine(RuleBasedStateMachine):
    users = Bundle("users")
    tasks = Bundle("tasks")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.directory = tempfile.mkdtemp(prefix="ledger-stateful-")
        self.path = self.location()
        self.store = ledger_store_at(self.path)
        self.run(self.store.open())
        self.ledger = LedgerService(self.store, owner="machine")
        # The model: what every account must hold, in plain Python.
        self.usernames: set[str] = set()
        self.balance: dict[int, int] = {}
        self.held: dict[int, int] = {}
        self.top_ups: dict[tuple[int, str], tuple[str, dict[str, Any]]] = {}
        self.tasks_by_id: dict[int, Task] = {}
        self.operations = 0

    def location(self) -> str | Path:
        return Path(self.directory) / "ledger.db"

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def teardown(self) -> None:
        try:
            self.run(self.store.close())
            report = self.run(audit(self.path, show_progress=False))
            assert report.ok, report.render()
        finally:
            self.loop.close()
            shutil.rmtree(self.directory, ignore_errors=True)

    def available(self, user_id: int) -> int:
        return self.balance[user_id] - self.held[user_id]

    # -- rules ------------------------------------------------------------------------------

    @initialize(target=users)
    def first_user(self) -> Any:
        return self.register("dora")

    @rule(target=users, username=st.sampled_from(["alice", "Alice", "bob", "DORA", "BOB"]))
    def register(self, username: str) -> Any:
        if username.lower() in self.usernames:
            with pytest.raises(UsernameTaken):
                self.run(self.ledger.open_account(username, "not-a-real-hash"))
            return multiple()
        opened = self.run(self.ledger.open_account(username, "not-a-real-hash"))
        user_id = int(opened.id)
        assert user_id == len(self.usernames) + 1
        self.usernames.add(username.lower())
        self.balance[user_id], self.held[user_id] = 0, 0
        return user_id

    @rule(user_id=users, amount=amounts,
          operation_id=st.one_of(st.none(), st.sampled_from(["op-a", "op-b"])))
    def top_up(self, user_id: int, amount: Any, operation_id: str | None) -> None:
        call = self.ledger.top_up(user_id, amount, operation_id)
        known = self.top_ups.get((user_id, operation_id)) if operation_id else None
        if known is not None:
            first_amount, first_outcome = known
            if first_amount != repr(amount):
                with pytest.raises(IdempotencyConflict):
                    self.run(call)
                return
            assert self.run(call) == first_outcome  # a retry: the first answer, unchanged
            return
        if type(amount) is not int or not 1 <= amount <= MAX_TOP_UP_CREDITS:
            with pytest.raises(InvalidAmount):
                self.run(call)
            return
        if self.balance[user_id] + amount > MAX_BALANCE_CREDITS:
            with pytest.raises(BalanceLimitExceeded):
                self.run(call)
            return
        outcome = self.run(call)
        self.balance[user_id] += amount
        assert outcome.balance.balance_credits == self.balance[user_id]
        assert outcome.transaction.amount_credits == amount
        if operation_id is not None:
            self.top_ups[(user_id, operation_id)] = (repr(amount), outcome)

    @rule(user_id=users, amount=amounts)
    def withdraw(self, user_id: int, amount: Any) -> None:
        call = self.ledger.withdraw(user_id, amount, "Charge")
        if type(amount) is not int or amount < 1:
            with pytest.raises(InvalidAmount):
                self.run(call)
        elif self.available(user_id) < amount:
            with pytest.raises(InsufficientCredits):
                self.run(call)
        else:
            self.run(call)
            self.balance[user_id] -= amount

    @rule(target=tasks, user_id=users, cost=st.integers(0, 600))
    def submit_task(self, user_id: int, cost: int) -> int:
        self.operations += 1
        op = Operation(user_id=user_id, operation_id=f"task-{self.operations}", kind="predict",
                       fingerprint=f"cost={cost}")
        draft = TaskDraft(model_id=1, input_data=[1.0], input_indexes=[0], invalid=[],
                          cost_credits=cost)
        covered = 0 < self.available(user_id) >= cost
        ticket = self.run(self.ledger.submit_task(user_id, draft, op))
        assert ticket.run is covered
        task = Task(user_id=user_id, op=op, draft=draft, state="open" if covered else "rejected",
                    outcome=ticket.outcome)
        if covered:
            self.held[user_id] += cost
        else:
            assert ticket.outcome is not None and ticket.outcome.balance.balance_credits == \
                self.balance[user_id]
        self.tasks_by_id[ticket.task_id] = task
        return ticket.task_id

    @rule(task_id=tasks, succeed=st.booleans())
    def finish_task(self, task_id: int, succeed: bool) -> None:
        task = self.tasks_by_id[task_id]
        call = (self.ledger.complete_task(task.user_id, task_id, [2.0], "Prediction")
                if succeed else self.ledger.fail_task(task.user_id, task_id, "the model failed"))
        if task.state != "open":  # each hold resolves exactly once
            with pytest.raises(UnknownHold):
                self.run(call)
            return
        outcome = self.run(call)
        cost = task.draft.cost_credits
        self.held[task.user_id] -= cost
        if succeed:
            self.balance[task.user_id] -= cost
        task.state, task.outcome = ("settled" if succeed else "released"), outcome
        assert outcome == TaskOutcome(
            task_id=task_id, cost_credits=cost,
            balance=BalanceView(balance_credits=self.balance[task.user_id],
                                held_credits=self.held[task.user_id]))
        assert outcome.balance.available_credits == self.available(task.user_id)

    @rule(task_id=tasks)
    def retry_task(self, task_id: int) -> None:
        task = self.tasks_by_id[task_id]
        call = self.ledger.submit_task(task.user_id, task.draft, task.op)
        if task.state == "open":
            with pytest.raises(OperationInProgress):
                self.run(call)
            return
        ticket = self.run(call)
        assert (ticket.task_id, ticket.run, ticket.outcome) == (task_id, False, task.outcome)

    # -- after every step -----------------------------------------------------------------

    @invariant()
    def projections_match_the_model(self) -> None:
        db = self.store.read_db()
        rows = self.run(db.fetchall(
            "SELECT user_id, balance_credits, held_credits FROM accounts ORDER BY user_id"))
        assert {r["user_id"]: (r["balance_credits"], r["held_credits"]) for r in rows} == {
            user_id: (self.balance[user_id], self.held[user_id]) for user_id in self.balance}
        assert all(0 <= self.held[u] <= self.balance[u] for u in self.balance)
        total = self.run(db.fetchone("SELECT COALESCE(SUM(amount_credits), 0) AS s FROM postings"))
        assert total == {"s": 0}
        open_holds = self.run(db.fetchall(
            "SELECT task_id FROM holds WHERE status = 'open' ORDER BY task_id"))
        assert [r["task_id"] for r in open_holds] == sorted(
            task_id for task_id, task in self.tasks_by_id.items() if task.state == "open")


    @invariant()
    def a_replay_of_the_log_equals_the_projection(self) -> None:
        """Fold every stream from the first event (no projection involved) and compare; the
        full table-by-table replay runs as `python -m ledger audit` in teardown."""
        events: dict[str, list[Event]] = {}

        async def read() -> None:
            async for recorded in self.store.read_all():
                events.setdefault(recorded.stream_id, []).append(recorded.event)

        self.run(read())
        replayed = {account.user_id: (account.balance_credits, account.held_credits,
                                      account.version)
                    for account in map(fold, events.values()) if account is not None}
        rows = self.run(self.store.read_db().fetchall(
            "SELECT user_id, balance_credits, held_credits, version FROM accounts"))
        assert replayed == {r["user_id"]: (r["balance_credits"], r["held_credits"],
                                           r["version"]) for r in rows}


LedgerMachine.TestCase.settings = settings(max_examples=30, stateful_step_count=30,
                                           deadline=None)
TestLedgerMachine = LedgerMachine.TestCase


class PostgresLedgerMachine(LedgerMachine):
    """The same walk on a fresh PostgreSQL database per example."""

    cluster: ClassVar[PgCluster]

    def location(self) -> str | Path:
        return self.run(self.cluster.create_database())

    def teardown(self) -> None:
        try:
            super().teardown()
        finally:
            loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(self.cluster.drop_database(str(self.path)))
            finally:
                loop.close()


def test_the_ledger_walk_holds_on_postgres(pg_cluster: PgCluster) -> None:
    PostgresLedgerMachine.cluster = pg_cluster
    run_state_machine_as_test(PostgresLedgerMachine, settings=LedgerMachine.TestCase.settings)
