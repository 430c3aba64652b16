"""The counter projections (usage_slots, usage_days, account_totals, spend) are held for the
write batch and written once before its COMMIT (events/sums.py). Whatever the batch holds
(one-write and two-phase predictions, failed and refused ones, rows the model could not
predict, top-ups, direct charges, time-zone changes, limits, jobs rolled back after they
appended and after a statement of theirs had the held rows written, one account several
times), the tables must end as the audit's event-by-event replay leaves them, on both stores."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pgcluster import PgCluster

from events import SqlEventStore, SqlSession, StoreError
from ledger import LedgerService, Passwords, UserService, ledger_store_at
from ledger.audit import audit
from ledger.events import CreditsDeposited
from ledger.queries import load_account
from ml import MLService
from tests.integration.test_one_write_projections import one_write_models as models
from tests.integration.test_pg_coalesced_writes import Batches

COUNTERS = {"usage_slots": "user_id, slot, model_id", "usage_days": "user_id, day, model_id",
            "account_totals": "user_id, kind, model_id", "spend": "user_id, key_id, slot"}
ZONES = ["UTC", "Asia/Kolkata", "America/St_Johns", "Pacific/Chatham", "Pacific/Kiritimati"]
USERS = 3


class Refused(Exception):
    """A job's own failure, after its append (and its counter rows) in the batch."""


def broken(user_id: int, peek: bool) -> Callable[[SqlSession], Awaitable[None]]:
    """A top-up that fails after its append: its account_totals row must go with it. With
    `peek`, a statement of it reads usage_slots first, so the rows the batch held before it
    are written inside its savepoint (and rolled back with it: they must be held again)."""

    async def work(s: SqlSession) -> None:
        account = await load_account(s.db, user_id)
        await s.append(f"account-{user_id}", account.version, [CreditsDeposited(
            user_id=user_id, amount_credits=7, description="never")])
        if peek:
            await s.db.fetchall("SELECT * FROM usage_slots")
        raise Refused("after its append")

    return work


users = st.integers(0, USERS - 1)
data = st.lists(st.sampled_from([1.0, 2.0, -1.0, 3.0]), min_size=1, max_size=4)
ops = st.one_of(
    st.tuples(st.just("fast"), users, st.sampled_from([1, 8, 9]), data),
    st.tuples(st.just("slow"), users, st.sampled_from([1, 8]), data),
    st.tuples(st.just("top_up"), users, st.integers(1, 30)),
    st.tuples(st.just("withdraw"), users, st.integers(1, 5)),
    st.tuples(st.just("zone"), users, st.sampled_from(ZONES)),
    st.tuples(st.just("limit"), users, st.sampled_from([None, 3, 12])),
    st.tuples(st.just("broken"), users, st.booleans()),
)
batches = st.lists(st.lists(ops, min_size=1, max_size=8), min_size=1, max_size=4)


async def counters(store: SqlEventStore) -> dict[str, list[dict[str, Any]]]:
    db = store.read_db()
    return {table: await db.fetchall(f"SELECT * FROM {table} ORDER BY {key}")
            for table, key in COUNTERS.items()}


async def in_one_batch(store: SqlEventStore, calls: list[Callable[[], Awaitable[Any]]]
                       ) -> list[Any]:
    """The calls, their first writes queued behind a held one, so that they share a batch
    (at most 5 s: should a call not reach the writer, the batch is only smaller)."""
    holding, gate, arrived = asyncio.Event(), asyncio.Event(), asyncio.Event()
    transact, count = store.transact, [0]

    async def hold(s: SqlSession) -> None:
        holding.set()
        await gate.wait()

    def counted(work: Callable[[SqlSession], Awaitable[Any]]) -> Awaitable[Any]:
        count[0] += 1
        if count[0] >= len(calls):
            arrived.set()
        return transact(work)

    held = asyncio.ensure_future(transact(hold))
    await holding.wait()  # the writer is in it: the calls' writes make the next batch
    store.transact = counted  # type: ignore[method-assign]
    try:
        running = [asyncio.ensure_future(call()) for call in calls]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(arrived.wait(), 5)
    finally:
        store.transact = transact  # type: ignore[method-assign]
        gate.set()
    await held
    return await asyncio.gather(*running, return_exceptions=True)


