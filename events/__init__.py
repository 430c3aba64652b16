"""Generic event-sourcing plumbing: events, codec, stores, hash chain, projections.

Nothing here knows about credits or models; `ledger/` and `ml/` build on it.
"""

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
from events.pgdatabase import PgDatabase
from events.postgres import PgSession, PostgresEventStore
from events.projection import Projector
from events.sql import Params, SqlDatabase
from events.sqlite import SQLiteEventStore, SQLiteSession
from events.store import EventStore, Session, SqlEventStore, SqlSession

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
