"""Tokens and keys are checked from a per-process cache; every revocation, in any process on
the file, is refused at the next request."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from events.generation import SharedGeneration
from ledger import KeyService, LedgerService, Passwords, UserService, ledger_store
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
    cache.changed()  # ...races a revocation's commit and bump
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


@pytest.fixture
async def two_processes(db_path: Path) -> AsyncIterator[tuple[LedgerService, LedgerService]]:
    """Two stores on one file, as two processes have (each maps the generation file)."""
    stores = [ledger_store(db_path), ledger_store(db_path)]
    for store in stores:
        await store.open()
    try:
        yield LedgerService(stores[0]), LedgerService(stores[1])
    finally:
        for store in stores:
            await store.close()


async def test_a_cached_token_costs_no_read_and_a_logout_elsewhere_ends_it_at_once(
        two_processes: tuple[LedgerService, LedgerService], db_path: Path) -> None:
    a, b = (UserService(ledger, Passwords.cheap()) for ledger in two_processes)
    await a.register("alice", "correct horse")
    token = (await a.login("alice", "correct horse")).access_token
    assert (await b.credential_for_token(token)) is not None  # B reads it once, and caches
    with closing(sqlite3.connect(db_path)) as raw:  # behind both services' backs
        raw.execute("DELETE FROM tokens")
        raw.commit()
    assert (await b.credential_for_token(token)) is not None, "B went to the database"

    await a.login("alice", "correct horse")
    token = (await a.login("alice", "correct horse")).access_token
    assert (await b.credential_for_token(token)) is not None
    await a.logout(token)
    assert (await b.credential_for_token(token)) is None


async def test_a_password_change_and_a_revoked_key_elsewhere_end_them_at_once(
        two_processes: tuple[LedgerService, LedgerService]) -> None:
    a, b = (UserService(ledger, Passwords.cheap()) for ledger in two_processes)
    keys_a, keys_b = (KeyService(ledger) for ledger in two_processes)
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


async def test_credentials_changed_is_what_a_new_revoking_writer_calls(
        two_processes: tuple[LedgerService, LedgerService], db_path: Path) -> None:
    """A suspension (or any new way to end a credential) writes its rows and then calls
    LedgerService.credentials_changed(); other processes read the database again."""
    a, b = (UserService(ledger, Passwords.cheap()) for ledger in two_processes)
    await a.register("alice", "correct horse")
    token = (await a.login("alice", "correct horse")).access_token
    assert await b.credential_for_token(token) is not None
    with closing(sqlite3.connect(db_path)) as raw:
        raw.execute("UPDATE tokens SET revoked_at = '2026-01-01T00:00:00'")
        raw.commit()
    two_processes[0].credentials_changed()
    assert await b.credential_for_token(token) is None
