"""Shared fixtures: a ledger file under tmp_path and the services built on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from events import SQLiteEventStore
from ledger import LedgerService, Passwords, UserService, ledger_store
from ml import MLModelManager, MLService, default_models


@dataclass(frozen=True)
class Services:
    store: SQLiteEventStore
    ledger: LedgerService
    users: UserService
    ml: MLService


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"


@pytest.fixture
async def services(db_path: Path) -> AsyncIterator[Services]:
    store = ledger_store(db_path)
    await store.open()
    ledger = LedgerService(store)
    try:
        yield Services(store=store, ledger=ledger,
                       users=UserService(ledger, Passwords.cheap()),
                       ml=MLService(ledger, MLModelManager(default_models())))
    finally:
        await store.close()
