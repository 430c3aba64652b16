"""Read-side queries over the projections. Every query is scoped to one user."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from events import SqlDatabase
from events.codec import fast_loads
from ledger.account import Account
from ledger.errors import AccountNotFound
from ledger.limits import Limits
from ledger.usernames import username_key
from ledger.views import BalanceView, Page, Profile, TaskView, TransactionView

MAX_PAGE = 100


# open_holds: how many, by holds_open (status, user_id), so that an account with none (every
# account but those with a two-phase task running) needs no second read for them.
_ACCOUNT = ("SELECT a.*, f.suspended AS suspended, (SELECT COUNT(*) FROM holds h "
            "WHERE h.status = 'open' AND h.user_id = a.user_id) AS open_holds{columns} "
            "FROM accounts a LEFT JOIN account_flags f ON f.user_id = a.user_id{joins} "
            "WHERE a.user_id = ?")
_WITH_LIMITS = (", s.user_id AS settings_user_id, s.time_zone AS settings_time_zone, "
                "s.daily_limit_credits, s.monthly_limit_credits, (SELECT COALESCE(MAX("
                "e.version), 0) FROM events e WHERE e.stream_id = ?) AS logged_version")
ACCOUNT_ONLY = _ACCOUNT.format(columns="", joins="")
ACCOUNT_AND_LIMITS = _ACCOUNT.format(
    columns=_WITH_LIMITS, joins=" LEFT JOIN account_settings s ON s.user_id = a.user_id")


async def load_account(db: SqlDatabase, user_id: int) -> Account:
    """The account as the projection holds it: the fold of its stream, kept up to date."""
    return await _account(db, user_id, await db.fetchone(ACCOUNT_ONLY, (user_id,)))


async def load_account_and_limits(db: SqlDatabase, user_id: int,
                                  stream_id: str) -> tuple[Account, Limits, int]:
    """load_account and spend.account_limits, the account's row and its settings read in
    one statement (the write of every prediction needs both), with the version of its
    stream `stream_id` as the log holds it (an index probe in the same statement: the
    append's check that the account read is the log's latest, without a statement)."""
    row = await db.fetchone(ACCOUNT_AND_LIMITS, (stream_id, user_id))
    account = await _account(db, user_id, row)
    assert row is not None
    logged = int(row["logged_version"])
    if row["settings_user_id"] is None:
        return account, Limits(), logged
    return account, Limits(daily_credits=row["daily_limit_credits"],
                           monthly_credits=row["monthly_limit_credits"],
                           time_zone=row["settings_time_zone"]), logged


async def _account(db: SqlDatabase, user_id: int, row: dict[str, Any] | None) -> Account:
    if row is None:
        raise AccountNotFound(f"no account {user_id}")
    holds = [] if row["open_holds"] == 0 else await db.fetchall(
        "SELECT task_id, amount_credits FROM holds WHERE user_id = ? AND status = 'open'",
        (user_id,))
    account = Account(
        user_id=row["user_id"], username=row["username"], version=row["version"],
        balance_credits=row["balance_credits"], held_credits=row["held_credits"],
        open_holds={h["task_id"]: h["amount_credits"] for h in holds},
        suspended=bool(row["suspended"]))
    account.check_invariants()
    return account


async def get_account_row(db: SqlDatabase, user_id: int) -> dict[str, Any] | None:
    return await db.fetchone("SELECT * FROM accounts WHERE user_id = ?", (user_id,))


async def find_user_id(db: SqlDatabase, username: str) -> int | None:
    row = await db.fetchone("SELECT user_id FROM accounts WHERE username_key = ?",
                            (username_key(username),))
    return None if row is None else int(row["user_id"])


async def get_balance(db: SqlDatabase, user_id: int) -> BalanceView:
    row = await db.fetchone(
        "SELECT balance_credits, held_credits FROM accounts WHERE user_id = ?", (user_id,))
    if row is None:
        raise AccountNotFound(f"no account {user_id}")
    return BalanceView(balance_credits=row["balance_credits"], held_credits=row["held_credits"])


async def get_profile(db: SqlDatabase, user_id: int) -> Profile:
    row = await get_account_row(db, user_id)
    if row is None:
        raise AccountNotFound(f"no account {user_id}")
    settings = await db.fetchone("SELECT time_zone FROM account_settings WHERE user_id = ?",
                                 (user_id,))
    return Profile(id=user_id, username=row["username"], created_at=row["created_at"],
                   balance=BalanceView(balance_credits=row["balance_credits"],
                                       held_credits=row["held_credits"]),
                   time_zone=settings["time_zone"] if settings else "UTC")


def transaction_view(row: dict[str, Any]) -> TransactionView:
    return TransactionView(
        id=row["id"], kind=row["kind"], amount_credits=row["amount_credits"],
        balance_after_credits=row["balance_after_credits"], description=row["description"],
        task_id=row["task_id"], created_at=row["created_at"])


async def get_transaction(db: SqlDatabase, user_id: int, transaction_id: int) -> TransactionView:
    row = await db.fetchone("SELECT * FROM transactions WHERE id = ? AND user_id = ?",
                            (transaction_id, user_id))
    assert row is not None, f"transaction {transaction_id} of user {user_id} is missing"
    return transaction_view(row)


async def _page(
    db: SqlDatabase, table: str, user_id: int, limit: int, starting_after: int | None,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], bool]:
    """Newest first. A cursor (`starting_after`, an id) is stable while new rows arrive."""
    assert 1 <= limit <= MAX_PAGE
    cursor = starting_after if starting_after is not None else 2**63 - 1
    rows = await db.fetchall(
        f"SELECT * FROM {table} WHERE user_id = ? AND id < ? ORDER BY id DESC LIMIT ? OFFSET ?",
        (user_id, cursor, limit + 1, offset))
    return rows[:limit], len(rows) > limit


class _Identified(Protocol):
    @property
    def id(self) -> int: ...


V = TypeVar("V", bound=_Identified)


async def everything(
    db: SqlDatabase, user_id: int, lister: Callable[..., Awaitable[Page[V]]]
) -> list[V]:
    """Every row a paged query gives, newest first, walked by cursor one page at a time."""
    page = await lister(db, user_id, limit=MAX_PAGE)
    found = list(page.data)
    while page.has_more:
        page = await lister(db, user_id, limit=MAX_PAGE, starting_after=found[-1].id)
        found += page.data
    return found


async def list_transactions(
    db: SqlDatabase, user_id: int, *, limit: int = 20, starting_after: int | None = None,
    offset: int = 0,
) -> Page[TransactionView]:
    rows, more = await _page(db, "transactions", user_id, limit, starting_after, offset)
    return Page(data=tuple(transaction_view(r) for r in rows), has_more=more)


def task_view(row: dict[str, Any]) -> TaskView:
    return TaskView(
        id=row["id"], model_id=row["model_id"], status=row["status"],
        input_data=fast_loads(row["input_data"]),
        input_indexes=fast_loads(row["input_indexes"]),
        output_data=None if row["output_data"] is None else fast_loads(row["output_data"]),
        invalid=fast_loads(row["invalid"]), cost_credits=row["cost_credits"],
        quoted_credits=row["quoted_credits"], error=row["error"],
        created_at=row["created_at"], updated_at=row["updated_at"],
        model_version=row.get("model_version"))


async def get_task(db: SqlDatabase, user_id: int, task_id: int) -> TaskView | None:
    """Another user's task is reported as absent, exactly like one that does not exist."""
    row = await db.fetchone("SELECT * FROM tasks WHERE id = ? AND user_id = ?",
                            (task_id, user_id))
    return None if row is None else task_view(row)


async def list_tasks(
    db: SqlDatabase, user_id: int, *, limit: int = 20, starting_after: int | None = None,
    offset: int = 0,
) -> Page[TaskView]:
    rows, more = await _page(db, "tasks", user_id, limit, starting_after, offset)
    return Page(data=tuple(task_view(r) for r in rows), has_more=more)


async def open_holds(db: SqlDatabase) -> list[dict[str, Any]]:
    """Every hold not yet settled or released, oldest task first."""
    return await db.fetchall(
        "SELECT task_id, user_id, owner, opened_at FROM holds WHERE status = 'open' "
        "ORDER BY task_id")
