"""Generic event-sourcing plumbing: events, codec, stores, hash chain, projections.

Nothing here knows about credits or models; `ledger/` and `ml/` build on it.
"""

from typing import TYPE_CHECKING, Any

from events.codec import EventCodec, UnknownEventType
from events.database import Database
from events.errors import (
    ConcurrencyError,
    StoreCorrupted,
    StoreError,
    StoreUnavailable,
    UniqueViolation,
)
from events.event import Event, Metadata, RecordedEvent
from events.hashing import GENESIS_HASH, chain_hash
from events.memory import InMemoryEventStore
from events.projection import Projector
from events.sql import Params, SqlDatabase
from events.sqlite import SQLiteEventStore, SQLiteSession
from events.store import EventStore, Session, SqlEventStore, SqlSession

if TYPE_CHECKING:
    from events.pgdatabase import PgDatabase
    from events.postgres import PgSession, PostgresEventStore

# PostgreSQL's parts load when first asked for: asyncpg is ~0.05 s of a SQLite start-up.
_POSTGRES = {"PgDatabase": "events.pgdatabase", "PgSession": "events.postgres",
             "PostgresEventStore": "events.postgres"}


def __getattr__(name: str) -> Any:
    if name in _POSTGRES:
        import importlib

        return getattr(importlib.import_module(_POSTGRES[name]), name)
    raise AttributeError(f"module 'events' has no attribute {name!r}")


__all__ = [
    "GENESIS_HASH",
    "ConcurrencyError",
    "Database",
    "Event",
    "EventCodec",
    "EventStore",
    "InMemoryEventStore",
    "Metadata",
    "Params",
    "PgDatabase",
    "PgSession",
    "PostgresEventStore",
    "Projector",
    "RecordedEvent",
    "SQLiteEventStore",
    "SQLiteSession",
    "Session",
    "SqlDatabase",
    "SqlEventStore",
    "SqlSession",
    "StoreCorrupted",
    "StoreError",
    "StoreUnavailable",
    "UniqueViolation",
    "UnknownEventType",
    "chain_hash",
]
