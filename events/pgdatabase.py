"""The SqlDatabase seam on PostgreSQL: asyncpg, `?` placeholders, rows as dicts.

Driver errors are wrapped here, once: a unique violation is UniqueViolation; a lost or refused
connection, a timeout or a server shutting down is StoreUnavailable; anything else (a bug in
our SQL) is raised as it is.
"""

from __future__ import annotations

import asyncio
import re
from functools import lru_cache
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # ships no type hints

from events.errors import StoreError, StoreUnavailable, UniqueViolation
from events.sql import Params

_UNAVAILABLE = (
    asyncpg.PostgresConnectionError,           # class 08: the connection is gone
    asyncpg.exceptions.OperatorInterventionError,  # 57: shutdown, statement_timeout, cancel
    asyncpg.exceptions.LockNotAvailableError,  # lock_timeout
    asyncpg.exceptions.InsufficientResourcesError,  # 53: disk full, too many connections
    asyncpg.exceptions.IdleInTransactionSessionTimeoutError,
    asyncpg.exceptions.ReadOnlySQLTransactionError,  # a standby, or a read-only server
    asyncpg.exceptions.TransactionRollbackError,  # 40: serialization failure, deadlock
    # The protocol is still busy with what the server sent as it went down (a FATAL
    # "terminating connection"): the connection is unusable, though not yet closed.
    asyncpg.exceptions.InternalClientError,
    OSError, TimeoutError, asyncio.TimeoutError,  # cannot connect; command_timeout
)


def wrap_pg_error(exc: BaseException) -> StoreError | None:
    """The store error an operating fault maps to, or None for a programming error."""
    if isinstance(exc, StoreError):
        return exc
    if isinstance(exc, asyncpg.UniqueViolationError):
        return UniqueViolation(str(exc))
    if isinstance(exc, _UNAVAILABLE):
        return StoreUnavailable(f"PostgreSQL: {type(exc).__name__}: {exc}")
    if isinstance(exc, asyncpg.InterfaceError) and "closed" in str(exc):
        return StoreUnavailable(f"PostgreSQL: {exc}")
    return None


def wrap(exc: Exception) -> Exception:
    return wrap_pg_error(exc) or exc


# String literals, quoted names, comments, casts, placeholders, and everything else.
_TOKENS = re.compile(
    r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|::|\?|:[A-Za-z_]\w*|[^'\"\-?:]+|.",
    re.DOTALL)


@lru_cache(maxsize=1024)
def to_postgres(query: str) -> tuple[str, tuple[str, ...] | None]:
    """`?` → `$1, $2…` (or `:name` → `$n`, with the names in order), leaving string literals,
    quoted names, comments and `::` casts alone. Cached: our SQL is a fixed set of strings."""
    out: list[str] = []
    names: list[str] = []
    count = 0
    for token in _TOKENS.findall(query):
        if token == "?":
            count += 1
            out.append(f"${count}")
        elif token.startswith(":") and token != "::" and len(token) > 1:
            name = token[1:]
            if name not in names:
                names.append(name)
            out.append(f"${names.index(name) + 1}")
        else:
            out.append(token)
    if count and names:
        raise ValueError("a query mixes ? and :name placeholders")
    return "".join(out), (tuple(names) if names else None)


def _args(query: str, params: Params) -> tuple[str, tuple[Any, ...]]:
    sql, names = to_postgres(query)
    if isinstance(params, dict):
        if names is None and params:
            raise ValueError("named parameters need :name placeholders")
        return sql, tuple(params[name] for name in names or ())
    return sql, tuple(params)


_INTEGER = re.compile(r"\bINTEGER\b", re.IGNORECASE)


def portable_ddl(script: str) -> str:
    """Our SQLite DDL, for PostgreSQL: SQLite's INTEGER holds 64 bits, PostgreSQL's only 32
    (balances reach 10^12), so it becomes BIGINT. The rest of our DDL means the same on both."""
    return _INTEGER.sub("BIGINT", script)


class PgDatabase:
    """execute / fetchall / fetchone on one asyncpg connection or on a pool.

    On a pool each statement takes a connection of its own, so each read is one consistent
    statement; a transaction needs a connection (the store's writer has one).
    """

    dialect = "postgresql"

    def __init__(self, target: asyncpg.Connection | asyncpg.Pool) -> None:
        self.target = target

    @property
    def in_transaction(self) -> bool:
        return isinstance(self.target, asyncpg.Connection) and self.target.is_in_transaction()

    async def execute(self, query: str, params: Params = ()) -> None:
        sql, args = _args(query, params)
        try:
            await self.target.execute(sql, *args)
        except Exception as exc:
            raise wrap(exc) from exc

    async def executescript(self, script: str) -> None:
        """Several statements, without parameters, in one round trip (DDL made portable)."""
        if not script.strip():
            return  # asyncpg trips over an empty query string
        try:
            await self.target.execute(portable_ddl(script))
        except Exception as exc:
            raise wrap(exc) from exc

    async def fetchall(self, query: str, params: Params = ()) -> list[dict[str, Any]]:
        sql, args = _args(query, params)
        try:
            rows = await self.target.fetch(sql, *args)
        except Exception as exc:
            raise wrap(exc) from exc
        return [dict(row) for row in rows]

    async def fetchone(self, query: str, params: Params = ()) -> dict[str, Any] | None:
        rows = await self.fetchall(query, params)
        return rows[0] if rows else None
