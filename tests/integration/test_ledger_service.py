"""The ledger and ML use cases against a real SQLite file: what a user sees, and what is kept."""

from __future__ import annotations

import asyncio
import json
import math
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from events import SQLiteEventStore
from ledger import (
    AccountNotFound,
    BalanceView,
    IdempotencyConflict,
    InvalidAmount,
    InvalidCredentials,
    InvalidInput,
    LedgerService,
    TaskDraft,
    Transaction,
    User,
    UsernameTaken,
)
from ledger.control import MAX_LIVE_TOKENS, Operation
from ml import (
    EmptyInput,
    MLModel,
    MLModelManager,
    MLService,
    MLTask,
    ModelNotFound,
    ModelSpec,
    NoValidData,
    Prediction,
    TooManyItems,
    default_models,
    split_csv,
)

if TYPE_CHECKING:
    from conftest import Services

# The same use cases on both stores (see conftest's `ledger_at`).
pytestmark = pytest.mark.parametrize("ledger_at", ["sqlite", "postgres"], indirect=True)


async def count_events(store: SQLiteEventStore) -> int:
    row = await store.read_db().fetchone("SELECT COUNT(*) AS n FROM events")
    assert row is not None
    return int(row["n"])


async def new_user(services: Services, username: str = "alice", credits: int = 0) -> int:
    user_id = int((await services.users.register(username, "correct horse")).id)
    if credits:
        await services.ledger.top_up(user_id, credits)
    return user_id


async def balance(services: Services, user_id: int) -> tuple[int, int, int]:
    view = await services.ledger.get_balance(user_id)
    return view.balance_credits, view.held_credits, view.available_credits


async def operation_row(services: Services, user_id: int, operation_id: str) -> dict[str, Any]:
    row = await services.store.read_db().fetchone(
        "SELECT * FROM operations WHERE user_id = ? AND operation_id = ?",
        (user_id, operation_id))
    assert row is not None
    return row


# -- registration and login -------------------------------------------------------------------

async def test_register_opens_an_empty_account(services: Services) -> None:
    opened = await services.users.register("alice", "correct horse")
    assert opened.id == 1 and opened.username == "alice" and opened.balance_credits == 0
    assert (await services.users.register("bob", "correct horse")).id == 2
    assert await balance(services, 1) == (0, 0, 0)
    assert await services.users.get_user_balance(1) == BalanceView(balance_credits=0,
                                                                   held_credits=0)


@pytest.mark.parametrize("taken", ["alice", "ALICE", "Alice"])
async def test_a_username_is_taken_whatever_its_case(services: Services, taken: str) -> None:
    await new_user(services, "alice")
    events = await count_events(services.store)
    with pytest.raises(UsernameTaken):
        await services.users.register(taken, "another password")
    assert await count_events(services.store) == events


async def test_only_one_of_many_simultaneous_registrations_wins(services: Services) -> None:
    outcomes = await asyncio.gather(
        *(services.users.register(name, "correct horse") for name in
          ["carol", "Carol", "CAROL", "carol", "cArOl"]), return_exceptions=True)
    assert sum(not isinstance(o, BaseException) for o in outcomes) == 1
    assert all(isinstance(o, UsernameTaken) for o in outcomes if isinstance(o, BaseException))
    assert await count_events(services.store) == 1


