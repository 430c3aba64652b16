"""Projections: read models written in the same transaction as the events they fold."""

from __future__ import annotations

from typing import Protocol

from events.event import RecordedEvent
from events.sql import SqlDatabase


class Projector(Protocol):
    """Folds events into tables. `apply` must be deterministic: a replay gives the same rows."""

    name: str
    schema: str
    tables: tuple[str, ...]

    async def apply(self, db: SqlDatabase, recorded: RecordedEvent) -> None: ...
