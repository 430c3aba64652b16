"""Tokens and keys are checked from a per-process cache; every revocation, in any process on
the database, is refused at the next request. The same tests run on a SQLite file (the mapped
word beside it) and on PostgreSQL (the counter and its LISTENers, events/pg_generation.py)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest
from pgcluster import fresh_database

from events import SqlSession
from events.generation import SharedGeneration
from ledger import (
    KeyService,
    LedgerService,
    Passwords,
    UserService,
    ledger_store_at,
)
from ledger.admin import AdminService
from ledger.credential_cache import TTL_S, CredentialCache
from ledger.credentials import Credential

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 1, 1, tzinfo=UTC)
ALICE = Credential(user_id=1, kind="token")


def bump_in_another_process(path: Path) -> None:
    subprocess.run([sys.executable, "-c", "import sys; from events.generation import "
                    "SharedGeneration; SharedGeneration(sys.argv[1]).bump()", str(path)],
                   cwd=REPO, check=True, timeout=60)


def test_a_bump_in_another_process_makes_every_entry_stale(tmp_path: Path) -> None:
    path = tmp_path / "x.gen"
    cache = CredentialCache(SharedGeneration(path))
    cache.put("api", "d1", ALICE, expires_at=None, word=cache.word())
    assert cache.get("api", "d1", NOW) is not None
    bump_in_another_process(path)
    assert cache.get("api", "d1", NOW) is None


def test_an_entry_read_before_a_bump_is_stale_when_put_after_it(tmp_path: Path) -> None:
    cache = CredentialCache(SharedGeneration(tmp_path / "x.gen"))
    word = cache.word()  # the reader's word, then its database read...
    SharedGeneration(tmp_path / "x.gen").bump()  # ...races a revocation's commit and bump
    cache.put("api", "d1", ALICE, expires_at=None, word=word)
    assert cache.get("api", "d1", NOW) is None


def test_entries_end_at_their_expiry_and_after_the_backstop(tmp_path: Path) -> None:
    clock = [100.0]
    cache = CredentialCache(SharedGeneration(tmp_path / "x.gen"), monotonic=lambda: clock[0])
    cache.put("api", "short", ALICE, expires_at=NOW + timedelta(seconds=1), word=cache.word())
    cache.put("api", "long", ALICE, expires_at=None, word=cache.word())
    assert cache.get("api", "short", NOW) is not None
    assert cache.get("api", "short", NOW + timedelta(seconds=1)) is None
    clock[0] += TTL_S + 1
    assert cache.get("api", "long", NOW) is None


def test_without_a_generation_word_nothing_is_cached() -> None:
    cache = CredentialCache(None)
    cache.put("api", "d1", ALICE, expires_at=None, word=cache.word())
    assert cache.get("api", "d1", NOW) is None


@dataclass(frozen=True)
class Two:
    """Two processes' services on one database, and a way behind both their backs."""

    a: LedgerService
    b: LedgerService
    where: str | Path

    async def raw(self, sql: str) -> None:
        if isinstance(self.where, Path):
            with closing(sqlite3.connect(self.where)) as raw:
                raw.execute(sql)
                raw.commit()
            return
        conn = await asyncpg.connect(self.where)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def two_processes(request: pytest.FixtureRequest, db_path: Path) -> AsyncIterator[Two]:
    """Two stores on one database, as two processes have: on SQLite each maps the word
    beside the file, on PostgreSQL each has a watcher of its own."""
    if request.param == "sqlite":
        async for two in _two_on(db_path):
            yield two
        return
    async with fresh_database(request.getfixturevalue("pg_cluster")) as url:
        async for two in _two_on(url):
            yield two


async def _two_on(where: str | Path) -> AsyncIterator[Two]:
    stores = [ledger_store_at(where), ledger_store_at(where)]
    ledgers = []
    for store in stores:
        await store.open()
        ledgers.append(LedgerService(store))
        assert ledgers[-1].generation is not None
        await ledgers[-1].generation.start()  # what a serving process does (web/app.py)
    try:
        yield Two(ledgers[0], ledgers[1], where)
    finally:
        for ledger in ledgers:
            assert ledger.generation is not None
            await ledger.generation.stop()
        for store in stores:
            await store.close()


async def test_a_cached_token_costs_no_read_and_a_logout_elsewhere_ends_it_at_once(
        two_processes: Two) -> None:
    a, b = (UserService(ledger, Passwords.cheap())
            for ledger in (two_processes.a, two_processes.b))
    await a.register("alice", "correct horse")
    token = (await a.login("alice", "correct horse")).access_token
    assert (await b.credential_for_token(token)) is not None  # B reads it once, and caches
    await two_processes.raw("DELETE FROM tokens")  # behind both services' backs
    assert (await b.credential_for_token(token)) is not None, "B went to the database"

    await a.login("alice", "correct horse")
    token = (await a.login("alice", "correct horse")).access_token
    assert (await b.credential_for_token(token)) is not None
    await a.logout(token)
    assert (await b.credential_for_token(token)) is None


async def test_a_password_change_and_a_revoked_key_elsewhere_end_them_at_once(
        two_processes: Two) -> None:
    ledgers = (two_processes.a, two_processes.b)
    a, b = (UserService(ledger, Passwords.cheap()) for ledger in ledgers)
    keys_a, keys_b = (KeyService(ledger) for ledger in ledgers)
    user_id = (await a.register("alice", "correct horse")).id
    kept, other = [(await a.login("alice", "correct horse")).access_token for _ in range(2)]
    issued = await keys_a.create(user_id, name="ci", scope="predict")
    kept_credential = await a.credential_for_token(kept)
    assert kept_credential is not None
    assert await b.credential_for_token(other) is not None
    assert await keys_b.credential_for(issued.key) is not None

    await a.change_password(kept_credential, "correct horse", "battery staple", "test")
    assert await b.credential_for_token(other) is None
    assert await b.credential_for_token(kept) is not None  # the changing session stays
    await keys_a.revoke(user_id, issued.view.id)
    assert await keys_b.credential_for(issued.key) is None


async def test_a_suspension_elsewhere_is_seen_at_once_and_its_flags_come_from_the_cache(
        two_processes: Two) -> None:
    a = UserService(two_processes.a, Passwords.cheap())
    admin_a, admin_b = AdminService(two_processes.a), AdminService(two_processes.b)
    user_id = (await a.register("alice", "correct horse")).id
    operator_id = (await a.register("olga", "correct horse")).id
    assert await admin_b.flags(user_id) == (False, False)
    await two_processes.raw(  # behind both services' backs
        f"INSERT INTO account_flags VALUES ({user_id}, 1, 0, NULL, '2026-01-01T00:00:00')")
    assert await admin_b.flags(user_id) == (False, False), "B went to the database"
    await admin_a.suspend(operator_id, user_id, "fraud")
    assert (await admin_b.flags(user_id))[1], "B still served its cached flags"


async def test_transact_credentials_is_what_a_new_revoking_writer_calls(
        two_processes: Two) -> None:
    """Any new way to end a credential writes its rows in
    LedgerService.transact_credentials; other processes read the database again."""
    a, b = (UserService(ledger, Passwords.cheap())
            for ledger in (two_processes.a, two_processes.b))
    await a.register("alice", "correct horse")
    token = (await a.login("alice", "correct horse")).access_token
    assert await b.credential_for_token(token) is not None

    async def revoke_all(s: SqlSession) -> None:
        await s.db.execute("UPDATE tokens SET revoked_at = '2026-01-01T00:00:00'")

    await two_processes.a.transact_credentials(revoke_all)
    assert await b.credential_for_token(token) is None
