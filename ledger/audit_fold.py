"""The ledger's projections folded in memory, for the audit's fast path: the same rows the
projectors in ledger/projections.py, ledger/key_projection.py, ledger/spend.py,
ledger/admin_projection.py and (in ledger/audit_fold_usage.py, ledger/audit_fold_totals.py)
ledger/usage.py and ledger/totals.py write, as
tuples in their tables' column order, for one group of accounts at a time.

It is a second statement of those projectors, kept honest two ways: a test folds a history
of every kind of event both ways and wants the same rows (tests/integration/test_audit_fast.py),
and anything this fold does not expect (a row the SQL would refuse, a missing row, an event
about another account) raises `Unexpected`, and the audit then replays through the
projectors themselves.
So this fold only ever has to say "equal" where the projectors would.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from events import Event
from events.codec import canonical_json
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
    KeyCreated,
    KeyRevoked,
    LimitsSet,
    OperatorRoleGranted,
    OperatorRoleRevoked,
    TaskCompleted,
    TaskCompletedAtOnce,
    TaskFailed,
    TaskRejected,
    TaskSubmitted,
    TimeZoneSet,
    completed_at_once_parts,
)
from ledger.limits import SLOT_S
from ledger.projections import ADJUSTMENTS_ACCOUNT, REVENUE_ACCOUNT, TOP_UPS_ACCOUNT
from ledger.spend import NO_KEY
from ledger.usernames import username_key

Row = tuple[Any, ...]
# What isoformat(timespec="microseconds") writes for a UTC instant: a stored time in this
# shape that fromisoformat read is its own isoformat (ASCII digits only: \d takes others).
_CANONICAL_AT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}\+00:00")
Handler = Callable[[int, int, Any, str, datetime], None]


TABLES = ("accounts", "holds", "transactions", "postings", "tasks", "api_keys",
          "account_settings", "spend", "spend_holds", "account_flags", "operator_actions")
USAGE_TABLES = ("usage_slots", "usage_days", "usage_tasks", "usage_zones")  # the usage fold's


class Unexpected(Exception):
    """Something the projectors' SQL might treat otherwise: the projectors must decide."""


