"""LedgerService: one method per use case, each one transaction: load, decide, append.

Every decision runs inside the write transaction, after the account is read in it, so no
interleaving of requests (or of processes sharing the file) can overdraw an account.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from events import (
    Event,
    Metadata,
    RecordedEvent,
    SqlEventStore,
    SqlSession,
    UniqueViolation,
)
from events.event import projected
from events.generation import Generation
from ledger import account as decide
from ledger import limits, queries, security_log, spend, usage
from ledger.account import Account
from ledger.control import (
    Operation,
    finish_task_operation,
    record_operation,
    replay_operation,
    set_password_hash,
)
from ledger.credential_cache import CredentialCache
from ledger.errors import InsufficientCredits, InvalidSetting, UnknownHold, UsernameTaken
from ledger.events import (
    AccountOpened,
    CreditsHeld,
    HoldReleased,
    HoldSettled,
    LimitsSet,
    TaskCompleted,
    TaskFailed,
    TaskRejected,
    TaskSubmitted,
    TimeZoneSet,
)
from ledger.limits import Limits, PeriodSpend
from ledger.projections import (
    BALANCE_FACT,
    TASK_COLUMNS,
    ZONE_FACT,
    rejected_task_row,
    whole_task_values,
)
from ledger.spend import KeyLimit
from ledger.usage import UsageReport
from ledger.views import (
    BalanceView,
    JsonValue,
    LimitsView,
    Page,
    Profile,
    RegisteredUser,
    TaskOutcome,
    TaskView,
    TopUpOutcome,
    TransactionView,
    stored_task_outcome,
    stored_top_up,
    task_outcome_from_stored,
    top_up_from_stored,
)
from ledger.whole_task import whole_task

T = TypeVar("T")


def _shown(limit_credits: int | None) -> str:
    return "none" if limit_credits is None else f"{limit_credits:,}"


def account_stream(user_id: int) -> str:
    return f"account-{user_id}"


def _as_event_field(values: Sequence[JsonValue]) -> list[Any]:
    return list(values)


@dataclass(frozen=True, kw_only=True)
class TaskDraft:
    """A validated prediction request, priced, before the ledger accepts it."""

    model_id: int
    input_data: Sequence[JsonValue]
    input_indexes: list[int]
    invalid: list[dict[str, object]]
    cost_credits: int
    model_version: str | None = None


@dataclass(frozen=True, kw_only=True)
class ModelRun:
    """What a model gave for a draft before the ledger saw it (the one-transaction path): the
    outputs (None for each row in `unpredictable`) and what they cost, or why the task failed.
    `describe(task_id)` is the charge's description; the task id is known only in the write."""

    describe: Callable[[int], str]
    output_data: Sequence[JsonValue] = ()
    cost_credits: int = 0
    unpredictable: Sequence[dict[str, object]] = ()
    problem: str | None = None


@dataclass(frozen=True, kw_only=True)
class TaskTicket:
    """What submitting a task gave: a hold to run the model under, or a final outcome."""

    task_id: int
    run: bool
    outcome: TaskOutcome | None


_NEXT_TASK_ID = "ledger.next_task_id"


async def _submitted(s: SqlSession, user_id: int, draft: TaskDraft) -> TaskSubmitted:
    """The draft as an event, under the next task id (read in the write: no two share one).
    Read once a batch: every task row is made from an event built here, so the jobs after
    this one in the same transaction take the ids after it (a job rolled back gives its id
    back with the memo)."""
    task_id = s.memo.get(_NEXT_TASK_ID)
    if task_id is None:
        row = await s.db.fetchone("SELECT COALESCE(MAX(id), 0) + 1 AS id FROM tasks")
        assert row is not None
        task_id = int(row["id"])
    s.memo[_NEXT_TASK_ID] = task_id + 1
    return TaskSubmitted(
        user_id=user_id, task_id=task_id, model_id=draft.model_id,
        input_data=_as_event_field(draft.input_data), input_indexes=draft.input_indexes,
        invalid=draft.invalid, cost_credits=draft.cost_credits,
        model_version=draft.model_version)


