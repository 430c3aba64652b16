"""Counter rows held for a write batch (events/sums.py): whatever mix of jobs that commit or
roll back to their savepoint, and of statements that have the held rows written midway, the
table ends as the additions of the jobs that stayed, summed, as one upsert each would leave."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from events.sql import Params
from events.sql_log import BatchMemo
from events.sums import SumsFirst, SumTable, add_sums, upsert_sql

COUNTS = SumTable("counts", ("owner", "kind"), ("events", "amount"))
OTHER = SumTable("other", ("owner",), ("amount",))
SCHEMA = ("CREATE TABLE counts (owner INTEGER, kind TEXT, events INTEGER, amount INTEGER, "
          "PRIMARY KEY (owner, kind)); "
          "CREATE TABLE other (owner INTEGER PRIMARY KEY, amount INTEGER)")


class Plain:
    """The SqlDatabase seam on a sqlite3 connection, counting the statements sent."""

    dialect = "sqlite"

    def __init__(self) -> None:
        self.raw = sqlite3.connect(":memory:", isolation_level=None)
        self.raw.row_factory = sqlite3.Row
        self.raw.executescript(SCHEMA)
        self.sent: list[str] = []

    @property
    def in_transaction(self) -> bool:
        return self.raw.in_transaction

    async def execute(self, query: str, params: Params = ()) -> None:
        self.sent.append(query)
        self.raw.execute(query, params)

    async def executescript(self, script: str) -> None:
        self.raw.executescript(script)

    async def fetchall(self, query: str, params: Params = ()) -> list[dict[str, Any]]:
        self.sent.append(query)
        return [dict(row) for row in self.raw.execute(query, params)]

    async def fetchone(self, query: str, params: Params = ()) -> dict[str, Any] | None:
        rows = await self.fetchall(query, params)
        return rows[0] if rows else None

    def table(self, name: str) -> dict[tuple[Any, ...], tuple[int, ...]]:
        rows = self.raw.execute(f"SELECT * FROM {name}").fetchall()
        width = 2 if name == "counts" else 1
        return {tuple(row[:width]): tuple(row[width:]) for row in rows}


def test_the_upsert_adds_every_count_at_its_key() -> None:
    assert upsert_sql(COUNTS, 2) == (
        "INSERT INTO counts (owner, kind, events, amount) VALUES (?, ?, ?, ?), (?, ?, ?, ?) "
        "ON CONFLICT (owner, kind) DO UPDATE SET events = counts.events + excluded.events, "
        "amount = counts.amount + excluded.amount")


def test_outside_a_session_an_addition_is_written_at_once() -> None:
    db = Plain()
    asyncio.run(add_sums(db, COUNTS, (1, "a"), (1, 5)))
    asyncio.run(add_sums(db, COUNTS, (1, "a"), (1, 2)))
    assert db.table("counts") == {(1, "a"): (2, 7)}


def test_a_batch_writes_each_table_once_summed_by_key() -> None:
    db, memo = Plain(), BatchMemo()
    session = SumsFirst(db, memo.sums)

    async def run() -> None:
        await db.execute("BEGIN")
        for owner in (1, 2, 1, 1):
            memo.mark()
            await add_sums(session, COUNTS, (owner, "a"), (1, 10))
            await add_sums(session, OTHER, (owner,), (3,))
            await session.fetchone("SELECT 1 AS one FROM elsewhere_not_named")
        await memo.flush(db)
        await db.execute("COMMIT")

    db.raw.execute("CREATE TABLE elsewhere_not_named (x)")
    db.raw.execute("INSERT INTO elsewhere_not_named VALUES (1)")
    asyncio.run(run())
    assert db.table("counts") == {(1, "a"): (3, 30), (2, "a"): (1, 10)}
    assert db.table("other") == {(1,): (9,), (2,): (3,)}
    assert [q.split()[2] for q in db.sent if q.startswith("INSERT")] == ["counts", "other"]


# A step of a batch: a job (its additions, whether a statement of it names `counts` midway,
# whether it is rolled back), or a statement between jobs naming a table.
additions = st.lists(st.tuples(st.sampled_from([COUNTS, OTHER]), st.integers(1, 3),
                               st.integers(0, 4)), max_size=4)
jobs = st.tuples(additions, st.booleans(), st.booleans())


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(jobs, max_size=6), min_size=1, max_size=4))
def test_held_rows_are_those_of_the_jobs_that_stayed(batches: list[list[Any]]) -> None:
    db = Plain()
    expected: dict[str, dict[tuple[Any, ...], list[int]]] = {"counts": {}, "other": {}}

    def add(into: dict[tuple[Any, ...], list[int]], key: tuple[Any, ...],
            counts: tuple[int, ...]) -> None:
        held = into.setdefault(key, [0] * len(counts))
        for i, n in enumerate(counts):
            held[i] += n

    async def run() -> None:
        for batch in batches:
            memo = BatchMemo()
            session = SumsFirst(db, memo.sums)
            await db.execute("BEGIN")
            for job_additions, peek, fails in batch:
                await db.execute("SAVEPOINT job")
                mark = memo.mark()
                mine: list[tuple[SumTable, tuple[Any, ...], tuple[int, ...]]] = []
                for number, (table, owner, amount) in enumerate(job_additions):
                    key = (owner, "k") if table is COUNTS else (owner,)
                    counts = (1, amount) if table is COUNTS else (amount,)
                    await add_sums(session, table, key, counts)
                    mine.append((table, key, counts))
                    if peek and number == 0:  # the rows held so far are written here
                        seen = await session.fetchall("SELECT * FROM counts")
                        assert {(r["owner"], r["kind"]): [r["events"], r["amount"]]
                                for r in seen} == {
                            k: v for k, v in _with(expected["counts"], mine).items()}
                if fails:
                    await db.execute("ROLLBACK TO job")
                    memo.restore(mark)
                else:
                    for table, key, counts in mine:
                        add(expected[table.name], key, counts)
                await db.execute("RELEASE job")
            await memo.flush(db)
            await db.execute("COMMIT")

    asyncio.run(run())
    for name in ("counts", "other"):
        assert db.table(name) == {k: tuple(v) for k, v in expected[name].items()}


def _with(committed: dict[tuple[Any, ...], list[int]],
          mine: list[tuple[SumTable, tuple[Any, ...], tuple[int, ...]]]
          ) -> dict[tuple[Any, ...], list[int]]:
    """`counts` as the jobs that stayed and this job's additions so far leave it."""
    out = {k: list(v) for k, v in committed.items()}
    for table, key, counts in mine:
        if table is COUNTS:
            held = out.setdefault(key, [0, 0])
            for i, n in enumerate(counts):
                held[i] += n
    return out