async def play(where: str | Path, plan: list[list[tuple[Any, ...]]]) -> None:
    store = ledger_store_at(where)
    await store.open()
    try:
        ledger = LedgerService(store)
        registry = UserService(ledger, Passwords.cheap())
        fast, slow = (MLService(ledger, models(), one_transaction=one) for one in (True, False))
        ids = [(await registry.register(f"user{k}", "correct horse")).id for k in range(USERS)]
        for user_id in ids:
            await ledger.top_up(user_id, 20)

        def call(op: tuple[Any, ...]) -> Callable[[], Awaitable[Any]]:
            return lambda: start(op)

        def start(op: tuple[Any, ...]) -> Awaitable[Any]:
            kind, user_id = op[0], ids[op[1]]
            if kind in ("fast", "slow"):
                return (fast if kind == "fast" else slow).process_task(user_id, op[2], op[3])
            if kind == "top_up":
                return ledger.top_up(user_id, op[2])
            if kind == "withdraw":
                return ledger.withdraw(user_id, op[2], "direct")
            if kind == "zone":
                return ledger.set_time_zone(user_id, op[2])
            if kind == "limit":
                return ledger.set_limits(user_id, op[2], None)
            return store.transact(broken(user_id, op[2]))

        for batch in plan:
            for op, result in zip(batch, await in_one_batch(store, [call(op) for op in batch]),
                                  strict=True):
                if isinstance(result, BaseException):  # only the broken jobs, and a
                    assert isinstance(result, Refused) or op[0] == "withdraw", (op, result)
        written = await counters(store)
        top_ups = [r for r in written["account_totals"] if r["kind"] == "top_up"]
        expected = USERS + sum(op[0] == "top_up" for batch in plan for op in batch)
        assert sum(r["events"] for r in top_ups) == expected  # none of the broken ones
        assert await store.rebuild_projections() > 0
        assert await counters(store) == written
    finally:
        await store.close()
    report = await audit(where, show_progress=False)
    assert report.ok, report.render()