def _balance_after(account: Account, new: Sequence[Event]) -> BalanceView:
    """The balance after a one-write task's events: every hold among them is opened and
    closed among them (held credits end as they began), and the settled part is charged."""
    new = [part for event in new for part in event.parts()]
    held = {e.task_id for e in new if isinstance(e, CreditsHeld)}
    closed = {e.task_id for e in new if isinstance(e, HoldSettled | HoldReleased)}
    assert held == closed, "a one-write task leaves no hold open"
    charged = sum(e.amount_credits for e in new if isinstance(e, HoldSettled))
    return BalanceView(balance_credits=account.balance_credits - charged,
                       held_credits=account.held_credits)


def _task_written(recorded: Sequence[RecordedEvent]) -> TaskView:
    """The tasks row of a one-write task (whole, or rejected) as the projector wrote it."""
    recorded = projected(recorded)  # a task completed at once: its four facts
    task = whole_task(recorded)
    if task is not None:  # the events' values, which the row's JSON texts decode to
        values = dict(zip(TASK_COLUMNS, whole_task_values(task), strict=True))
        del values["user_id"]
        return TaskView(**values)
    assert len(recorded) == 1, "a one-write task is whole or rejected"
    return queries.task_view(dict(zip(TASK_COLUMNS, rejected_task_row(recorded[0]),
                                      strict=True)))


