"""Projections: read models written in the same transaction as the events they fold.

Each projector has a `version`; the versions a database's tables were built with are kept in
`projection_versions`. When a projector's tables change shape (a new column, say), its
version goes up, and the store's `open()` drops and rebuilds those tables from the log in the
same transaction that reads the versions: an existing database never serves a stale shape.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Protocol

from events.codec import EventCodec
from events.event import RecordedEvent, projected
from events.rows import StoredRow
from events.sql import SqlDatabase

META_SCHEMA = """
CREATE TABLE IF NOT EXISTS projection_versions (
    name    TEXT    PRIMARY KEY,
    version INTEGER NOT NULL
);
"""


class Projector(Protocol):
    """Folds events into tables. `apply` must be deterministic: a replay gives the same rows.
    Raise `version` whenever `schema` or the rows `apply` writes change. Rows that are only
    ever added to may go through `events.sums.add_sums`: in a write they are then held and
    written once per batch, before its COMMIT (or before any statement naming their table)."""

    name: str
    schema: str
    tables: tuple[str, ...]

    async def apply(self, db: SqlDatabase, recorded: RecordedEvent) -> None: ...


NO_FACTS: Mapping[str, Any] = MappingProxyType({})


async def project(db: SqlDatabase, projectors: Sequence[Projector],
                  appended: Sequence[RecordedEvent],
                  facts: Mapping[str, Any] = NO_FACTS) -> None:
    """The events of one append, projector by projector. A projector with `apply_all` is
    given them together, to write each row once (it must leave the rows `apply` one by one
    would: the audit's replay folds event by event and compares), with `facts`: what the
    writer read of the stream's state just before this append, in this transaction
    (SqlLogSession.read_in_write), which it may use instead of reading it again. A composite
    event reaches them as its parts (Event.parts)."""
    appended = projected(appended)
    for projector in projectors:
        apply_all = getattr(projector, "apply_all", None)
        if apply_all is not None:
            await apply_all(db, appended, facts)
            continue
        for recorded in appended:
            await projector.apply(db, recorded)


async def apply_each(db: SqlDatabase, projectors: Sequence[Projector],
                     recorded: RecordedEvent) -> None:
    """One stored event folded by every projector, event by event (a rebuild, the audit's
    replay): a composite as its parts, as the append projected it."""
    for fact in projected((recorded,)):
        for projector in projectors:
            await projector.apply(db, fact)


def projector_version(projector: Projector) -> int:
    # Projectors written before versions existed are version 1.
    return int(getattr(projector, "version", 1))


async def stale_projectors(db: SqlDatabase, projectors: Sequence[Projector]) -> list[Projector]:
    """Those whose stored version differs from the code's, or was never stored (a database
    older than the versions table: its shape is unknown, so it is rebuilt)."""
    rows = await db.fetchall("SELECT name, version FROM projection_versions")
    stored = {row["name"]: int(row["version"]) for row in rows}
    return [p for p in projectors if stored.get(p.name) != projector_version(p)]


async def drop_tables(db: SqlDatabase, projectors: Sequence[Projector]) -> None:
    for projector in projectors:
        for table in projector.tables:
            await db.execute(f"DROP TABLE IF EXISTS {table}")


async def refold(db: SqlDatabase, projectors: Sequence[Projector], codec: EventCodec,
                 rows: AsyncIterator[StoredRow]) -> int:
    """Fold the whole log into the (freshly created, empty) tables of `projectors` and store
    their versions; the number of events folded. Runs inside the caller's transaction."""
    count = 0
    async for row in rows:
        await apply_each(db, projectors, row.to_recorded(codec))
        count += 1
    for projector in projectors:
        await db.execute("DELETE FROM projection_versions WHERE name = ?", (projector.name,))
        await db.execute("INSERT INTO projection_versions (name, version) VALUES (?, ?)",
                         (projector.name, projector_version(projector)))
    return count
