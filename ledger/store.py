"""The ledger's event store: a generic store, told about credits and tasks.

SQLite (a file path) is the default; a `postgresql://` URL selects PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from events import SqlEventStore, SQLiteEventStore
from events.leases import LEASE_SCHEMA
from events.rows import Clock, utc_now
from ledger.checkpoints import CHECKPOINT_SCHEMA
from ledger.control import CONTROL_SCHEMA
from ledger.events import ledger_codec
from ledger.keys import KEYS_CONTROL_SCHEMA
from ledger.projections import ledger_projectors
from ledger.security_log import SECURITY_SCHEMA
from ledger.shared import SHARED_SCHEMA
from ledger.verifier import VERIFIER_SCHEMA

if TYPE_CHECKING:  # imported when a URL asks for it: asyncpg is not a SQLite start's cost
    from events.postgres import PostgresEventStore

URL_SCHEMES = ("postgresql://", "postgres://")
# Control-plane tables on both stores: credentials, tokens, operations, key hashes, the log.
BOTH_SCHEMA = (CONTROL_SCHEMA + KEYS_CONTROL_SCHEMA + SECURITY_SCHEMA + CHECKPOINT_SCHEMA
               + VERIFIER_SCHEMA)


def is_database_url(where: str | Path) -> bool:
    return isinstance(where, str) and where.startswith(URL_SCHEMES)


def ledger_store(
    path: str | Path,
    *,
    synchronous: Literal["FULL", "NORMAL", "OFF"] = "FULL",
    clock: Clock = utc_now,
) -> SQLiteEventStore:
    """A SQLite store with the ledger's codec, projections and control tables; `open()` next."""
    return SQLiteEventStore(path, ledger_codec(), ledger_projectors(), synchronous=synchronous,
                            control_schema=BOTH_SCHEMA, clock=clock)


def postgres_ledger_store(
    database_url: str, *, clock: Clock = utc_now, **options: Any
) -> PostgresEventStore:
    """A PostgreSQL store with the ledger's codec, projections and control tables.
    `options` are PostgresEventStore's pool bounds and timeouts."""
    from events.pg_generation import GENERATION_SCHEMA
    from events.postgres import PostgresEventStore

    # What processes share only on PostgreSQL comes with it: ledger/shared.py, the leases
    # (events/leases.py) and the credentials' generation (events/pg_generation.py).
    shared = BOTH_SCHEMA + SHARED_SCHEMA + LEASE_SCHEMA + GENERATION_SCHEMA
    return PostgresEventStore(database_url, ledger_codec(), ledger_projectors(),
                              control_schema=shared, clock=clock, **options)


def ledger_store_at(
    where: str | Path,
    *,
    synchronous: Literal["FULL", "NORMAL", "OFF"] = "FULL",
    clock: Clock = utc_now,
) -> SqlEventStore:
    """The ledger's store at a SQLite path or a `postgresql://` URL."""
    if is_database_url(where):
        assert isinstance(where, str)
        return postgres_ledger_store(where, clock=clock)
    return ledger_store(where, synchronous=synchronous, clock=clock)