class LedgerService:
    """The credits use cases. `owner` names this process in the holds it opens."""

    def __init__(self, store: SqlEventStore, *, owner: str | None = None,
                 generation: Generation | None = None) -> None:
        self.store = store
        self.owner = owner or uuid.uuid4().hex
        # The store's word (ledger/credential_cache.py): on SQLite a mapped file, always
        # current; on PostgreSQL a LISTENer that vouches only once start()ed, which a serving
        # process does (web/app.py) and a tool that only writes need not.
        self.generation = (store.credential_generation(self.owner) if generation is None
                           else generation)
        self.credentials = CredentialCache(self.generation)

    async def transact_credentials(self, work: Callable[[SqlSession], Awaitable[T]]) -> T:
        """`store.transact(work)` for a write that ends or narrows credentials (a revocation,
        a suspension): when it returns, every process checks them again."""
        return await self.credentials.changing(self.store.transact, work)

    def _now(self) -> str:
        return self.store.clock().isoformat(timespec="microseconds")

    async def open_account(self, username: str, password_hash: str) -> RegisteredUser:
        async def work(s: SqlSession) -> RegisteredUser:
            if await queries.find_user_id(s.db, username) is not None:
                raise UsernameTaken(f"the username {username!r} is taken")
            row = await s.db.fetchone("SELECT COALESCE(MAX(user_id), 0) + 1 AS id FROM accounts")
            assert row is not None
            user_id = int(row["id"])
            opened = AccountOpened(user_id=user_id, username=username)
            await s.append(account_stream(user_id), 0, [opened], Metadata(actor="anonymous"))
            await set_password_hash(s.db, user_id, password_hash, self._now())
            account = await queries.get_account_row(s.db, user_id)
            assert account is not None
            return RegisteredUser(id=user_id, username=username, balance_credits=0,
                                  created_at=account["created_at"])

        try:
            return await self.store.transact(work)
        except UniqueViolation as exc:  # the UNIQUE backstop: another process won
            raise UsernameTaken(f"the username {username!r} is taken") from exc

    async def top_up(
        self, user_id: int, amount_credits: int, operation_id: str | None = None,
        description: str = "Top-up",
    ) -> TopUpOutcome:
        """Deposit credits. A repeated operation id returns the first outcome unchanged."""
        op = Operation(user_id=user_id, operation_id=operation_id or uuid.uuid4().hex,
                       kind="top_up", fingerprint=f"amount={amount_credits!r}")

        async def work(s: SqlSession) -> TopUpOutcome:
            if (stored := await replay_operation(s.db, op)) is not None:
                return top_up_from_stored(stored)
            account = await queries.load_account(s.db, user_id)
            new = decide.deposit(account, amount_credits, description)
            recorded = await s.append(account_stream(user_id), account.version, new,
                                      Metadata(operation_id=op.operation_id,
                                               actor=f"user:{user_id}"))
            outcome = await self._moved(s, user_id, recorded[-1].position)
            await record_operation(s.db, op, created_at=self._now(),
                                   outcome=stored_top_up(outcome))
            return outcome

        return await self.store.transact(work)

    async def withdraw(self, user_id: int, amount_credits: int, description: str) -> TopUpOutcome:
        """Charge credits directly (the seed's subtract_balance), outside any task."""

        async def work(s: SqlSession) -> TopUpOutcome:
            account = await queries.load_account(s.db, user_id)
            new = decide.withdraw(account, amount_credits, description)
            recorded = await s.append(account_stream(user_id), account.version, new,
                                      Metadata(actor=f"user:{user_id}"))
            return await self._moved(s, user_id, recorded[-1].position)

        return await self.store.transact(work)

    @staticmethod
    async def _moved(s: SqlSession, user_id: int, position: int) -> TopUpOutcome:
        return TopUpOutcome(transaction=await queries.get_transaction(s.db, user_id, position),
                            balance=await queries.get_balance(s.db, user_id))

    async def submit_task(self, user_id: int, draft: TaskDraft, op: Operation,
                          key: KeyLimit | None = None) -> TaskTicket:
        """Accept the task and hold its cost, or record it as rejected: for lack of credits,
        or because it would take the day's, the month's or the key's spending past its
        limit. The limits are read in the same write transaction as the hold, so no number
        of concurrent requests can pass one."""

        async def work(s: SqlSession) -> TaskTicket:
            if (stored := await replay_operation(s.db, op)) is not None:
                replayed = task_outcome_from_stored(stored)
                return TaskTicket(task_id=replayed.task_id, run=False, outcome=replayed)
            stream = account_stream(user_id)
            account, settings, logged = await queries.load_account_and_limits(
                s.db, user_id, stream)
            s.read_in_write(stream, logged)  # the append need not ask the log again
            submitted = await _submitted(s, user_id, draft)
            task_id = submitted.task_id
            refusal = None
            try:
                new = decide.submit_task(account, submitted, self.owner,
                                         None if key is None else key.key_id)
                refusal = await self._refusal(s, user_id, draft.cost_credits, key, settings)
                if refusal is not None:
                    new = [decide.reject_task(submitted, "spend_limit_reached")]
                outcome = None
            except InsufficientCredits:
                new = [decide.reject_task(submitted, "insufficient_balance")]
            await s.append(account_stream(user_id), account.version, new,
                           Metadata(operation_id=op.operation_id, actor=f"user:{user_id}"))
            if len(new) == 1:  # rejected: the outcome is final now
                outcome = TaskOutcome(task_id=task_id, cost_credits=draft.cost_credits,
                                      balance=await queries.get_balance(s.db, user_id),
                                      refusal=refusal)
            await record_operation(
                s.db, op, created_at=self._now(), task_id=task_id,
                outcome=None if outcome is None else stored_task_outcome(outcome))
            return TaskTicket(task_id=task_id, run=outcome is None, outcome=outcome)

        return await self.store.transact(work)

    async def replayed_task(self, op: Operation) -> TaskOutcome | None:
        """A prediction's stored outcome if its operation id was seen before, read without a
        write (IdempotencyConflict or OperationInProgress as in the write)."""
        stored = await replay_operation(self.store.read_db(), op)
        return None if stored is None else task_outcome_from_stored(stored)

    async def run_at_once(self, user_id: int, draft: TaskDraft, op: Operation,
                          key: KeyLimit | None, run: ModelRun
                          ) -> tuple[TaskOutcome, TaskView | None]:
        """The one-transaction path, for a model that already ran: accept and settle (or
        fail), or reject, in ONE write. The same checks as submit_task, in the same order and
        on the account read inside the write, so it is charged only on success and only if
        the available balance and the limits cover the whole quote. The two-phase path's four
        facts (a success as one event that stands for them, TaskCompletedAtOnce), so the
        projections and the audit's fold cannot tell them apart.
        Also returns the task as stored (None for a replayed operation id: read it after)."""

        async def work(s: SqlSession) -> tuple[TaskOutcome, TaskView | None]:
            if not op.fresh and (stored := await replay_operation(s.db, op)) is not None:
                return task_outcome_from_stored(stored), None  # the model's answer is dropped
            stream = account_stream(user_id)
            account, settings, logged = await queries.load_account_and_limits(
                s.db, user_id, stream)
            # Read under the write lock: the stream's version from the log, the balance and
            # zone from projections kept with it. The append and its projectors need not
            # read them again; the facts only if the account row is the log's latest (else
            # the append refuses it, ConcurrencyError, as it always did).
            s.read_in_write(stream, logged, {
                BALANCE_FACT: account.balance_credits, ZONE_FACT: settings.time_zone,
            } if logged == account.version else None)
            submitted = await _submitted(s, user_id, draft)
            task_id, key_id = submitted.task_id, None if key is None else key.key_id
            refusal = None
            try:
                if run.problem is not None:
                    new = decide.fail_at_once(account, submitted, self.owner, key_id,
                                              run.problem)
                else:
                    completed = TaskCompleted(
                        user_id=user_id, task_id=task_id,
                        output_data=_as_event_field(run.output_data),
                        cost_credits=run.cost_credits, unpredictable=list(run.unpredictable))
                    new = decide.complete_at_once(
                        account, submitted, self.owner, key_id, completed=completed,
                        charged_credits=run.cost_credits, description=run.describe(task_id))
                refusal = await self._refusal(s, user_id, draft.cost_credits, key, settings)
                if refusal is not None:
                    new = [decide.reject_task(submitted, "spend_limit_reached")]
            except InsufficientCredits:
                new = [decide.reject_task(submitted, "insufficient_balance")]
            # As the two-phase path reports it: what was charged, else what was quoted. A
            # completed task is one event (TaskCompletedAtOnce; four in older code), a
            # rejected one a TaskRejected: the last event tells them apart in either shape.
            charged = run.problem is None and not isinstance(new[-1], TaskRejected)
            cost_credits = run.cost_credits if charged else draft.cost_credits
            recorded = await s.append(account_stream(user_id), account.version, new,
                                      Metadata(operation_id=op.operation_id,
                                               actor=f"user:{user_id}"))
            # The balance and the task row as the projections now hold them, known from the
            # events just written (no read back: tests/integration/test_one_write_views.py).
            outcome = TaskOutcome(task_id=task_id, cost_credits=cost_credits,
                                  balance=_balance_after(account, new), refusal=refusal)
            if not op.fresh:
                await record_operation(s.db, op, created_at=self._now(), task_id=task_id,
                                       outcome=stored_task_outcome(outcome))
            return outcome, _task_written(recorded)

        return await self.store.transact(work)

    async def _refusal(self, s: SqlSession, user_id: int, cost_credits: int,
                       key: KeyLimit | None, settings: Limits) -> PeriodSpend | None:
        """The limit this cost would pass now, or None (`settings`: the account's, read in
        this write). Near a boundary the next period is checked too: the hold is stamped by
        the append's clock, a moment after this one."""
        now = self.store.clock()
        if settings.daily_credits is None and settings.monthly_credits is None and (
                key is None or key.monthly_limit_credits is None):
            return None  # nothing to enforce: no reads on the hot path
        periods = await spend.periods_at(s.db, user_id, now, key)
        later = now + limits.BOUNDARY_GRACE
        if any(later >= p.resets_at for p in periods):
            periods += await spend.periods_at(s.db, user_id, later, key)
        return limits.refused_by(periods, cost_credits)

    async def set_time_zone(self, user_id: int, time_zone: str,
                            client: str | None = None) -> Profile:
        """The account's time zone, an IANA name: its calendar days and months."""
        if not limits.is_time_zone(time_zone):
            raise InvalidSetting("time_zone", "an IANA time zone name, like Europe/Moscow")
        await self._append_setting(user_id, TimeZoneSet(user_id=user_id, time_zone=time_zone),
                                   client, f"time zone {time_zone}")
        return await self.profile(user_id)

    async def set_limits(self, user_id: int, daily_credits: int | None,
                         monthly_credits: int | None, client: str | None = None) -> LimitsView:
        """Replace both spend limits (None removes one). Spending so far still counts."""
        for name, value in (("daily_credits", daily_credits),
                            ("monthly_credits", monthly_credits)):
            try:
                limits.check_limit(value)
            except ValueError as exc:
                raise InvalidSetting(name, str(exc)) from None
        await self._append_setting(user_id, LimitsSet(
            user_id=user_id, daily_credits=daily_credits, monthly_credits=monthly_credits),
            client, f"daily {_shown(daily_credits)}, monthly {_shown(monthly_credits)}")
        return await self.limits(user_id)

    async def _append_setting(self, user_id: int, event: TimeZoneSet | LimitsSet,
                              client: str | None, detail: str) -> None:
        """The event, and with it (when a client is named) the owner's security log entry."""
        async def work(s: SqlSession) -> None:
            account = await queries.load_account(s.db, user_id)
            await s.append(account_stream(user_id), account.version, [event],
                           Metadata(actor=f"user:{user_id}"))
            if client is not None:
                await security_log.record(s.db, user_id=user_id, kind="limits_changed",
                                          client=client, at=self.store.clock(), detail=detail)

        await self.store.transact(work)

    async def limits(self, user_id: int, key: KeyLimit | None = None) -> LimitsView:
        """Each limit in its current period: spent (holds included), left, when it resets."""
        db = self.store.read_db()
        await queries.get_balance(db, user_id)  # AccountNotFound for a stranger
        settings = await spend.account_limits(db, user_id)
        daily, monthly = (await spend.periods_at(db, user_id, self.store.clock(), key))[:2]
        return LimitsView(time_zone=settings.time_zone, daily=daily, monthly=monthly)

    async def complete_task(
        self, user_id: int, task_id: int, output_data: Sequence[JsonValue], description: str,
        *, cost_credits: int | None = None, unpredictable: Sequence[dict[str, object]] = (),
    ) -> TaskOutcome:
        """Charge the held cost (or only `cost_credits` of it, releasing the rest) and record
        the predictions, in one append. `output_data` has None for each row in
        `unpredictable`, the rows the model could not predict."""

        async def work(s: SqlSession) -> TaskOutcome:
            account = await queries.load_account(s.db, user_id)
            if cost_credits is None:
                settled = decide.settle(account, task_id, description)
            else:
                settled = decide.settle_part(account, task_id, cost_credits, description)
            completed = TaskCompleted(
                user_id=user_id, task_id=task_id,
                output_data=_as_event_field(output_data),
                cost_credits=settled.amount_credits, unpredictable=list(unpredictable))
            await s.append(account_stream(user_id), account.version, [settled, completed])
            return await self._finish(s, user_id, task_id, settled.amount_credits)

        return await self.store.transact(work)

    async def fail_task(self, user_id: int, task_id: int, error: str) -> TaskOutcome:
        """Release the hold uncharged and record why the task failed."""

        async def work(s: SqlSession) -> TaskOutcome:
            account = await queries.load_account(s.db, user_id)
            released = decide.release(account, task_id, error)
            failed = TaskFailed(user_id=user_id, task_id=task_id, error=error)
            await s.append(account_stream(user_id), account.version, [released, failed])
            return await self._finish(s, user_id, task_id, released.amount_credits)

        return await self.store.transact(work)

    async def _finish(
        self, s: SqlSession, user_id: int, task_id: int, cost_credits: int
    ) -> TaskOutcome:
        outcome = TaskOutcome(task_id=task_id, cost_credits=cost_credits,
                              balance=await queries.get_balance(s.db, user_id))
        await finish_task_operation(s.db, task_id, stored_task_outcome(outcome))
        return outcome

    async def release_orphaned_holds(
        self, owner_is_alive: Callable[[str], bool | Awaitable[bool]],
        is_running: Callable[[int], bool] = lambda task_id: False,
        stale_after: timedelta = timedelta(minutes=2),
    ) -> int:
        """Fail the tasks nobody will finish, releasing their holds as events: those of a
        process that died, and this process's own that are no longer running (their settle
        failed, say on a full disk) once they are older than `stale_after`."""
        rows = await queries.open_holds(self.store.read_db())
        stale_before = self.store.clock() - stale_after
        released = 0
        for row in rows:
            if row["owner"] == self.owner:
                abandoned = not is_running(row["task_id"]) and datetime.fromisoformat(
                    row["opened_at"]) < stale_before
                reason = "abandoned: the service could not record the result"
            else:
                alive = owner_is_alive(row["owner"])  # asked after the holds were read
                abandoned = not (alive if isinstance(alive, bool) else await alive)
                reason = "interrupted: the service restarted while it ran"
            if not abandoned:
                continue
            try:
                await self.fail_task(row["user_id"], row["task_id"], reason)
                released += 1
            except UnknownHold:
                continue  # another process released it first
        return released

    # -- reads -----------------------------------------------------------------------------

    # Each read is scoped to one user: another user's task reads as absent.

    async def get_balance(self, user_id: int) -> BalanceView:
        return await queries.get_balance(self.store.read_db(), user_id)

    async def quick_balance(self, user_id: int) -> BalanceView:
        """get_balance, read on the event loop's thread where the store offers that (SQLite:
        point_read_db); the one-write path's read-side check, before the model runs."""
        point_read_db = getattr(self.store, "point_read_db", self.store.read_db)
        return await queries.get_balance(point_read_db(), user_id)

    async def profile(self, user_id: int) -> Profile:
        return await queries.get_profile(self.store.read_db(), user_id)

    async def transactions_page(
        self, user_id: int, *, limit: int = 20, starting_after: int | None = None,
        offset: int = 0,
    ) -> Page[TransactionView]:
        return await queries.list_transactions(self.store.read_db(), user_id, limit=limit,
                                               starting_after=starting_after, offset=offset)

    async def tasks_page(
        self, user_id: int, *, limit: int = 20, starting_after: int | None = None,
        offset: int = 0,
    ) -> Page[TaskView]:
        return await queries.list_tasks(self.store.read_db(), user_id, limit=limit,
                                        starting_after=starting_after, offset=offset)

    async def find_task(self, user_id: int, task_id: int) -> TaskView | None:
        return await queries.get_task(self.store.read_db(), user_id, task_id)

    async def all_transactions(self, user_id: int) -> list[TransactionView]:
        """Newest first, read page by page."""
        return await queries.everything(self.store.read_db(), user_id,
                                        queries.list_transactions)

    async def all_tasks(self, user_id: int) -> list[TaskView]:
        """Newest first, read page by page."""
        return await queries.everything(self.store.read_db(), user_id, queries.list_tasks)

    async def usage(self, user_id: int, first: date, last: date,
                    group_by: str = "day") -> UsageReport:
        """Charges per local day (every day of the range) or per model; the caller bounds
        the range to usage.MAX_RANGE_DAYS."""
        db = self.store.read_db()
        await queries.get_balance(db, user_id)  # AccountNotFound for a stranger
        return await usage.usage(db, user_id, first, last, group_by)

    async def today(self, user_id: int) -> date:
        """The account's calendar date now, in its time zone."""
        zone = await usage.time_zone_of(self.store.read_db(), user_id)
        return usage.today_in(zone, self.store.clock())
