"""Counter rows held for a write batch and written once, just before its COMMIT.

Some projection rows are counters that only ever grow by addition (`count = count + n`), and
that most writes never read back: usage per slot and day, the ledger's totals, spending per
slot (read back by a spend limit's check, which then has them written first, below).
Upserting them event by event costs a statement (and, in a batch of 16 predictions, 64
statements) inside the write lock, for rows nobody looks at before the batch commits. So a
projector hands such an addition to `add_sums`: in a write session it is held in the batch
(PendingSums, owned by the BatchMemo), rows with one key summed in Python, and the store
writes every table's rows in one multi-row upsert when the batch's jobs are done, in the same
transaction, before COMMIT (a failure there fails the batch, as a failed COMMIT does).
Addition commutes, so the rows are those an event-by-event replay leaves.

What keeps that exact:
- A job rolled back to its savepoint takes its additions with it (`mark`/`restore`, called
  through the BatchMemo's), and so do the rows held before it that a statement of the job made
  the session write: the rollback undid them, so they are held again.
- Any other statement of the session that names a table with held rows (a read, an UPDATE,
  a DELETE: a task's unpredictable rows taken off, a time zone's days refolded, a rebuild)
  first has them written (`SumsFirst`), so it sees, and acts on, every addition before it.
- Outside a write session (the audit's replay, the rebuild at open) `add_sums` upserts at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from events.sql import Params, SqlDatabase, read_words

Key = tuple[int | str, ...]

# Rows per upsert: a few columns each, far below SQLite's 32,766 parameters and PostgreSQL's
# 65,535; a batch (64 jobs at most) holds fewer.
UPSERT_ROWS = 200


@dataclass(frozen=True)
class SumTable:
    """A table of counters: `key` columns (its primary key), then `counts` columns, which an
    addition adds to (a new key starts at the addition)."""

    name: str
    key: tuple[str, ...]
    counts: tuple[str, ...]


@lru_cache(maxsize=512)
def upsert_sql(table: SumTable, rows: int) -> str:
    """One INSERT of `rows` rows that adds each row's counts to the row of its key."""
    columns = table.key + table.counts
    values = "(" + ", ".join(["?"] * len(columns)) + ")"
    added = ", ".join(f"{c} = {table.name}.{c} + excluded.{c}" for c in table.counts)
    return (f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES "
            + ", ".join([values] * rows)
            + f" ON CONFLICT ({', '.join(table.key)}) DO UPDATE SET {added}")


async def upsert_sums(db: SqlDatabase, table: SumTable,
                      rows: dict[Key, list[int]]) -> None:
    """`rows` (one per key: PostgreSQL refuses an upsert that meets one row twice) added."""
    items = list(rows.items())
    for start in range(0, len(items), UPSERT_ROWS):
        chunk = items[start:start + UPSERT_ROWS]
        await db.execute(upsert_sql(table, len(chunk)),
                         tuple(v for key, counts in chunk for v in (*key, *counts)))


Held = dict[str, dict[Key, list[int]]]  # table name -> key -> counts


def _add_to(keyed: dict[Key, list[int]], key: Key, counts: Sequence[int]) -> None:
    held = keyed.get(key)
    if held is None:
        keyed[key] = list(counts)
    else:
        for i, n in enumerate(counts):
            held[i] += n


def _merge(into: Held, rows: Held) -> None:
    for name, keyed in rows.items():
        target = into.setdefault(name, {})
        for key, counts in keyed.items():
            _add_to(target, key, counts)


class PendingSums:
    """The additions of one batch not yet written: `_before`, those of the jobs before the
    current one (`_before_written` once a statement of the current job had them written:
    inside its savepoint, so its rollback makes them pending again), and `_current`, the
    current job's since the last write."""

    def __init__(self) -> None:
        self._tables: dict[str, SumTable] = {}
        self._before: Held = {}
        self._before_written = False
        self._current: Held = {}
        self._unwritten: set[str] = set()  # names of the tables with rows held
        self._mark = 0

    def __bool__(self) -> bool:
        return bool(self._unwritten)

    def add(self, table: SumTable, key: Key, counts: tuple[int, ...]) -> None:
        keyed = self._current.get(table.name)
        if keyed is None:
            keyed = self._current[table.name] = {}
            self._tables[table.name] = table
            self._unwritten.add(table.name)
        _add_to(keyed, key, counts)

    def touched_by(self, query: str) -> bool:
        """Whether `query` names a table with rows held (a name elsewhere, say a column of
        that name, only has them written sooner)."""
        return not self._unwritten.isdisjoint(read_words(query))

    async def flush(self, db: SqlDatabase) -> None:
        """Every held row written, one upsert (or a few, UPSERT_ROWS) a table."""
        if not self._unwritten:
            return
        rows: Held = {}
        if not self._before_written:
            _merge(rows, self._before)
        _merge(rows, self._current)
        self._before_written, self._current = True, {}
        self._unwritten.clear()
        for name, keyed in rows.items():
            await upsert_sums(db, self._tables[name], keyed)

    def mark(self) -> int:
        """Before a job (after its savepoint): what is held now is the jobs' before it."""
        if self._before_written:
            self._before, self._before_written = self._current, False
        else:
            _merge(self._before, self._current)
        self._current = {}
        self._mark += 1
        return self._mark

    def restore(self, mark: int) -> None:
        """After the job's rollback to its savepoint: its additions dropped, and the rows
        held before it held again, written or not (the rollback undid their write). Also
        right for a job that failed having changed no row, with nothing rolled back: then
        it added nothing (additions come with an append) and wrote nothing held (a write of
        held rows changes rows), so nothing changes here."""
        assert mark == self._mark, "a mark is good until the next job's"
        self._before_written, self._current = False, {}
        self._unwritten = {name for name, keyed in self._before.items() if keyed}


class SumsFirst:
    """A write session's database: a statement that names a table with rows held has them
    written first, so every statement of the batch sees every addition made before it."""

    def __init__(self, db: SqlDatabase, sums: PendingSums) -> None:
        self.db = db
        self.sums = sums
        self.dialect = db.dialect

    @property
    def in_transaction(self) -> bool:
        return self.db.in_transaction

    # Each checks in line: a statement of the hot path pays a set test, no await more.
    async def execute(self, query: str, params: Params = ()) -> None:
        if self.sums and self.sums.touched_by(query):
            await self.sums.flush(self.db)
        await self.db.execute(query, params)

    async def executescript(self, script: str) -> None:
        if self.sums and self.sums.touched_by(script):
            await self.sums.flush(self.db)
        await self.db.executescript(script)

    async def fetchall(self, query: str, params: Params = ()) -> list[dict[str, Any]]:
        if self.sums and self.sums.touched_by(query):
            await self.sums.flush(self.db)
        return await self.db.fetchall(query, params)

    async def fetchone(self, query: str, params: Params = ()) -> dict[str, Any] | None:
        if self.sums and self.sums.touched_by(query):
            await self.sums.flush(self.db)
        return await self.db.fetchone(query, params)


async def add_sums(db: SqlDatabase, table: SumTable, key: Key,
                   counts: tuple[int, ...]) -> None:
    """Add `counts` to `table`'s row at `key`: held for the batch's flush in a write
    session, else upserted now."""
    if isinstance(db, SumsFirst):
        db.sums.add(table, key, counts)
    else:
        await upsert_sums(db, table, {key: list(counts)})
