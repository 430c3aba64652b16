"""The ledger's event store: the generic SQLite store, told about credits and tasks."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from events import SQLiteEventStore
from events.rows import Clock, utc_now
from ledger.control import CONTROL_SCHEMA
from ledger.events import ledger_codec
from ledger.projections import ledger_projectors


def ledger_store(
    path: str | Path,
    *,
    synchronous: Literal["FULL", "NORMAL", "OFF"] = "FULL",
    clock: Clock = utc_now,
) -> SQLiteEventStore:
    """A store with the ledger's codec, projections and control tables; call `open()` next."""
    return SQLiteEventStore(path, ledger_codec(), ledger_projectors(), synchronous=synchronous,
                            control_schema=CONTROL_SCHEMA, clock=clock)
