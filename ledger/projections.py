"""Read models folded from the log, written in the same transaction as their events.

accounts + holds: balances and open reservations; transactions + postings: every credit
movement, as the user sees it and as double entry; tasks: every prediction request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from events import Projector, RecordedEvent, SqlDatabase
from events.codec import canonical_json
from events.projection import NO_FACTS
from events.rows import projected_time
from ledger.events import (
    AccountOpened,
    CreditsAdjusted,
    CreditsDeposited,
    CreditsHeld,
    CreditsWithdrawn,
    HoldReleased,
    HoldSettled,
    TaskCompleted,
    TaskFailed,
    TaskRejected,
    TaskSubmitted,
)
from ledger.key_projection import KeysProjector
from ledger.usernames import username_key
from ledger.whole_task import whole_task

TOP_UPS_ACCOUNT = "system:top_ups"
REVENUE_ACCOUNT = "system:ml_revenue"
ADJUSTMENTS_ACCOUNT = "system:adjustments"  # the other side of an operator's correction

# Facts a writer hands the projectors of an append (SqlLogSession.read_in_write): the account
# as read in the write, just before the append. BALANCE_FACT is accounts.balance_credits,
# which equals the balance_after_credits of the account's last transaction (both fold the
# same four movements from 0: deposits, withdrawals, adjustments, settles); ZONE_FACT is
# account_settings.time_zone, which equals usage_zones.time_zone (both start as 'UTC' at
# AccountOpened and follow every TimeZoneSet).
BALANCE_FACT = "balance_credits"
ZONE_FACT = "time_zone"


def user_account(user_id: int) -> str:
    return f"user:{user_id}"


def _at(recorded: RecordedEvent) -> str:
    return projected_time(recorded)


class AccountsProjector:
    name = "accounts"
    # 2: username_key is ledger.usernames.username_key (casefold + look-alikes), not lower().
    version = 2
    tables: tuple[str, ...] = ("accounts", "holds")
    # The CHECKs restate the ledger's invariants: a bug that breaks one aborts the write.
    schema = """
    CREATE TABLE IF NOT EXISTS accounts (
        user_id         INTEGER PRIMARY KEY,
        username        TEXT    NOT NULL,
        username_key    TEXT    NOT NULL UNIQUE,
        created_at      TEXT    NOT NULL,
        version         INTEGER NOT NULL,
        balance_credits INTEGER NOT NULL CHECK (balance_credits >= 0),
        held_credits    INTEGER NOT NULL CHECK (held_credits BETWEEN 0 AND balance_credits)
    );
    CREATE TABLE IF NOT EXISTS holds (
        task_id         INTEGER PRIMARY KEY,
        user_id         INTEGER NOT NULL,
        amount_credits  INTEGER NOT NULL CHECK (amount_credits >= 0),
        owner           TEXT    NOT NULL,
        status          TEXT    NOT NULL CHECK (status IN ('open', 'settled', 'released')),
        opened_at       TEXT    NOT NULL
    );
    CREATE INDEX IF NOT EXISTS holds_open ON holds (status, user_id);
    """

    async def apply(self, db: SqlDatabase, recorded: RecordedEvent) -> None:
        event = recorded.event
        if isinstance(event, AccountOpened):
            await db.execute(
                "INSERT INTO accounts VALUES (?, ?, ?, ?, ?, 0, 0)",
                (event.user_id, event.username, username_key(event.username), _at(recorded),
                 recorded.version))
            return
        balance_change, held_change = 0, 0
        if isinstance(event, CreditsDeposited):
            balance_change = event.amount_credits
        elif isinstance(event, CreditsWithdrawn):
            balance_change = -event.amount_credits
        elif isinstance(event, CreditsAdjusted):
            balance_change = event.amount_credits
        elif isinstance(event, CreditsHeld):
            held_change = event.amount_credits
            await db.execute("INSERT INTO holds VALUES (?, ?, ?, ?, 'open', ?)",
                             (event.task_id, event.user_id, event.amount_credits, event.owner,
                              _at(recorded)))
        elif isinstance(event, HoldSettled | HoldReleased):
            charged = event.amount_credits if isinstance(event, HoldSettled) else 0
            returned = event.released_credits if isinstance(event, HoldSettled) else (
                event.amount_credits)
            held_change, balance_change = -(charged + returned), -charged
            status = "settled" if isinstance(event, HoldSettled) else "released"
            await db.execute("UPDATE holds SET status = ? WHERE task_id = ? AND status = 'open'",
                             (status, event.task_id))
        await db.execute(
            "UPDATE accounts SET version = ?, balance_credits = balance_credits + ?, "
            "held_credits = held_credits + ? WHERE user_id = ?",
            (recorded.version, balance_change, held_change, _user_of(recorded)))

    async def apply_all(self, db: SqlDatabase, appended: Sequence[RecordedEvent],
                        facts: Mapping[str, Any] = NO_FACTS) -> None:
        """A whole task in one write: its hold row once, in its final status, and the
        account once, charged (held nets to zero); anything else event by event."""
        if (task := whole_task(appended)) is None:
            for recorded in appended:
                await self.apply(db, recorded)
            return
        held, resolved = task[1].event, task[2].event
        assert isinstance(held, CreditsHeld) and isinstance(resolved, HoldSettled | HoldReleased)
        settled = isinstance(resolved, HoldSettled)
        await db.execute("INSERT INTO holds VALUES (?, ?, ?, ?, ?, ?)",
                         (held.task_id, held.user_id, held.amount_credits, held.owner,
                          "settled" if settled else "released", _at(task[1])))
        await db.execute(
            "UPDATE accounts SET version = ?, balance_credits = balance_credits + ?, "
            "held_credits = held_credits + 0 WHERE user_id = ?",
            (task[-1].version, -resolved.amount_credits if settled else 0,
             _user_of(task[-1])))


TASK_COLUMNS = ("id", "user_id", "model_id", "status", "input_data", "input_indexes",
                "output_data", "invalid", "quoted_credits", "cost_credits", "error",
                "created_at", "updated_at", "model_version")


def whole_task_values(task: Sequence[RecordedEvent]) -> tuple[Any, ...]:
    """The tasks row of a whole task (whole_task) as it ends, in TASK_COLUMNS order, its JSON
    columns as values (the events' own, read from their stored text): what the one-write
    path shows without reading the row back, and what whole_task_row encodes."""
    submitted, finished = task[0].event, task[3].event
    assert isinstance(submitted, TaskSubmitted)
    assert isinstance(finished, TaskCompleted | TaskFailed)
    invalid, output, cost_credits, error = submitted.invalid, None, 0, None
    if isinstance(finished, TaskCompleted):
        output, cost_credits = finished.output_data, finished.cost_credits
        if finished.unpredictable:  # merged as _invalid_after merges them
            invalid = sorted([*invalid, *finished.unpredictable],
                             key=lambda entry: int(str(entry["index"])))
    else:
        error = finished.error
    return (submitted.task_id, submitted.user_id, submitted.model_id,
            "completed" if isinstance(finished, TaskCompleted) else "failed",
            submitted.input_data, submitted.input_indexes, output, invalid,
            submitted.cost_credits, cost_credits, error, _at(task[0]), _at(task[3]),
            submitted.model_version)


JSON_COLUMNS = (4, 5, 6, 7)  # input_data, input_indexes, output_data, invalid


def whole_task_row(task: Sequence[RecordedEvent]) -> tuple[object, ...]:
    """whole_task_values as the projector inserts them (None stays NULL)."""
    values = list(whole_task_values(task))
    for column in JSON_COLUMNS:
        if values[column] is not None:
            values[column] = canonical_json(values[column])
    return tuple(values)


def rejected_task_row(recorded: RecordedEvent) -> tuple[object, ...]:
    """The tasks row a TaskRejected makes (TasksProjector.apply), in TASK_COLUMNS order."""
    event, at = recorded.event, _at(recorded)
    assert isinstance(event, TaskRejected)
    return (event.task_id, event.user_id, event.model_id, "rejected",
            canonical_json(event.input_data), canonical_json(event.input_indexes), None,
            canonical_json(event.invalid), event.cost_credits, 0, event.reason, at, at,
            event.model_version)


def _user_of(recorded: RecordedEvent) -> int:
    return int(recorded.stream_id.removeprefix("account-"))


class TransactionsProjector:
    name = "transactions"
    # 2: operators' adjustments, kind 'adjustment' (the CHECK changed).
    version = 2
    tables: tuple[str, ...] = ("transactions", "postings")
    schema = """
    CREATE TABLE IF NOT EXISTS transactions (
        id                    INTEGER PRIMARY KEY,
        user_id               INTEGER NOT NULL,
        kind                  TEXT    NOT NULL CHECK (kind IN ('top_up', 'charge', 'adjustment')),
        amount_credits        INTEGER NOT NULL,
        balance_after_credits INTEGER NOT NULL CHECK (balance_after_credits >= 0),
        description           TEXT    NOT NULL,
        task_id               INTEGER,
        created_at            TEXT    NOT NULL
    );
    CREATE INDEX IF NOT EXISTS transactions_by_user ON transactions (user_id, id);
    CREATE TABLE IF NOT EXISTS postings (
        position       INTEGER NOT NULL,
        account        TEXT    NOT NULL,
        amount_credits INTEGER NOT NULL,
        PRIMARY KEY (position, account)
    );
    """

    async def apply(self, db: SqlDatabase, recorded: RecordedEvent) -> None:
        await self._move(db, recorded, None)

    async def apply_all(self, db: SqlDatabase, appended: Sequence[RecordedEvent],
                        facts: Mapping[str, Any] = NO_FACTS) -> None:
        """A whole task in one write moves credits once (its settle, if any): from the
        balance the writer read just before (BALANCE_FACT), no read of the last
        transaction; anything else event by event."""
        balance = facts.get(BALANCE_FACT)
        if (task := whole_task(appended)) is None or type(balance) is not int:
            for recorded in appended:
                await self._move(db, recorded, None)
            return
        await self._move(db, task[2], balance)

    async def _move(self, db: SqlDatabase, recorded: RecordedEvent,
                    balance_before: int | None) -> None:
        """The event's movement, if it is one; `balance_before` the account's balance
        before it when known (else read: the last transaction's balance after)."""
        event = recorded.event
        movement: tuple[str, int, str, int | None, str]
        if isinstance(event, CreditsDeposited):
            movement = ("top_up", event.amount_credits, event.description, None,
                        TOP_UPS_ACCOUNT)
        elif isinstance(event, HoldSettled | CreditsWithdrawn):
            task_id = event.task_id if isinstance(event, HoldSettled) else None
            movement = ("charge", -event.amount_credits, event.description, task_id,
                        REVENUE_ACCOUNT)
        elif isinstance(event, CreditsAdjusted):
            movement = ("adjustment", event.amount_credits, event.reason, None,
                        ADJUSTMENTS_ACCOUNT)
        else:
            return
        kind, amount, description, task_id, system_account = movement
        if balance_before is None:
            last = await db.fetchone(
                "SELECT balance_after_credits AS b FROM transactions WHERE user_id = ? "
                "ORDER BY id DESC LIMIT 1", (event.user_id,))
            balance_before = last["b"] if last else 0
        balance_after = balance_before + amount
        await db.execute("INSERT INTO transactions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (recorded.position, event.user_id, kind, amount, balance_after,
                          description, task_id, _at(recorded)))
        # Double entry: the user's side and the system's side of one movement sum to zero.
        await db.execute("INSERT INTO postings VALUES (?, ?, ?), (?, ?, ?)",
                         (recorded.position, user_account(event.user_id), amount,
                          recorded.position, system_account, -amount))


class TasksProjector:
    name = "tasks"
    # 2: model_version; the model's unpredictable rows join `invalid` at completion.
    version = 2
    tables: tuple[str, ...] = ("tasks",)
    schema = """
    CREATE TABLE IF NOT EXISTS tasks (
        id            INTEGER PRIMARY KEY,
        user_id       INTEGER NOT NULL,
        model_id      INTEGER NOT NULL,
        status        TEXT    NOT NULL
                      CHECK (status IN ('pending', 'completed', 'failed', 'rejected')),
        input_data    TEXT    NOT NULL,
        input_indexes TEXT    NOT NULL,
        output_data   TEXT,
        invalid       TEXT    NOT NULL,
        quoted_credits INTEGER NOT NULL,
        cost_credits  INTEGER NOT NULL CHECK (cost_credits >= 0),
        error         TEXT,
        created_at    TEXT    NOT NULL,
        updated_at    TEXT    NOT NULL,
        model_version TEXT
    );
    CREATE INDEX IF NOT EXISTS tasks_by_user ON tasks (user_id, id);
    -- The tasks still running, for the metrics at start-up: as small as the tasks in flight.
    CREATE INDEX IF NOT EXISTS tasks_pending ON tasks (id, model_id) WHERE status = 'pending';
    """

    async def apply(self, db: SqlDatabase, recorded: RecordedEvent) -> None:
        event, at = recorded.event, _at(recorded)
        if isinstance(event, TaskRejected):
            await db.execute(
                "INSERT INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rejected_task_row(recorded))
        elif isinstance(event, TaskSubmitted):
            await db.execute(
                "INSERT INTO tasks VALUES (?, ?, ?, 'pending', ?, ?, NULL, ?, ?, 0, NULL, ?, ?, ?)",
                (event.task_id, event.user_id, event.model_id,
                 canonical_json(event.input_data), canonical_json(event.input_indexes),
                 canonical_json(event.invalid), event.cost_credits, at, at,
                 event.model_version))
        elif isinstance(event, TaskCompleted):
            invalid = await self._invalid_after(db, event)
            await db.execute(
                "UPDATE tasks SET status = 'completed', output_data = ?, cost_credits = ?, "
                "invalid = ?, updated_at = ? WHERE id = ?",
                (canonical_json(event.output_data), event.cost_credits, invalid, at,
                 event.task_id))
        elif isinstance(event, TaskFailed):
            await db.execute(
                "UPDATE tasks SET status = 'failed', error = ?, updated_at = ? WHERE id = ?",
                (event.error, at, event.task_id))


    async def apply_all(self, db: SqlDatabase, appended: Sequence[RecordedEvent],
                        facts: Mapping[str, Any] = NO_FACTS) -> None:
        """A whole task in one write: its row inserted once, as it ends; else one by one."""
        if (task := whole_task(appended)) is None:
            for recorded in appended:
                await self.apply(db, recorded)
            return
        await db.execute("INSERT INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         whole_task_row(task))

    @staticmethod
    async def _invalid_after(db: SqlDatabase, event: TaskCompleted) -> str:
        """The rows refused at submission and those the model could not predict, by index."""
        row = await db.fetchone("SELECT invalid FROM tasks WHERE id = ?", (event.task_id,))
        assert row is not None, f"task {event.task_id} completed before it was submitted"
        if not event.unpredictable:
            return str(row["invalid"])
        merged = [*json.loads(row["invalid"]), *event.unpredictable]
        return canonical_json(sorted(merged, key=lambda entry: int(str(entry["index"]))))


def ledger_projectors() -> list[Projector]:
    from ledger.admin_projection import AdminProjector
    from ledger.spend import SpendProjector  # it folds the same events, in its own module
    from ledger.totals import TotalsProjector  # after TasksProjector: it reads a task's model
    from ledger.usage import UsageProjector

    return [AccountsProjector(), TransactionsProjector(), TasksProjector(), KeysProjector(),
            SpendProjector(), AdminProjector(), UsageProjector(), TotalsProjector()]