SETTINGS = settings(max_examples=20, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@SETTINGS
@given(batches)
def test_batched_counters_equal_the_replay_on_sqlite(plan: list[list[tuple[Any, ...]]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(play(Path(folder) / "ledger.db", plan))


def test_batched_counters_equal_the_replay_on_postgres(pg_cluster: PgCluster) -> None:
    @SETTINGS
    @given(batches)
    def check(plan: list[list[tuple[Any, ...]]]) -> None:
        async def run() -> None:
            url = await pg_cluster.create_database()
            try:
                await play(url, plan)
            finally:
                await pg_cluster.drop_database(url)

        asyncio.run(run())

    check()


@pytest.mark.parametrize("ledger_at", ["sqlite", "postgres"], indirect=True)
async def test_a_job_rolled_back_mid_batch_leaves_no_counter_rows(
        ledger_at: str | Path) -> None:
    store = ledger_store_at(ledger_at)
    await store.open()
    try:
        ledger = LedgerService(store)
        ml = MLService(ledger, models())
        registry = UserService(ledger, Passwords.cheap())
        alice, bob = [(await registry.register(n, "correct horse")).id for n in ("alice", "bob")]
        await ledger.top_up(alice, 50)
        await ledger.top_up(bob, 50)
        store.observer = batches = Batches()  # type: ignore[attr-defined]
        results = await in_one_batch(store, [
            lambda: ml.process_task(alice, 1, [1.0, 2.0]),
            lambda: store.transact(broken(alice, True)),
            lambda: ml.process_task(alice, 8, [1.0, -1.0, 2.0]),
            lambda: store.transact(broken(bob, False)),
            lambda: ml.process_task(bob, 1, [5.0])])
        assert [type(r).__name__ for r in results] == [
            "PredictionResult", "Refused", "PredictionResult", "Refused", "PredictionResult"]
        assert batches.sizes == [1, 5], "the jobs did not share one batch"
        written = await counters(store)
    finally:
        await store.close()
    totals = {(r["user_id"], r["kind"], r["model_id"]): (r["events"], r["credits"], r["items"])
              for r in written["account_totals"]}
    assert totals == {(alice, "top_up", 0): (1, 50, 0), (bob, "top_up", 0): (1, 50, 0),
                      (alice, "charge", 0): (2, 2 + 4, 0), (bob, "charge", 0): (1, 1, 0),
                      (alice, "completed", 1): (1, 0, 2), (alice, "completed", 8): (1, 0, 2),
                      (bob, "completed", 1): (1, 0, 1)}
    days: dict[tuple[int, int], tuple[int, ...]] = {}
    for r in written["usage_days"]:  # (a day each, unless the test runs over midnight)
        had = days.get((r["user_id"], r["model_id"]), (0, 0, 0))
        days[r["user_id"], r["model_id"]] = tuple(
            a + b for a, b in zip(had, (r["predictions"], r["items"], r["credits"]),
                                  strict=True))
    assert days == {(alice, 1): (1, 2, 2), (alice, 8): (1, 2, 4), (bob, 1): (1, 1, 1)}
    report = await audit(ledger_at, show_progress=False)
    assert report.ok, report.render()


@pytest.mark.parametrize("ledger_at", ["sqlite", "postgres"], indirect=True)
async def test_a_limit_check_in_a_batch_counts_the_spending_held_before_it(
        ledger_at: str | Path) -> None:
    """Spending is held for the batch too; a limit's check reads it, so it must see what the
    jobs before it in the batch spent, or two predictions together pass one daily limit."""
    store = ledger_store_at(ledger_at)
    await store.open()
    try:
        ledger = LedgerService(store)
        ml = MLService(ledger, models())
        alice = (await UserService(ledger, Passwords.cheap()).register(
            "alice", "correct horse")).id
        await ledger.top_up(alice, 100)
        await ledger.set_limits(alice, 12, None)
        store.observer = batches = Batches()  # type: ignore[attr-defined]
        results = await in_one_batch(store, [
            lambda: ml.process_task(alice, 1, [1.0] * 8) for _ in range(2)])
        assert batches.sizes == [1, 2], "the two predictions did not share one batch"
        spent = await store.read_db().fetchall("SELECT spent_credits FROM spend")
    finally:
        await store.close()
    assert sorted(r.status for r in results) == ["completed", "rejected"]
    assert [r.refusal is not None for r in results if r.status == "rejected"] == [True]
    assert sum(r["spent_credits"] for r in spent) == 8


FAILING_FLUSH = {
    "sqlite": ["CREATE TRIGGER refuse_seven BEFORE INSERT ON usage_days WHEN NEW.items = 7 "
               "BEGIN SELECT RAISE(ABORT, 'seven items refused'); END"],
    "postgres": ["CREATE FUNCTION refuse_seven() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                 "IF NEW.items = 7 THEN RAISE EXCEPTION 'seven items refused'; END IF; "
                 "RETURN NEW; END $$",
                 "CREATE TRIGGER refuse_seven BEFORE INSERT ON usage_days FOR EACH ROW "
                 "EXECUTE FUNCTION refuse_seven()"],
}


@pytest.mark.parametrize("ledger_at", ["sqlite", "postgres"], indirect=True)
async def test_a_batch_whose_counter_rows_cannot_be_written_writes_nothing(
        ledger_at: str | Path) -> None:
    """The held rows are written after the jobs, before COMMIT: should that fail, every job
    of the batch fails with it, and none of it is written (no event, no charge)."""
    store = ledger_store_at(ledger_at)
    await store.open()
    try:
        for statement in FAILING_FLUSH["sqlite" if isinstance(ledger_at, Path) else "postgres"]:
            await store.read_db().execute(statement)
        ledger = LedgerService(store)
        ml = MLService(ledger, models())
        registry = UserService(ledger, Passwords.cheap())
        alice, bob = [(await registry.register(n, "correct horse")).id for n in ("alice", "bob")]
        for user_id in (alice, bob):
            await ledger.top_up(user_id, 50)
        head = await store.head_position()
        results = await in_one_batch(store, [
            lambda: ml.process_task(alice, 1, [1.0] * 7),  # its usage_days row is refused
            lambda: ml.process_task(bob, 1, [1.0] * 2)])
        assert all(isinstance(r, StoreError) for r in results), results
        assert await store.head_position() == head, "a failed batch appended events"
        assert [(await ledger.get_balance(u)).balance_credits for u in (alice, bob)] == [50, 50]
        assert (await ml.process_task(bob, 1, [1.0] * 2)).status == "completed"
    finally:
        await store.close()
    report = await audit(ledger_at, show_progress=False)
    assert report.ok, report.render()
