"""The operator console's reads: users with their money, one user's histories, the ledger's
totals with their check, and the action log. Operators see across accounts; nobody else
reaches these (the web edge checks the role on every request)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from events import SqlDatabase
from ledger.projections import ADJUSTMENTS_ACCOUNT, REVENUE_ACCOUNT, TOP_UPS_ACCOUNT
from ledger.queries import MAX_PAGE
from ledger.views import Page

# The oldest open holds shown on the ledger page; the count and sum cover all of them.
SHOWN_HOLDS = 50


@dataclass(frozen=True, kw_only=True)
class AdminUser:
    id: int
    username: str
    created_at: str
    balance_credits: int
    held_credits: int
    spent_this_month_credits: int  # charges since the start of this calendar month, UTC
    last_activity_at: str | None  # the account's latest event
    is_operator: bool
    suspended: bool
    suspension_reason: str | None


@dataclass(frozen=True, kw_only=True)
class OperatorAction:
    id: int  # the event's position
    user_id: int
    operator_id: int | None  # None: the command line
    kind: str  # adjustment, suspend, resume, grant, revoke
    amount_credits: int | None
    reason: str
    created_at: str


@dataclass(frozen=True, kw_only=True)
class OpenHold:
    task_id: int
    user_id: int
    amount_credits: int
    opened_at: str
    age_s: float


@dataclass(frozen=True, kw_only=True)
class LedgerTotals:
    """`balances == top_ups + adjustments - revenue` when the books hold."""

    balances_credits: int
    top_ups_credits: int
    adjustments_credits: int
    revenue_credits: int
    accounts: int
    open_holds: int
    open_holds_credits: int
    oldest_holds: tuple[OpenHold, ...]

    @property
    def expected_credits(self) -> int:
        return self.top_ups_credits + self.adjustments_credits - self.revenue_credits

    @property
    def balanced(self) -> bool:
        return self.balances_credits == self.expected_credits


_USER_COLUMNS = """
    a.user_id, a.username, a.created_at, a.balance_credits, a.held_credits,
    COALESCE(f.is_operator, 0) AS is_operator, COALESCE(f.suspended, 0) AS suspended,
    f.reason AS suspension_reason,
    (SELECT e.recorded_at FROM events e WHERE e.stream_id = 'account-' || a.user_id
      AND e.version = a.version) AS last_activity_at,
    (SELECT COALESCE(-SUM(t.amount_credits), 0) FROM transactions t
      WHERE t.user_id = a.user_id AND t.kind = 'charge' AND t.created_at >= ?) AS spent
    FROM accounts a LEFT JOIN account_flags f ON f.user_id = a.user_id
