"""The SqlDatabase seam on PostgreSQL: asyncpg, `?` placeholders, rows as dicts.

Driver errors are wrapped here, once: a unique violation is UniqueViolation; a lost or refused
connection, a timeout or a server shutting down is StoreUnavailable; anything else (a bug in
our SQL) is raised as it is.

Inside a transaction, writes whose result nobody reads (`execute` returns nothing) are
coalesced: queued, and sent in one round trip as data-modifying CTEs of one statement, just
before the next read (riding on it when the read touches none of their tables), the next
other statement, or `flush()`. See `Coalesced` for what keeps that exact.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # ships no type hints

from events.errors import ConcurrencyError, StoreError, StoreUnavailable, UniqueViolation
from events.sql import Params, read_words

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


_WRITE = re.compile(r"\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+([A-Za-z_]\w*)\b",
                    re.IGNORECASE)
_EVENTS_INSERT = re.compile(r"\s*INSERT\s+INTO\s+events\s*\(([^)]*)\)", re.IGNORECASE)


@dataclass(frozen=True)
class WriteShape:
    """A statement that may be queued: the table it writes and every name it mentions; for
    an append to the log, where its first row's stream id and version are among the
    arguments (its unique violation is the appender's ConcurrencyError)."""

    table: str
    words: frozenset[str]
    append_columns: tuple[int, int] | None = None

    def append_of(self, args: tuple[Any, ...]) -> tuple[str, int] | None:
        """(stream id, expected version) of an append: the version before its first row."""
        if self.append_columns is None:
            return None
        stream, version = self.append_columns
        return str(args[stream]), int(args[version]) - 1


@lru_cache(maxsize=1024)
def write_shape(query: str) -> WriteShape | None:
    """The shape of a plain INSERT/UPDATE/DELETE that may be queued, or None: one statement
    (no `;`), not already a WITH; to the events table, only an INSERT that names its
    stream_id and version columns (so its unique violation maps back to the append)."""
    match = _WRITE.match(query)
    if match is None or ";" in query:
        return None
    table = match.group(1).lower()
    if table != "events":
        return WriteShape(table, read_words(query))
    columns = _EVENTS_INSERT.match(query)
    names = [c.strip().lower() for c in columns.group(1).split(",")] if columns else []
    if "stream_id" not in names or "version" not in names:
        return None
    return WriteShape(table, read_words(query),
                      (names.index("stream_id"), names.index("version")))


# $n outside string literals, quoted names and comments.
_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|\$(\d+)")


def _renumber(sql: str, offset: int) -> str:
    if not offset:
        return sql
    return _PLACEHOLDER.sub(
        lambda m: f"${int(m.group(1)) + offset}" if m.group(1) else m.group(0), sql)


class Coalesced:
    """Queued writes, to be sent as one statement `WITH w1 AS (…), w2 AS (…) <tail>`.

    All parts of one statement see the same snapshot and run in no set order, so a write joins
    the queue only if no queued write mentions its table and it mentions no queued write's
    table (two writes to one row, or a write that reads another's table, go in two trips). A
    read rides on the queue under the same rule; otherwise the queue is sent before it. The
    writes are the job's own and inside its savepoint: an error they raise at the flush fails
    the job that queued them, and a rollback drops them (`clear`).
    """

    def __init__(self) -> None:
        self._parts: list[tuple[str, tuple[Any, ...]]] = []
        self._tables: set[str] = set()
        self._words: set[str] = set()
        # The queued append to the log, if any (one at most: one part a table).
        self.append: tuple[str, int] | None = None

    def __bool__(self) -> bool:
        return bool(self._parts)

    def conflicts(self, shape: WriteShape) -> bool:
        return shape.table in self._words or not self._tables.isdisjoint(shape.words)

    def may_ride(self, words: frozenset[str]) -> bool:
        return self._tables.isdisjoint(words) and "with" not in words

    def add(self, shape: WriteShape, sql: str, args: tuple[Any, ...]) -> None:
        self._parts.append((sql, args))
        self._tables.add(shape.table)
        self._words |= shape.words
        if shape.append_columns is not None:
            self.append = shape.append_of(args)

    def clear(self) -> None:
        self._parts.clear()
        self._tables.clear()
        self._words.clear()
        self.append = None

    def take(self, tail: str, tail_args: tuple[Any, ...] = ()) -> tuple[str, tuple[Any, ...]]:
        """The queue and `tail` as one statement with its arguments; the queue is then empty
        but for `append`, kept until the next `add` or `clear` to name a failed append."""
        parts, self._parts = self._parts, []
        self._tables.clear()
        self._words.clear()
        if len(parts) == 1 and tail == "SELECT 1":
            return parts[0]
        args: list[Any] = []
        for _, part_args in parts:
            args.extend(part_args)
        args.extend(tail_args)
        return _merged(tuple(sql for sql, _ in parts), tail), tuple(args)


@lru_cache(maxsize=1024)
def _merged(parts: tuple[str, ...], tail: str) -> str:
    """`WITH w1 AS (…), w2 AS (…) tail`, each part's `$n` shifted past the parts before it.
    Cached: a job's mix of writes repeats from one job to the next."""
    ctes: list[str] = []
    offset = 0
    for number, sql in enumerate(parts, start=1):
        # The newline ends a trailing `-- comment` before the parenthesis.
        ctes.append(f"w{number} AS ({_renumber(sql, offset)}\n)")
        offset += _count_placeholders(sql)
    return "WITH " + ", ".join(ctes) + " " + _renumber(tail, offset)


def _count_placeholders(sql: str) -> int:
    numbers = [int(m.group(1)) for m in _PLACEHOLDER.finditer(sql) if m.group(1)]
    return max(numbers, default=0)


_INTEGER = re.compile(r"\bINTEGER\b", re.IGNORECASE)


def portable_ddl(script: str) -> str:
    """Our SQLite DDL, for PostgreSQL: SQLite's INTEGER holds 64 bits, PostgreSQL's only 32
    (balances reach 10^12), so it becomes BIGINT. The rest of our DDL means the same on both."""
    return _INTEGER.sub("BIGINT", script)


class PgDatabase:
    """execute / fetchall / fetchone on one asyncpg connection or on a pool.

    On a pool each statement takes a connection of its own, so each read is one consistent
    statement; a transaction needs a connection (the store's writer has one), and only there
    are writes coalesced.
    """

    dialect = "postgresql"

    def __init__(self, target: asyncpg.Connection | asyncpg.Pool) -> None:
        self.target = target
        self._on_connection = isinstance(target, asyncpg.Connection)
        self._queue = Coalesced()

    @property
    def in_transaction(self) -> bool:
        return self._on_connection and self.target.is_in_transaction()

    async def execute(self, query: str, params: Params = ()) -> None:
        shape = write_shape(query)
        if shape is not None and self._on_connection and self.target.is_in_transaction():
            if self._queue.conflicts(shape):
                await self.flush()
            self._queue.add(shape, *_args(query, params))
            return
        if query.lstrip()[:8].upper() == "ROLLBACK":
            self._queue.clear()  # what was queued goes with what the rollback undoes
        else:
            await self.flush()
        sql, args = _args(query, params)
        try:
            await self.target.execute(sql, *args)
        except Exception as exc:
            raise wrap(exc) from exc

    async def flush(self) -> None:
        """Send the queued writes now (one round trip); their errors surface here."""
        if not self._queue:
            return
        sql, args = self._queue.take("SELECT 1")
        try:
            await self.target.execute(sql, *args)
        except Exception as exc:
            raise self._flush_error(exc) from exc
        self._queue.append = None

    def _flush_error(self, exc: Exception) -> Exception:
        """A queued append's unique violation is its ConcurrencyError, as if sent at once."""
        append, self._queue.append = self._queue.append, None
        if (append is not None and isinstance(exc, asyncpg.UniqueViolationError)
                and getattr(exc, "table_name", None) == "events"):
            return ConcurrencyError(*append)
        return wrap(exc)

    async def executescript(self, script: str) -> None:
        """Several statements, without parameters, in one round trip (DDL made portable)."""
        await self.flush()
        if not script.strip():
            return  # asyncpg trips over an empty query string
        try:
            await self.target.execute(portable_ddl(script))
        except Exception as exc:
            raise wrap(exc) from exc

    async def fetchall(self, query: str, params: Params = ()) -> list[dict[str, Any]]:
        sql, args = _args(query, params)
        rode = False
        if self._queue:
            if self._queue.may_ride(read_words(query)):  # one trip: the writes, then the read
                sql, args = self._queue.take(sql, args)
                rode = True
            else:
                await self.flush()
        try:
            rows = await self.target.fetch(sql, *args)
        except Exception as exc:
            raise (self._flush_error(exc) if rode else wrap(exc)) from exc
        if rode:
            self._queue.append = None
        return [dict(row) for row in rows]

    async def fetchone(self, query: str, params: Params = ()) -> dict[str, Any] | None:
        rows = await self.fetchall(query, params)
        return rows[0] if rows else None
