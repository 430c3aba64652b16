"""What the jobs of one group-commit batch hand on to each other (the chain head, the
versions of streams appended to, the ledger's next task id) is taken back with a job that
fails: the jobs after it write as if it had never run, on both stores."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from events import ConcurrencyError, SqlSession
from events.verify import verify_chain
from ledger import LedgerService, ledger_store_at
from ledger.audit import audit
from ledger.events import AccountOpened
from ledger.service import TaskDraft, _submitted

pytestmark = pytest.mark.parametrize("ledger_at", ["sqlite", "postgres"], indirect=True)


class Refused(Exception):
    """A job's own failure, after it appended and took a task id."""


async def test_a_failed_job_takes_back_what_it_taught_its_batch(
        ledger_at: str | Path) -> None:
    store = ledger_store_at(ledger_at)
    await store.open()
    try:
        draft = TaskDraft(model_id=1, input_data=[1.0], input_indexes=[0], invalid=[],
                          cost_credits=1)
        ids: list[int] = []

        def opening(user_id: int, fail: bool = False,
                    expected: int = 0) -> Callable[[SqlSession], Awaitable[int]]:
            async def work(s: SqlSession) -> int:
                ids.append((await _submitted(s, user_id, draft)).task_id)
                recorded = await s.append(f"account-{user_id}", expected,
                                          [AccountOpened(user_id=user_id,
                                                         username=f"u{user_id}-{expected}")])
                if fail:
                    raise Refused("after its append")
                return recorded[-1].position
            return work

        sizes: list[int] = []
        store.observer = type("Sizes", (), {
            "batch_committed": lambda self, jobs, seconds: sizes.append(jobs),
            "events_committed": lambda self, events: None})()
        outcomes = await asyncio.gather(
            store.transact(opening(1)), store.transact(opening(2, fail=True)),
            store.transact(opening(2)), store.transact(opening(1, expected=0)),
            store.transact(opening(3)), return_exceptions=True)
        assert sizes == [5], "the jobs did not share one batch"
        assert outcomes[0] == 1
        assert isinstance(outcomes[1], Refused)
        assert outcomes[2] == 2  # the failed job's position and stream version came back
        assert isinstance(outcomes[3], ConcurrencyError)  # account-1 is at version 1 now
        assert outcomes[4] == 3
        # A failed job gives its task id back. (Both stores run a batch without savepoints
        # first: at a failure after the job wrote, the whole try is rolled back, its ids 1
        # and 2 with it, and the others run again, in savepoints, without the failed job.)
        assert ids == [1, 2, 1, 2, 3, 3]
        report = await verify_chain(store.read_rows())
        assert report.ok and report.events == 3, report
    finally:
        await store.close()


async def test_predictions_decided_in_one_batch_after_a_failure_audit_clean(
        ledger_at: str | Path) -> None:
    store = ledger_store_at(ledger_at)
    await store.open()
    ledger = LedgerService(store)
    try:
        users = [(await ledger.open_account(f"user{k}", "not-a-real-hash")).id
                 for k in range(3)]
        await asyncio.gather(*(ledger.top_up(u, 10, f"key-{u}") for u in users))

        async def broken(s: SqlSession) -> None:
            await s.append("elsewhere", 0, [AccountOpened(user_id=99, username="x")])
            raise Refused("rolled back")

        results = await asyncio.gather(
            ledger.top_up(users[0], 5), store.transact(broken), ledger.top_up(users[1], 5),
            ledger.top_up(users[0], 10, f"key-{users[0]}"), return_exceptions=True)
        assert isinstance(results[1], Refused)
        assert [r.balance.balance_credits for r in results[::2]] == [15, 15]  # type: ignore[union-attr]
        assert results[3].balance.balance_credits == 10  # type: ignore[union-attr]  # a replay
    finally:
        await store.close()
    report = await audit(ledger_at, show_progress=False)
    assert report.ok, report.render()