"""


def month_start(now: datetime) -> str:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0).isoformat(
        timespec="microseconds")


def _user(row: dict[str, Any]) -> AdminUser:
    return AdminUser(
        id=int(row["user_id"]), username=row["username"], created_at=row["created_at"],
        balance_credits=int(row["balance_credits"]), held_credits=int(row["held_credits"]),
        spent_this_month_credits=int(row["spent"]), last_activity_at=row["last_activity_at"],
        is_operator=bool(row["is_operator"]), suspended=bool(row["suspended"]),
        suspension_reason=row["suspension_reason"])


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def list_users(db: SqlDatabase, now: datetime, *, q: str = "", limit: int = 20,
                     starting_after: int | None = None) -> Page[AdminUser]:
    """Newest account first; `q` matches a part of the username, or the exact id."""
    assert 1 <= limit <= MAX_PAGE
    cursor = starting_after if starting_after is not None else 2**62
    where, params = "a.user_id < ?", [month_start(now), cursor]
    if q:
        where += " AND (a.username_key LIKE ? ESCAPE '\\' OR a.user_id = ?)"
        params += [_like(q), int(q) if q.isascii() and q.isdigit() and len(q) < 16 else -1]
    rows = await db.fetchall(f"SELECT {_USER_COLUMNS} WHERE {where} ORDER BY a.user_id DESC "
                             "LIMIT ?", (*params, limit + 1))
    return Page(data=tuple(_user(r) for r in rows[:limit]), has_more=len(rows) > limit)


async def get_user(db: SqlDatabase, now: datetime, user_id: int) -> AdminUser | None:
    row = await db.fetchone(f"SELECT {_USER_COLUMNS} WHERE a.user_id = ?",
                            (month_start(now), user_id))
    return None if row is None else _user(row)


def _action(row: dict[str, Any]) -> OperatorAction:
    return OperatorAction(
        id=int(row["position"]), user_id=int(row["user_id"]), operator_id=row["operator_id"],
        kind=row["kind"], amount_credits=row["amount_credits"], reason=row["reason"],
        created_at=row["created_at"])


async def list_actions(db: SqlDatabase, *, user_id: int | None = None, limit: int = 20,
                       starting_after: int | None = None) -> Page[OperatorAction]:
    """Newest first, across accounts or for one."""
    assert 1 <= limit <= MAX_PAGE
    cursor = starting_after if starting_after is not None else 2**62
    where, params = "position < ?", [cursor]
    if user_id is not None:
        where, params = where + " AND user_id = ?", [*params, user_id]
    rows = await db.fetchall(f"SELECT * FROM operator_actions WHERE {where} "
                             "ORDER BY position DESC LIMIT ?", (*params, limit + 1))
    return Page(data=tuple(_action(r) for r in rows[:limit]), has_more=len(rows) > limit)


async def totals(db: SqlDatabase, now: datetime) -> LedgerTotals:
    """Every figure from one read transaction's snapshot would be ideal; these are read by
    one connection in a row, so a write between them can show a moment's imbalance (the
    audit is the exact check)."""
    balances = await db.fetchone("SELECT COALESCE(SUM(balance_credits), 0) AS s, "
                                 "COUNT(*) AS n FROM accounts")
    sides = {r["account"]: int(r["s"]) for r in await db.fetchall(
        "SELECT account, SUM(amount_credits) AS s FROM postings WHERE account IN (?, ?, ?) "
        "GROUP BY account", (TOP_UPS_ACCOUNT, REVENUE_ACCOUNT, ADJUSTMENTS_ACCOUNT))}
    held = await db.fetchone("SELECT COUNT(*) AS n, COALESCE(SUM(amount_credits), 0) AS s "
                             "FROM holds WHERE status = 'open'")
    oldest = await db.fetchall(
        "SELECT task_id, user_id, amount_credits, opened_at FROM holds WHERE status = 'open' "
        "ORDER BY opened_at, task_id LIMIT ?", (SHOWN_HOLDS,))
    assert balances is not None and held is not None
    return LedgerTotals(
        balances_credits=int(balances["s"]), accounts=int(balances["n"]),
        # The system side of each posting is the opposite of the users' side.
        top_ups_credits=-sides.get(TOP_UPS_ACCOUNT, 0),
        adjustments_credits=-sides.get(ADJUSTMENTS_ACCOUNT, 0),
        revenue_credits=sides.get(REVENUE_ACCOUNT, 0),
        open_holds=int(held["n"]), open_holds_credits=int(held["s"]),
        oldest_holds=tuple(OpenHold(
            task_id=int(r["task_id"]), user_id=int(r["user_id"]),
            amount_credits=int(r["amount_credits"]), opened_at=r["opened_at"],
            age_s=max(0.0, (now - datetime.fromisoformat(r["opened_at"])).total_seconds()))
            for r in oldest))


async def flags_of(db: SqlDatabase, user_id: int) -> tuple[bool, bool]:
    """(is_operator, suspended), read on every request that needs them."""
    row = await db.fetchone("SELECT is_operator, suspended FROM account_flags WHERE user_id = ?",
                            (user_id,))
    return (False, False) if row is None else (bool(row["is_operator"]), bool(row["suspended"]))
