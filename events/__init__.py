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
)
from events.event import Event, Metadata, RecordedEvent
from events.hashing import GENESIS_HASH, chain_hash
from events.memory import InMemoryEventStore
from events.projection import Projector
from events.sqlite import SQLiteEventStore, SQLiteSession
from events.store import EventStore, Session

__all__ = [
    "GENESIS_HASH",
    "ConcurrencyError",
    "Database",
    "Event",
    "EventCodec",
    "EventStore",
    "InMemoryEventStore",
    "Metadata",
    "Projector",
    "RecordedEvent",
    "SQLiteEventStore",
    "SQLiteSession",
    "Session",
    "StoreCorrupted",
    "StoreError",
    "StoreUnavailable",
    "UnknownEventType",
    "chain_hash",
]
