"""Shared fixtures: a ledger on a SQLite file under tmp_path or on a fresh PostgreSQL
database of a throwaway cluster, and the services built on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pgcluster import PgCluster, fresh_database, require_bin_dir

from events import SqlEventStore
from events.postgres import PostgresEventStore
from ledger import LedgerService, Passwords, UserService, ledger_store_at, postgres_ledger_store
from ml import MLModelManager, MLService, default_models


@dataclass(frozen=True)
class Services:
    store: SqlEventStore
    ledger: LedgerService
    users: UserService
    ml: MLService


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """One throwaway PostgreSQL cluster for the whole run (fsync off); skipped where the
    binaries are missing, except under CI, which must run every PostgreSQL test."""
    cluster = PgCluster.start(require_bin_dir())
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def pg_durable_cluster() -> Iterator[PgCluster]:
    """A cluster of the test's own with fsync on, to stop, kill or restart at will."""
    cluster = PgCluster.start(require_bin_dir(), durable=True)
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
async def pg_url(pg_cluster: PgCluster) -> AsyncIterator[str]:
    """The URL of a fresh, empty database, dropped after the test. (An async fixture that
    needs one only now and then takes `pg_cluster` by getfixturevalue and uses
    `fresh_database`: async fixtures cannot be fetched from inside one.)"""
    async with fresh_database(pg_cluster) as url:
        yield url


@pytest.fixture
async def pg_store(pg_url: str) -> AsyncIterator[PostgresEventStore]:
    """The ledger's store on a fresh PostgreSQL database, open."""
    opened = postgres_ledger_store(pg_url)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def ledger_at(request: pytest.FixtureRequest, db_path: Path) -> AsyncIterator[str | Path]:
    """Where the ledger lives: the SQLite file `db_path`, or, in a module marked with
    `pytest.mark.parametrize("ledger_at", ["sqlite", "postgres"], indirect=True)`, also the
    URL of a fresh PostgreSQL database."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield db_path
        return
    async with fresh_database(request.getfixturevalue("pg_cluster")) as url:
        yield url


PREDICT_PATHS = ["one_transaction", "two_phase"]


@pytest.fixture
def predict_path(request: pytest.FixtureRequest) -> str:
    """How fast models' predictions are charged: in one write ('one_transaction', the
    default) or hold then settle ('two_phase'). A module marked with
    `pytest.mark.parametrize("predict_path", PREDICT_PATHS, indirect=True)` runs both."""
    path = str(getattr(request, "param", "one_transaction"))
    assert path in PREDICT_PATHS
    return path


@pytest.fixture
async def services(ledger_at: str | Path, predict_path: str) -> AsyncIterator[Services]:
    store = ledger_store_at(ledger_at)
    await store.open()
    ledger = LedgerService(store)
    try:
        yield Services(store=store, ledger=ledger,
                       users=UserService(ledger, Passwords.cheap()),
                       ml=MLService(ledger, MLModelManager(default_models()),
                                    one_transaction=predict_path == "one_transaction"))
    finally:
        await store.close()