@pytest.mark.parametrize(("username", "password", "field"), [
    ("ab", "correct horse", "username"),
    ("has space", "correct horse", "username"),
    ("x" * 33, "correct horse", "username"),
    ("alice", "short", "password"),
    ("alice", "x" * 257, "password"),
])
async def test_registration_checks_its_input(
        services: Services, username: str, password: str, field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        await services.users.register(username, password)
    assert raised.value.field == field
    assert await count_events(services.store) == 0


async def test_login_gives_a_token_that_names_the_user(services: Services) -> None:
    user_id = await new_user(services)
    assert await services.users.authenticate("ALICE", "correct horse") == user_id
    login = await services.users.login("alice", "correct horse")
    assert login.user_id == user_id and login.token_type == "bearer"
    assert await services.users.user_for_token(login.access_token) == user_id
    assert await services.users.user_for_token(login.access_token, "session") is None
    assert await services.users.user_for_token("not a token") is None


async def test_an_unknown_user_and_a_wrong_password_are_told_apart_by_nothing(
        services: Services) -> None:
    await new_user(services)
    with pytest.raises(InvalidCredentials) as unknown:
        await services.users.login("mallory", "correct horse")
    with pytest.raises(InvalidCredentials) as wrong:
        await services.users.login("alice", "wrong horse")
    assert type(unknown.value) is type(wrong.value)
    assert str(unknown.value) == str(wrong.value)
    assert unknown.value.code == wrong.value.code == "invalid_credentials"


async def test_logout_revokes_that_token_only(services: Services) -> None:
    user_id = await new_user(services)
    kept = (await services.users.login("alice", "correct horse")).access_token
    revoked = (await services.users.login("alice", "correct horse")).access_token
    await services.users.logout(revoked)
    assert await services.users.user_for_token(revoked) is None
    assert await services.users.user_for_token(kept) == user_id


async def test_a_token_expires(services: Services) -> None:
    user_id = await new_user(services)
    token = (await services.users.issue_token(user_id, "api")).access_token
    issued_at = services.store.clock()
    services.store.clock = lambda: issued_at + timedelta(hours=24, seconds=1)
    assert await services.users.user_for_token(token) is None


async def test_only_a_digest_of_a_token_is_stored(services: Services) -> None:
    user_id = await new_user(services)
    token = (await services.users.issue_token(user_id, "api")).access_token
    rows = await services.store.read_db().fetchall("SELECT * FROM tokens")
    assert token not in json.dumps(rows)


# -- top-ups ----------------------------------------------------------------------------------

async def test_a_top_up_moves_credits_and_records_a_transaction(services: Services) -> None:
    user_id = await new_user(services)
    outcome = await services.ledger.top_up(user_id, 250, "op-1")
    assert outcome.balance == BalanceView(balance_credits=250, held_credits=0)
    transaction = outcome.transaction
    assert (transaction.kind, transaction.amount_credits, transaction.balance_after_credits) == (
        "top_up", 250, 250)


async def test_a_top_up_stored_by_the_previous_version_is_replayed_as_it_was(
        services: Services) -> None:
    user_id = await new_user(services)
    old = {"transaction": {"id": 99, "kind": "top_up", "amount": 40, "balance_after": 40,
                           "description": "Top-up", "task_id": None, "created_at": "then"},
           "balance": {"balance": 40, "held": 0, "available": 40}}

    async def write_old_row(s: Any) -> None:
        await s.db.execute(
            "INSERT INTO operations VALUES (?, 'op-old', 'top_up', 'amount=40', 'done', NULL, "
            "?, 'then')", (user_id, json.dumps(old)))

    await services.store.transact(write_old_row)
    events = await count_events(services.store)
    replayed = await services.ledger.top_up(user_id, 40, "op-old")
    assert (replayed.transaction.id, replayed.transaction.amount_credits) == (99, 40)
    assert replayed.balance == BalanceView(balance_credits=40, held_credits=0)
    assert await count_events(services.store) == events  # a replay writes nothing
    assert await balance(services, user_id) == (0, 0, 0)


async def test_a_retried_top_up_returns_the_first_outcome_and_writes_nothing(
        services: Services) -> None:
    user_id = await new_user(services)
    first = await services.ledger.top_up(user_id, 100, "op-1")
    events = await count_events(services.store)
    again = await services.ledger.top_up(user_id, 100, "op-1")
    assert again == first
    assert await count_events(services.store) == events
    assert await balance(services, user_id) == (100, 0, 100)


async def test_an_operation_id_reused_for_another_amount_is_refused(services: Services) -> None:
    user_id = await new_user(services)
    await services.ledger.top_up(user_id, 100, "op-1")
    events = await count_events(services.store)
    with pytest.raises(IdempotencyConflict):
        await services.ledger.top_up(user_id, 101, "op-1")
    assert await count_events(services.store) == events
    assert await balance(services, user_id) == (100, 0, 100)


async def test_operation_ids_belong_to_their_user(services: Services) -> None:
    alice, bob = await new_user(services, "alice"), await new_user(services, "bob")
    await services.ledger.top_up(alice, 100, "op-1")
    await services.ledger.top_up(bob, 7, "op-1")
    assert await balance(services, alice) == (100, 0, 100)
    assert await balance(services, bob) == (7, 0, 7)


@pytest.mark.parametrize("amount", [0, -5, 1_000_001, True, 2.5])
async def test_an_invalid_top_up_writes_nothing_and_does_not_burn_its_id(
        services: Services, amount: Any) -> None:
    user_id = await new_user(services)
    events = await count_events(services.store)
    with pytest.raises(InvalidAmount):
        await services.ledger.top_up(user_id, amount, "op-1")
    assert await count_events(services.store) == events
    await services.ledger.top_up(user_id, 5, "op-1")
    assert await balance(services, user_id) == (5, 0, 5)


async def test_a_top_up_to_no_account_is_refused(services: Services) -> None:
    with pytest.raises(AccountNotFound):
        await services.ledger.top_up(42, 5)
    with pytest.raises(AccountNotFound):
        await services.ledger.get_balance(42)


# -- predictions ------------------------------------------------------------------------------

async def test_a_prediction_charges_the_price_of_its_valid_items(services: Services) -> None:
    user_id = await new_user(services, credits=10)
    result = await services.ml.process_task(user_id, 2, [1, "x", 2.5, None])
    assert result.status == "completed"
    assert result.cost_credits == result.quoted_credits == 2 * 2
    assert result.predictions == (Prediction(index=0, input=1.0, output=4.0),
                                  Prediction(index=2, input=2.5, output=8.5))
    assert [entry["index"] for entry in result.invalid] == [1, 3]
    assert result.balance == BalanceView(balance_credits=6, held_credits=0)
    assert await balance(services, user_id) == (6, 0, 6)
    [charge, top_up] = await Transaction.get_user_transactions(services.ledger, user_id)
    assert (charge.kind, charge.amount, charge.balance_after, charge.task_id) == (
        "charge", -4, 6, result.task.id)
    assert top_up.balance_after == 10


async def test_a_prediction_from_text_reports_bad_tokens(services: Services) -> None:
    user_id = await new_user(services, credits=10)
    result = await services.ml.process_task(user_id, 1, "1, two\n3")
    assert result.status == "completed"
    assert [p.output for p in result.predictions] == [2.0, 6.0]
    assert result.invalid == [{"index": 1, "value": "two", "error": "not a number"}]
    assert await balance(services, user_id) == (8, 0, 8)


async def test_a_csv_upload_skips_its_header_and_reports_bad_cells(services: Services) -> None:
    user_id = await new_user(services, credits=10)
    cells = split_csv('value,note\n1,"2"\n,\n3," x "\n')
    result = await services.ml.process_task(user_id, 1, cells, as_text=True)
    assert [(p.index, p.output) for p in result.predictions] == [
        (0, 2.0), (1, 4.0), (2, 6.0)]
    assert result.invalid == [{"index": 3, "value": "x", "error": "not a number"}]
    assert result.cost_credits == 3


@pytest.mark.parametrize("credits", [0, 2])
async def test_a_prediction_the_balance_cannot_cover_is_rejected_and_kept(
        services: Services, credits: int) -> None:
    user_id = await new_user(services, credits=credits)
    result = await services.ml.process_task(user_id, 1, [1, 2, 3])
    assert result.status == "rejected"
    assert (result.cost_credits, result.quoted_credits) == (0, 3)
    assert result.predictions == ()
    assert await balance(services, user_id) == (credits, 0, credits)
    [task] = await MLTask.get_user_tasks(services.ledger, user_id)
    assert (task.status, task.cost, task.input_data, task.error) == (
        "rejected", 0, [1.0, 2.0, 3.0], "insufficient_balance")
    transactions = await Transaction.get_user_transactions(services.ledger, user_id)
    assert all(t.kind == "top_up" for t in transactions)


@pytest.mark.parametrize("items", [["x", None, True], "a, b; c"])
async def test_a_request_with_no_valid_number_raises_and_writes_nothing(
        services: Services, items: Any) -> None:
    user_id = await new_user(services, credits=10)
    events = await count_events(services.store)
    with pytest.raises(NoValidData) as raised:
        await services.ml.process_task(user_id, 1, items)
    assert [entry["index"] for entry in raised.value.invalid] == [0, 1, 2]
    assert await count_events(services.store) == events
    assert await MLTask.get_user_tasks(services.ledger, user_id) == []


@pytest.mark.parametrize("items", [[], "", " , \n"])
async def test_an_empty_request_is_refused(services: Services, items: Any) -> None:
    user_id = await new_user(services, credits=10)
    events = await count_events(services.store)
    with pytest.raises(EmptyInput):
        await services.ml.process_task(user_id, 1, items)
    assert await count_events(services.store) == events


async def test_a_request_over_the_model_limit_is_refused_before_anything_runs(
        services: Services) -> None:
    user_id = await new_user(services, credits=10_000)
    events = await count_events(services.store)
    with pytest.raises(TooManyItems) as raised:
        await services.ml.process_task(user_id, 1, [1] * 1001)
    assert (raised.value.count, raised.value.max_items) == (1001, 1000)
    assert (await services.ml.process_task(user_id, 1, [1] * 1000)).cost_credits == 1000
    assert await count_events(services.store) == events + 1  # TaskCompletedAtOnce: one row


@pytest.mark.parametrize("model_id", [0, 3, 99, "1", True, 1.0])
async def test_an_unknown_model_is_refused(services: Services, model_id: Any) -> None:
    user_id = await new_user(services, credits=10)
    with pytest.raises(ModelNotFound):
        await services.ml.process_task(user_id, model_id, [1])
    assert await balance(services, user_id) == (10, 0, 10)


class Exploding(MLModel):
    def predict(self, data: list[float]) -> list[float]:
        raise RuntimeError("out of memory")


class NotANumber(MLModel):
    def predict(self, data: list[float]) -> list[float]:
        return [math.nan for _ in data]


class TooFew(MLModel):
    def predict(self, data: list[float]) -> list[float]:
        return data[1:]


def service_with(services: Services, model: type[MLModel]) -> MLService:
    manager = MLModelManager(default_models())
    manager.register(ModelSpec(id=9, name=model.__name__, description="broken",
                               price_per_item_credits=3, max_items=10, factory=model))
    return MLService(services.ledger, manager)


@pytest.mark.parametrize(("model", "error"), [
    (Exploding, "the model failed: RuntimeError"),
    # Every row unpredictable: nothing to charge, so the task fails as a whole.
    (NotANumber, "the model could not predict any row: the model's output for this row is "
                 "not a finite number"),
    (TooFew, "the model failed: the model returned 1 outputs for 2 rows"),
])
async def test_a_model_that_fails_charges_nothing_and_releases_its_hold(
        services: Services, model: type[MLModel], error: str) -> None:
    user_id = await new_user(services, credits=10)
    result = await service_with(services, model).process_task(user_id, 9, [1, 2])
    assert result.status == "failed"
    assert result.task.error == error
    assert (result.cost_credits, result.quoted_credits) == (0, 6)
    assert result.predictions == ()
    assert await balance(services, user_id) == (10, 0, 10)
    [hold] = await services.store.read_db().fetchall("SELECT status, amount_credits FROM holds")
    assert hold == {"status": "released", "amount_credits": 6}
    transactions = await Transaction.get_user_transactions(services.ledger, user_id)
    assert [t.kind for t in transactions] == ["top_up"]


async def test_a_prediction_that_overflows_is_failed_not_charged(services: Services) -> None:
    user_id = await new_user(services, credits=10)
    result = await services.ml.process_task(user_id, 1, [1e308])  # doubled: infinity
    assert result.status == "failed"
    assert await balance(services, user_id) == (10, 0, 10)


async def test_a_retried_prediction_is_answered_again_and_charged_once(
        services: Services) -> None:
    user_id = await new_user(services, credits=10)
    first = await services.ml.process_task(user_id, 1, [1, 2], "op-7")
    events = await count_events(services.store)
    again = await services.ml.process_task(user_id, 1, [1, 2], "op-7")
    assert again == first
    assert await count_events(services.store) == events
    assert await balance(services, user_id) == (8, 0, 8)
    with pytest.raises(IdempotencyConflict):
        await services.ml.process_task(user_id, 1, [1, 3], "op-7")
    with pytest.raises(IdempotencyConflict):
        await services.ledger.top_up(user_id, 5, "op-7")


async def test_a_retried_rejection_stays_rejected_after_a_top_up(services: Services) -> None:
    user_id = await new_user(services, credits=1)
    first = await services.ml.process_task(user_id, 1, [1, 2], "op-1")
    await services.ledger.top_up(user_id, 100)
    again = await services.ml.process_task(user_id, 1, [1, 2], "op-1")
    assert again.status == first.status == "rejected"
    assert again.task.id == first.task.id
    assert await balance(services, user_id) == (101, 0, 101)


async def test_a_user_sees_only_their_own_tasks(services: Services) -> None:
    alice = await new_user(services, "alice", credits=10)
    bob = await new_user(services, "bob", credits=10)
    result = await services.ml.process_task(alice, 1, [1])
    assert await MLTask.get_user_tasks(services.ledger, bob) == []
    [task] = await MLTask.get_user_tasks(services.ledger, alice)
    assert (task.id, task.status, task.output_data, task.cost) == (
        result.task.id, "completed", [2.0], 1)


# -- the reads the web edge uses ---------------------------------------------------------------

async def test_the_ledger_reads_show_a_user_only_their_own_account_and_tasks(
        services: Services) -> None:
    alice = await new_user(services, "alice", credits=10)
    bob = await new_user(services, "bob", credits=10)
    firsts = [await services.ml.process_task(alice, 1, [i]) for i in range(3)]
    profile = await services.ledger.profile(alice)
    assert (profile.id, profile.username) == (alice, "alice") and profile.created_at
    assert profile.balance == BalanceView(balance_credits=7, held_credits=0)
    page = await services.ledger.tasks_page(alice, limit=2)
    assert [t.id for t in page.data] == [firsts[2].task.id, firsts[1].task.id] and page.has_more
    older = await services.ledger.tasks_page(alice, limit=2, starting_after=page.data[-1].id)
    assert [t.id for t in older.data] == [firsts[0].task.id] and not older.has_more
    moves = await services.ledger.transactions_page(alice, limit=1, offset=3)
    assert [(t.kind, t.amount_credits) for t in moves.data] == [("top_up", 10)]
    assert await services.ledger.find_task(alice, firsts[0].task.id) == firsts[0].task
    assert await services.ledger.find_task(bob, firsts[0].task.id) is None
    assert (await services.ledger.tasks_page(bob)).data == ()
    with pytest.raises(AccountNotFound):
        await services.ledger.profile(42)


# -- the seed's classes -----------------------------------------------------------------------

async def test_seed_user_create_get_and_check_password(services: Services) -> None:
    created = await User.create(services.users, "alice", "correct horse")
    assert (created.username, created.balance) == ("alice", 0)
    found = await User.get(services.users, "alice", "correct horse")
    assert found is not None and found.id == created.id
    assert await User.get(services.users, "alice", "wrong horse") is None
    assert await User.get(services.users, "nobody", "correct horse") is None
    assert await created.check_password("correct horse")
    assert not await created.check_password("wrong horse")


async def test_seed_user_balance_moves_only_through_the_ledger(services: Services) -> None:
    user = await User.create(services.users, "alice", "correct horse")
    await user.add_balance(30)
    assert user.balance == 30
    assert await user.subtract_balance(12)
    assert user.balance == 18
    assert not await user.subtract_balance(19)
    assert user.balance == 18
    with pytest.raises(InvalidAmount):
        await user.add_balance(0)
    assert await balance(services, user.id) == (18, 0, 18)
    reloaded = await User.get(services.users, "alice", "correct horse")
    assert reloaded is not None and reloaded.balance == 18
    assert (await services.ml.process_task(reloaded, 1, [1, 2])).balance.balance_credits == 16


async def test_seed_transactions_list_every_movement_newest_first(services: Services) -> None:
    user_id = await new_user(services)
    made = [await Transaction.create(services.ledger, user_id, 2, f"top-up {i}")
            for i in range(105)]  # more than one page of the query
    made.append(await Transaction.create(services.ledger, user_id, -10, "direct charge"))
    listed = await Transaction.get_user_transactions(services.ledger, user_id)
    assert listed == made[::-1]
    assert [(t.kind, t.amount, t.balance_after) for t in listed[:2]] == [
        ("charge", -10, 200), ("top_up", 2, 210)]
    assert len({t.id for t in listed}) == 106


async def test_seed_ml_task_create_runs_a_prediction(services: Services) -> None:
    user_id = await new_user(services, credits=5)
    task = await MLTask.create(services.ml, user_id, 1, "1 2")
    assert (task.status, task.output_data, task.cost) == ("completed", [2.0, 4.0], 2)
    assert await MLTask.get_user_tasks(services.ledger, user_id) == [task]


# -- holds whose process died -----------------------------------------------------------------

def draft(cost_credits: int) -> TaskDraft:
    return TaskDraft(model_id=1, input_data=[1.0], input_indexes=[0], invalid=[],
                     cost_credits=cost_credits)


async def test_an_orphaned_hold_is_released_by_another_process(services: Services) -> None:
    user_id = await new_user(services, credits=10)
    dead = LedgerService(services.store, owner="dead")
    op = Operation(user_id=user_id, operation_id="op-1", kind="predict", fingerprint="f")
    ticket = await dead.submit_task(user_id, draft(4), op)
    assert ticket.run
    assert await balance(services, user_id) == (10, 4, 6)
    assert (await operation_row(services, user_id, "op-1"))["status"] == "pending"

    alive = LedgerService(services.store, owner="alive")
    assert await alive.release_orphaned_holds(lambda owner: False) == 1
    assert await balance(services, user_id) == (10, 0, 10)
    [task] = await MLTask.get_user_tasks(services.ledger, user_id)
    assert task.status == "failed" and "interrupted" in str(task.error)
    row = await operation_row(services, user_id, "op-1")
    assert row["status"] == "done"
    assert json.loads(row["outcome"]) == {"task_id": ticket.task_id, "cost": 4,
                                          "balance": {"balance": 10, "held": 0, "available": 10}}
    assert await alive.release_orphaned_holds(lambda owner: False) == 0


async def test_holds_of_live_processes_are_left_alone(services: Services) -> None:
    user_id = await new_user(services, credits=10)
    mine = LedgerService(services.store, owner="me")
    other = LedgerService(services.store, owner="other")
    for n, owner in enumerate([mine, other]):
        op = Operation(user_id=user_id, operation_id=f"op-{n}", kind="predict", fingerprint="f")
        assert (await owner.submit_task(user_id, draft(2), op)).run
    assert await mine.release_orphaned_holds(lambda owner: owner == "other") == 0
    assert await mine.release_orphaned_holds(lambda owner: False) == 1  # never its own
    assert await balance(services, user_id) == (10, 2, 8)


# -- the projections are the fold of the log --------------------------------------------------

async def test_rebuilding_the_projections_from_the_log_changes_nothing(
        services: Services) -> None:
    alice = await new_user(services, "alice", credits=10)
    bob = await new_user(services, "bob", credits=3)
    await services.ml.process_task(alice, 1, [1, 2])
    await services.ml.process_task(bob, 2, [1, 2])
    await services.ml.process_task(alice, 1, [1e308])
    tables = ["accounts", "holds", "transactions", "postings", "tasks"]
    db = services.store.read_db()
    before = {t: await db.fetchall(f"SELECT * FROM {t} ORDER BY 1, 2") for t in tables}
    assert await services.store.rebuild_projections() == await count_events(services.store)
    after = {t: await db.fetchall(f"SELECT * FROM {t} ORDER BY 1, 2") for t in tables}
    assert after == before
    total = await db.fetchone("SELECT SUM(amount_credits) AS s FROM postings")
    assert total == {"s": 0}


async def test_logging_in_over_and_over_keeps_the_token_table_bounded(
    services: Services,
) -> None:
    user = int((await services.users.register("ada", "correct horse")).id)
    tokens = [(await services.users.login("ada", "correct horse")).access_token
              for _ in range(MAX_LIVE_TOKENS + 10)]
    await services.users.logout(tokens[-2])
    await services.users.login("ada", "correct horse")
    rows = await services.store.read_db().fetchone(
        "SELECT COUNT(*) AS n FROM tokens WHERE user_id = ?", (user,))
    assert rows is not None and rows["n"] <= MAX_LIVE_TOKENS
    assert await services.users.user_for_token(tokens[-1]) == user  # the newest still work
    assert await services.users.user_for_token(tokens[-2]) is None  # revoked stays revoked
    assert await services.users.user_for_token(tokens[0]) is None  # the oldest gave way


async def test_api_logins_never_push_out_a_browser_session(services: Services) -> None:
    user = int((await services.users.register("eve", "correct horse")).id)
    session = (await services.users.issue_token(user, "session")).access_token
    for _ in range(MAX_LIVE_TOKENS + 5):
        await services.users.login("eve", "correct horse", "api")
    assert await services.users.user_for_token(session, "session") == user