class Fold:
    """The projection tables of some accounts, as dicts of mutable rows keyed as in SQL."""

    def __init__(self) -> None:
        self.accounts: dict[int, list[Any]] = {}
        self.holds: dict[int, list[Any]] = {}
        self.transactions: list[Row] = []
        self.postings: list[Row] = []
        self.tasks: dict[int, list[Any]] = {}
        self.api_keys: dict[str, list[Any]] = {}  # by key id; the table's key is position
        self.account_settings: dict[int, list[Any]] = {}
        self.spend: dict[tuple[int, str, int], int] = {}
        self.spend_holds: dict[int, Row] = {}
        self.account_flags: dict[int, list[Any]] = {}
        self.operator_actions: list[Row] = []
        # Imported here: that module raises this one's Unexpected.
        from ledger.audit_fold_totals import TotalsFold
        from ledger.audit_fold_usage import UsageFold
        self.usage = UsageFold()
        self.totals = TotalsFold()
        self._usage_handlers = self.usage.handlers
        self._last_balance: dict[int, int] = {}
        # The last stored time seen (at first one equal to no text) and the text the tables
        # get for it.
        self._at: tuple[object, str] = (object(), "")
        handlers: dict[type[Event], Handler] = {
            CreditsDeposited: self._deposited, CreditsWithdrawn: self._withdrawn,
            CreditsHeld: self._held, HoldSettled: self._resolved, HoldReleased: self._resolved,
            TaskSubmitted: self._task_opened, TaskRejected: self._task_opened,
            TaskCompleted: self._completed, TaskFailed: self._failed,
            KeyCreated: self._key_created, KeyRevoked: self._key_revoked,
            TimeZoneSet: self._time_zone, LimitsSet: self._limits,
            CreditsAdjusted: self._adjusted, AccountSuspended: self._suspended,
            AccountResumed: self._resumed, OperatorRoleGranted: self._role,
            OperatorRoleRevoked: self._role,
        }
        self._handlers = {cls.type_name: handler for cls, handler in handlers.items()}

    def apply(self, position: int, user_id: int, version: int, type_name: str,
              event: dict[str, Any], text: str, recorded_at: datetime) -> None:
        """One event of account `user_id`'s stream (its fields, as the codec would give them
        to the event's class; its stored `recorded_at` text and that text parsed), as all
        seven projectors fold it."""
        if text != self._at[0]:  # the events of one append share their time
            self._at = (text, text if _CANONICAL_AT.fullmatch(text) else recorded_at.isoformat(
                timespec="microseconds"))
        at = self._at[1]
        if event.get("user_id", user_id) != user_id:
            raise Unexpected("an event about another account than its stream's")
        if type_name == AccountOpened.type_name:
            self._opened(user_id, version, event, at)
            self.usage.apply(type_name, user_id, event, recorded_at)
            return
        if type_name == TaskCompletedAtOnce.type_name:  # its four facts, as projected
            for part_type, part in completed_at_once_parts(event):
                self.apply(position, user_id, version, part_type, part, text, recorded_at)
            return
        handler = self._handlers.get(type_name)
        if handler is None:  # a type newer than this fold: the projectors must fold it
            raise Unexpected(f"an event type the fold does not know: {type_name}")
        handler(position, user_id, event, at, recorded_at)
        if (usage := self._usage_handlers.get(type_name)) is not None:  # None: no usage
            usage(user_id, event, recorded_at)
        self.totals.apply(type_name, user_id, event, self.tasks)
        if (account := self.accounts.get(user_id)) is not None:
            account[4] = version
            if not 0 <= account[6] <= account[5]:
                raise Unexpected("a balance or a hold out of bounds")

    def _opened(self, user_id: int, version: int, event: dict[str, Any], at: str) -> None:
        if user_id in self.accounts or user_id in self.account_settings:
            raise Unexpected("an account opened twice")
        self.accounts[user_id] = [user_id, event["username"], username_key(event["username"]),
                                  at, version, 0, 0]
        self.account_settings[user_id] = [user_id, "UTC", None, None]

    def _move(self, user_id: int, balance_change: int, held_change: int) -> None:
        if (account := self.accounts.get(user_id)) is not None:
            account[5] += balance_change
            account[6] += held_change

    def _transaction(self, position: int, user_id: int, kind: str, amount: int,
                     description: str, task_id: int | None, system: str, at: str) -> None:
        balance_after = self._last_balance.get(user_id, 0) + amount
        if balance_after < 0:
            raise Unexpected("a transaction leaves a negative balance")
        self._last_balance[user_id] = balance_after
        self.transactions.append((position, user_id, kind, amount, balance_after, description,
                                  task_id, at))
        self.postings.append((position, f"user:{user_id}", amount))
        self.postings.append((position, system, -amount))

    def _deposited(self, position: int, user_id: int, event: Any, at: str,
                   recorded_at: datetime) -> None:
        self._move(user_id, event["amount_credits"], 0)
        self._transaction(position, user_id, "top_up", event["amount_credits"],
                          event["description"], None, TOP_UPS_ACCOUNT, at)

    def _withdrawn(self, position: int, user_id: int, event: Any, at: str,
                   recorded_at: datetime) -> None:
        self._move(user_id, -event["amount_credits"], 0)
        self._transaction(position, user_id, "charge", -event["amount_credits"],
                          event["description"], None, REVENUE_ACCOUNT, at)
        self._spend(user_id, NO_KEY, _slot(recorded_at), event["amount_credits"])

    def _held(self, position: int, user_id: int, event: Any, at: str,
              recorded_at: datetime) -> None:
        if event["task_id"] in self.holds or event["task_id"] in self.spend_holds:
            raise Unexpected("a task held twice")
        if event["amount_credits"] < 0 or event["owner"] is None:
            raise Unexpected("a hold the table refuses")
        self.holds[event["task_id"]] = [event["task_id"], user_id, event["amount_credits"],
                                        event["owner"], "open", at]
        self._move(user_id, 0, event["amount_credits"])
        slot, key_id = _slot(recorded_at), event.get("key_id") or NO_KEY
        self.spend_holds[event["task_id"]] = (event["task_id"], user_id, key_id, slot)
        self._spend(user_id, key_id, slot, event["amount_credits"])

    def _resolved(self, position: int, user_id: int, event: Any, at: str,
                  recorded_at: datetime) -> None:
        settled = "released_credits" in event  # HoldSettled; HoldReleased has a reason
        charged = event["amount_credits"] if settled else 0
        returned = event["released_credits"] if settled else event["amount_credits"]
        hold = self.holds.get(event["task_id"])
        if hold is not None and hold[4] == "open":
            hold[4] = "settled" if settled else "released"
        self._move(user_id, -charged, -(charged + returned))
        if settled:
            self._transaction(position, user_id, "charge", -event["amount_credits"],
                              event["description"], event["task_id"], REVENUE_ACCOUNT, at)
        spent = self.spend_holds.pop(event["task_id"], None)
        if spent is None:
            raise Unexpected("a hold resolved that was never taken")
        if returned:
            key = (user_id, spent[2], spent[3])
            if key not in self.spend:
                raise Unexpected("spending returned to a slot never spent in")
            self._spend(user_id, spent[2], spent[3], -returned)

    def _spend(self, user_id: int, key_id: str, slot: int, credits: int) -> None:
        key = (user_id, key_id, slot)
        total = self.spend.get(key, 0) + credits
        if total < 0:
            raise Unexpected("negative spending")
        self.spend[key] = total

    def _task_opened(self, position: int, user_id: int, event: Any, at: str,
                     recorded_at: datetime) -> None:
        if event["task_id"] in self.tasks:
            raise Unexpected("a task submitted twice")
        rejected = "reason" in event  # TaskRejected; TaskSubmitted has none
        self.tasks[event["task_id"]] = [
            event["task_id"], user_id, event["model_id"], "rejected" if rejected else "pending",
            json_text(event["input_data"]), json_text(event["input_indexes"]), None,
            json_text(event["invalid"]), event["cost_credits"], 0,
            event["reason"] if rejected else None, at, at, event["model_version"]]

    def _completed(self, position: int, user_id: int, event: Any, at: str,
                   recorded_at: datetime) -> None:
        task = self.tasks.get(event["task_id"])
        if task is None or event["cost_credits"] < 0:
            raise Unexpected("a task completed that the table refuses")
        if event["unpredictable"]:
            merged = [*json.loads(task[7]), *event["unpredictable"]]
            task[7] = json_text(sorted(merged, key=lambda entry: int(str(entry["index"]))))
        task[3], task[6], task[9], task[12] = ("completed", json_text(event["output_data"]),
                                               event["cost_credits"], at)

    def _failed(self, position: int, user_id: int, event: Any, at: str,
                recorded_at: datetime) -> None:
        if (task := self.tasks.get(event["task_id"])) is not None:
            task[3], task[10], task[12] = "failed", event["error"], at

    def _key_created(self, position: int, user_id: int, event: Any, at: str,
                     recorded_at: datetime) -> None:
        if event["key_id"] in self.api_keys or event["scope"] not in ("predict", "read"):
            raise Unexpected("a key the table refuses")
        self.api_keys[event["key_id"]] = [
            position, event["key_id"], user_id, event["name"], event["scope"], event["prefix"],
            event["last4"], event["monthly_limit_credits"], at, event["expires_at"], None]

    def _key_revoked(self, position: int, user_id: int, event: Any, at: str,
                     recorded_at: datetime) -> None:
        key = self.api_keys.get(event["key_id"])
        if key is None:
            raise Unexpected("a key revoked that this fold does not hold")
        if key[2] == user_id and key[10] is None:
            key[10] = at

    def _time_zone(self, position: int, user_id: int, event: Any, at: str,
                   recorded_at: datetime) -> None:
        if event["time_zone"] is None:
            raise Unexpected("a time zone the table refuses")
        if (settings := self.account_settings.get(user_id)) is not None:
            settings[1] = event["time_zone"]

    def _limits(self, position: int, user_id: int, event: Any, at: str,
                recorded_at: datetime) -> None:
        for limit in (event["daily_credits"], event["monthly_credits"]):
            if limit is not None and limit < 0:
                raise Unexpected("a limit the table refuses")
        if (settings := self.account_settings.get(user_id)) is not None:
            settings[2], settings[3] = event["daily_credits"], event["monthly_credits"]

    def _adjusted(self, position: int, user_id: int, event: Any, at: str,
                  recorded_at: datetime) -> None:
        self._move(user_id, event["amount_credits"], 0)
        self._transaction(position, user_id, "adjustment", event["amount_credits"],
                          event["reason"], None, ADJUSTMENTS_ACCOUNT, at)
        self._action(position, user_id, event["operator_id"], "adjustment",
                     event["amount_credits"], event["reason"], at)

    def _suspended(self, position: int, user_id: int, event: Any, at: str,
                   recorded_at: datetime) -> None:
        self._flags(user_id, at, suspended=True, reason=event["reason"])
        self._action(position, user_id, event["operator_id"], "suspend", None, event["reason"],
                     at)

    def _resumed(self, position: int, user_id: int, event: Any, at: str,
                 recorded_at: datetime) -> None:
        self._flags(user_id, at, suspended=False, reason=event["reason"])
        self._action(position, user_id, event["operator_id"], "resume", None, event["reason"],
                     at)

    def _role(self, position: int, user_id: int, event: Any, at: str,
              recorded_at: datetime) -> None:
        granted = "granted_by" in event  # OperatorRoleGranted; OperatorRoleRevoked has revoked_by
        by = event["granted_by"] if granted else event["revoked_by"]
        self._flags(user_id, at, is_operator=granted)
        self._action(position, user_id, None, "grant" if granted else "revoke", None,
                     f"from the command line by {by}", at)

    def _flags(self, user_id: int, at: str, *, suspended: bool | None = None,
               is_operator: bool | None = None, reason: str | None = None) -> None:
        """As AdminProjector._flags: the row replaced whole, the other flag and (for a role
        change) the suspension's reason kept."""
        old = self.account_flags.get(user_id) or [user_id, 0, 0, None, at]
        self.account_flags[user_id] = [
            user_id, old[1] if is_operator is None else int(is_operator),
            old[2] if suspended is None else int(suspended),
            old[3] if suspended is None else reason, at]

    def _action(self, position: int, user_id: int, operator_id: Any, kind: str,
                amount_credits: Any, reason: Any, at: str) -> None:
        if not isinstance(reason, str):  # NOT NULL, and a text the table would keep as is
            raise Unexpected("an operator action the table refuses")
        self.operator_actions.append((position, user_id, operator_id, kind, amount_credits,
                                      reason, at))

    def known_types(self) -> set[str]:
        return {AccountOpened.type_name, TaskCompletedAtOnce.type_name, *self._handlers}

    def rows(self, table: str) -> list[Row]:
        """The rows of one projection table, in its columns' order."""
        if table == "spend":
            return [(*key, spent) for key, spent in self.spend.items()]
        if table in USAGE_TABLES:
            return self.usage.rows(table)
        if table == "account_totals":
            return self.totals.rows()
        if table not in TABLES:  # a projection newer than this fold
            raise Unexpected(f"a projection table the fold does not know: {table}")
        held = getattr(self, table)
        values = held.values() if isinstance(held, dict) else held
        return [tuple(row) for row in values]


# orjson writes what canonical_json writes but for some floats: NaN (null), an exponent
# (1e16 for 1e+16) and fixed digits below 1e-4 (0.00001 for 1e-05). Texts with either shape
# are left to canonical_json (a sweep of 700,000 floats found no other difference; the
# tests keep checking), as is what orjson refuses (integers beyond 64 bits, lone surrogates).
_ORJSON_DIFFERS = re.compile(rb"[0-9][eE]|null|0\.0000")


def json_text(value: Any) -> str:
    """canonical_json(value), quicker: a task's inputs and outputs are most of the replay's
    encoding (orjson agrees with canonical_json on every code point: tests/unit)."""
    if type(value) is list and not value:  # most tasks' invalid and unpredictable rows
        return "[]"
    try:
        text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return canonical_json(value)
    return canonical_json(value) if _ORJSON_DIFFERS.search(text) else text.decode()


def _slot(at: datetime) -> int:
    return int(at.timestamp()) // SLOT_S  # as ledger.limits.slot_of
