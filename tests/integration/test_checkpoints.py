"""Signed checkpoints and statements with proof, on both stores: sealing, the statement round
trip, the audit that holds the log to its checkpoints, and a key rotation."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg  # type: ignore[import-untyped]
import pytest

from events import SqlSession, StoreError
from events.hashing import GENESIS_HASH, chain_hash
from events.merkle import leaf_hash, root_of
from events.postgres import PostgresEventStore
from events.sqlite import SQLiteEventStore
from ledger.audit import audit
from ledger.checkpoints import (
    SEAL_RACES,
    Checkpointer,
    LogChanged,
    Signer,
    account_heads,
    latest_checkpoint,
    load_public_key,
)
from ledger.events import AccountOpened
from ledger.head_tree import HeadTree, accounts_tree
from ledger.statement_proof import build_statement, verify_statement
from tests.integration.store_faults import fail_next_sqlite, kill_pg_writer

if TYPE_CHECKING:
    from conftest import Services

PROJECT_ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.parametrize("ledger_at", ["sqlite", "postgres"], indirect=True)


@pytest.fixture
def signer(tmp_path: Path) -> Signer:
    return Signer.from_file(tmp_path / "signing-key")


async def history(services: Services) -> tuple[int, int]:
    alice = int((await services.users.register("alice", "correct horse")).id)
    bob = int((await services.users.register("bob", "correct horse")).id)
    await services.ledger.top_up(alice, 100)
    await services.ledger.top_up(bob, 50)
    await services.ml.process_task(alice, 1, [1, 2, "x"])
    await services.ledger.withdraw(bob, 5, "Charge")
    return alice, bob


def run_ledger(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=120, check=False)


async def all_hashes(services: Services) -> list[str]:
    rows = await services.store.read_db().fetchall("SELECT hash FROM events ORDER BY position")
    return [r["hash"] for r in rows]


async def test_a_checkpoint_signs_the_head_and_the_merkle_root_of_the_whole_log(
        services: Services, signer: Signer) -> None:
    checkpointer = Checkpointer(services.store, signer)
    assert await checkpointer.seal() is None  # an empty log has nothing to sign
    alice, _ = await history(services)
    first = await checkpointer.seal()
    await services.ledger.top_up(alice, 7)
    second = await checkpointer.seal()  # only the new event is hashed: from the frontier
    assert first is not None and second is not None
    hashes = await all_hashes(services)
    assert (second.position, second.head_hash) == (len(hashes), hashes[-1])
    assert second.merkle_root == root_of([leaf_hash(bytes.fromhex(h)) for h in hashes]).hex()
    assert first.position == len(hashes) - 1 and second.accounts == 2
    assert second.verifies_with(signer.public_key)
    assert await latest_checkpoint(services.store.read_db()) == second
    assert await checkpointer.seal() == second  # nothing new: nothing signed again


async def test_a_statement_round_trip_proves_the_whole_account(
        services: Services, signer: Signer) -> None:
    checkpointer = Checkpointer(services.store, signer)
    alice, bob = await history(services)
    await checkpointer.seal()
    await services.ledger.top_up(alice, 11)  # after the checkpoint: a new one is sealed first
    statement = await build_statement(services.store, checkpointer, alice)
    summary = verify_statement(statement, signer.public_key_pem)
    balance = await services.ledger.get_balance(alice)
    assert (summary.balance_credits, summary.held_credits) == (balance.balance_credits,
                                                               balance.held_credits)
    assert summary.position == len(await all_hashes(services))
    versions = [e["row"]["version"] for e in statement["events"]]
    assert versions == list(range(1, len(versions) + 1))
    # Bob's events are not in Alice's file: only hashes of them, in proofs.
    assert all(e["row"]["stream_id"] == f"account-{alice}" for e in statement["events"])
    assert '"bob"' not in str(statement) and f"account-{bob}" not in str(statement)


def rechain_sqlite(path: Path, position: int) -> None:
    """An operator with write access: edit a deposit, then recompute the chain end to end."""
    with closing(sqlite3.connect(path)) as db:
        db.execute("DROP TRIGGER events_no_update")
        rows = db.execute("SELECT position, stream_id, version, type_name, schema_version, "
                          "data, metadata, recorded_at FROM events ORDER BY position").fetchall()
        db.executemany("UPDATE events SET hash = ? WHERE position = ?",
                       rechained(rows, position))
        db.commit()


async def rechain_postgres(url: str, position: int) -> None:
    db = await asyncpg.connect(url)  # the superuser: it may drop the triggers
    try:
        await db.execute("DROP TRIGGER events_no_update ON events")
        rows = await db.fetch("SELECT position, stream_id, version, type_name, schema_version, "
                              "data, metadata, recorded_at FROM events ORDER BY position")
        await db.executemany("UPDATE events SET hash = $1 WHERE position = $2",
                             rechained([tuple(r) for r in rows], position))
        await db.execute("UPDATE events SET data = replace(data, '\"amount_credits\":100', "
                         "'\"amount_credits\":900') WHERE position = $1", position)
    finally:
        await db.close()


def rechained(rows: list[Any], edited: int) -> list[tuple[str, int]]:
    previous, out = GENESIS_HASH, []
    for position, stream, version, type_name, schema, data, metadata, at in rows:
        if position == edited:
            data = data.replace('"amount_credits":100', '"amount_credits":900')
        previous = chain_hash(previous, position=position, stream_id=stream, version=version,
                              type_name=type_name, schema_version=schema, data_json=data,
                              metadata_json=metadata, recorded_at=at)
        out.append((previous, position))
    return out


async def test_a_log_rewritten_after_a_checkpoint_fails_the_checkpoint_audit(
        services: Services, signer: Signer, ledger_at: str | Path) -> None:
    checkpointer = Checkpointer(services.store, signer)
    await history(services)
    sealed = await checkpointer.seal()
    assert sealed is not None
    deposit = await services.store.read_db().fetchone(
        "SELECT position FROM events WHERE type_name = 'CreditsDeposited' ORDER BY position")
    assert deposit is not None
    await services.store.close()
    keys = [signer.public_key_pem]
    assert (await audit(ledger_at, show_progress=False, checkpoints=True, public_keys=keys)).ok
    if isinstance(ledger_at, Path):
        rechain_sqlite(ledger_at, deposit["position"])
        with closing(sqlite3.connect(ledger_at)) as db:  # and the edit itself, in the data
            db.execute("UPDATE events SET data = replace(data, '\"amount_credits\":100', "
                       "'\"amount_credits\":900') WHERE position = ?", (deposit["position"],))
            db.execute("UPDATE accounts SET balance_credits = balance_credits + 800")
            db.commit()
    else:
        await rechain_postgres(ledger_at, deposit["position"])
    plain = await audit(ledger_at, show_progress=False)
    assert plain.first_break is None  # the chain alone cannot tell: it was recomputed
    report = await audit(ledger_at, show_progress=False, checkpoints=True, public_keys=keys)
    assert not report.ok and report.first_break is not None
    assert report.first_break.position == sealed.position
    assert "rewritten" in report.first_break.reason
    # Deleting the checkpoints hides them from the database, not from whoever kept one.
    if isinstance(ledger_at, Path):
        with closing(sqlite3.connect(ledger_at)) as db:
            db.execute("DELETE FROM checkpoints")
            db.commit()
    else:
        admin = await asyncpg.connect(ledger_at)
        await admin.execute("DELETE FROM checkpoints")
        await admin.close()
    emptied = await audit(ledger_at, show_progress=False, checkpoints=True, public_keys=keys)
    assert emptied.first_break is None and emptied.checkpoints_verified == 0
    held = await audit(ledger_at, show_progress=False, checkpoints=True, public_keys=keys,
                       held_checkpoints=[sealed])
    assert held.first_break is not None and held.first_break.position == sealed.position


async def test_a_rotated_key_keeps_old_checkpoints_verifiable(
        services: Services, tmp_path: Path, ledger_at: str | Path) -> None:
    old, new = Signer.from_file(tmp_path / "old-key"), Signer.from_file(tmp_path / "new-key")
    alice, _ = await history(services)
    before = await Checkpointer(services.store, old).seal()
    await services.ledger.top_up(alice, 3)
    rotated = Checkpointer(services.store, new)
    after = await rotated.seal()
    assert before is not None and after is not None and before.key_id != after.key_id
    statement = await build_statement(services.store, rotated, alice)
    assert verify_statement(statement, new.public_key_pem).position == after.position
    await services.store.close()
    both = [old.public_key_pem, new.public_key_pem]
    report = await audit(ledger_at, show_progress=False, checkpoints=True, public_keys=both)
    assert report.ok and report.checkpoints_verified == 2
    # Keys listed in the database (both signed) are used when none is given.
    assert (await audit(ledger_at, show_progress=False, checkpoints=True)).ok
    only_new = await audit(ledger_at, show_progress=False, checkpoints=True,
                           public_keys=[new.public_key_pem])
    assert only_new.first_break is not None and "unknown key" in only_new.first_break.reason
    assert before.verifies_with(load_public_key(old.public_key_pem))


def test_the_key_file_is_private_and_a_readable_one_is_refused(
        tmp_path: Path, ledger_at: str | Path) -> None:
    path = tmp_path / "key"
    first = Signer.from_file(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert Signer.from_file(path).key_id == first.key_id  # made once, then read
    os.chmod(path, 0o644)
    with pytest.raises(PermissionError, match="chmod 600"):
        Signer.from_file(path)


async def test_the_sealer_seals_every_n_events_or_after_t_seconds(
        services: Services, signer: Signer, tmp_path: Path) -> None:
    from web.config import Config
    from web.sealing import seal_if_due

    config = Config(db_path=tmp_path / "x.db", checkpoint_every=5, checkpoint_seconds=30)
    checkpointer = Checkpointer(services.store, signer)
    alice = int((await services.users.register("alice", "correct horse")).id)
    await services.ledger.top_up(alice, 1)  # 2 events wait
    assert not await seal_if_due(services.store, checkpointer, config, 29.0)
    assert await seal_if_due(services.store, checkpointer, config, 30.0)  # the interval
    assert not await seal_if_due(services.store, checkpointer, config, 600.0)  # none wait
    for _ in range(5):
        await services.ledger.top_up(alice, 1)
    assert await seal_if_due(services.store, checkpointer, config, 0.0)  # the count
    latest = await latest_checkpoint(services.store.read_db())
    assert latest is not None and latest.position == 7


async def test_the_audit_command_holds_the_log_to_its_checkpoints(
        services: Services, signer: Signer, ledger_at: str | Path, tmp_path: Path) -> None:
    await history(services)
    sealed = await Checkpointer(services.store, signer).seal()
    assert sealed is not None
    await services.store.close()
    pem = tmp_path / "public.pem"
    pem.write_text(signer.public_key_pem)
    where = ["--db", str(ledger_at)] if isinstance(ledger_at, Path) else [
        "--database-url", ledger_at]
    command = [sys.executable, "-m", "ledger", "audit", *where, "--quiet", "--checkpoints",
               "--public-key", str(pem)]
    honest = run_ledger(command)
    assert honest.returncode == 0, honest.stdout + honest.stderr
    assert "signed checkpoints:    1 match the log" in honest.stdout
    kept = tmp_path / "latest.json"
    kept.write_text(json.dumps(sealed.to_json()))
    held = run_ledger([*command, "--checkpoint", str(kept)])
    assert held.returncode == 0 and "1 match the log" in held.stdout  # the same one, once
    other = tmp_path / "other.pem"
    other.write_text(Signer.from_file(tmp_path / "other-key").public_key_pem)
    forged = run_ledger([*command[:-1], str(other)])
    assert forged.returncode == 1
    assert f"BROKEN at position {sealed.position} (the checkpoint is signed by an unknown key"\
        in forged.stdout


async def test_an_edited_checkpoint_is_caught_by_its_signature(
        services: Services, signer: Signer, ledger_at: str | Path) -> None:
    await history(services)
    sealed = await Checkpointer(services.store, signer).seal()
    assert sealed is not None

    async def edit(session: Any) -> None:  # an operator who can write the table, not sign
        await session.db.execute("UPDATE checkpoints SET head_hash = ? WHERE position = ?",
                                 ("0" * 64, sealed.position))
    await services.store.transact(edit)
    await services.store.close()
    report = await audit(ledger_at, show_progress=False, checkpoints=True,
                         public_keys=[signer.public_key_pem])
    assert report.first_break is not None and "was altered" in report.first_break.reason


async def test_a_seal_with_the_accounts_tree_it_kept_signs_what_the_log_says(
        services: Services, signer: Signer, ledger_at: str | Path) -> None:
    """A sealing process keeps its accounts tree from one seal to the next (ledger/
    head_tree.py). Seals by it, by another process in between (this one then moves its tree
    over the other's events too), after new accounts that sort among the old ones
    ("account-12" before "account-9") and after a seal that failed: each signs the root of
    every head as stored, and the audit holds every checkpoint to the log."""
    kept, other = Checkpointer(services.store, signer), Checkpointer(services.store, signer)
    users: list[int] = []
    kept_position = 0
    for turn in range(6):
        for n in range(3):  # new accounts, ids 1..18: from the tenth on they sort mid-tree
            account = await services.users.register(f"user{turn}x{n}", "correct horse")
            users.append(int(account.id))
        for user in users[::2]:  # and old ones move
            await services.ledger.top_up(user, turn + 1)
        tree_before = kept._heads
        if turn == 2:  # a seal that fails after its tree moved on: nothing of it commits
            kept.signer = BrokenSigner(signer)
            with pytest.raises(RuntimeError, match="the signing key is gone"):
                await kept.seal()
            kept.signer = signer
        sealed = await (other if turn == 3 else kept).seal()
        assert sealed is not None
        heads = await account_heads(services.store.read_db())
        assert sealed.accounts_root == root_of(
            [leaf for _, leaf in accounts_tree(heads)]).hex(), f"turn {turn}"
        assert sealed.accounts == len(heads) == len(users)
        if turn in (1, 4, 5):  # kept's tree moved on from its last seal, not read again
            assert kept._heads is tree_before  # (on 4 over the other's events too)
        elif turn == 2:  # read again: its position was the failed seal's, past the log's
            assert kept._heads is not tree_before
        assert kept._heads is not None
        assert kept._heads.position == (sealed.position if turn != 3 else
                                        kept_position), f"turn {turn}"
        kept_position = kept._heads.position
    await services.store.close()
    report = await audit(ledger_at, show_progress=False, checkpoints=True,
                         public_keys=[signer.public_key_pem])
    assert report.ok and report.checkpoints_verified == 6, report


class BrokenSigner(Signer):
    """The key as it is, but signing fails: a seal that fails late, inside its transaction."""

    def __init__(self, signer: Signer) -> None:
        self.__dict__.update(signer.__dict__)

    def sign(self, message: bytes) -> str:
        raise RuntimeError("the signing key is gone")


async def test_a_seal_whose_batch_failed_leaves_no_tree_of_events_never_written(
        services: Services, signer: Signer, ledger_at: str | Path) -> None:
    """A seal's transaction also holds the appends of the jobs in its batch. When the batch
    fails whole (SQLite: its COMMIT meets a disk I/O error; PostgreSQL: the writer's
    connection dies), the tree kept for the next seal must not hold those appends, nor be
    moved on to the checkpoint that was never written: once another process has sealed the
    real events at those positions, such a tree would sign a wrong accounts root from then
    on (found in review). A seal is made from committed events only, so it never saw the
    append at all."""
    store = services.store
    kept, other = Checkpointer(store, signer), Checkpointer(store, signer)
    alice = int((await services.users.register("alice", "correct horse")).id)
    await services.ledger.top_up(alice, 5)
    await kept.seal()

    async def never_written(session: SqlSession) -> None:
        await session.append("account-777001", 0,
                             [AccountOpened(user_id=777_001, username="ghost")])

    async def breaker(session: SqlSession) -> None:
        if isinstance(store, PostgresEventStore):
            await kill_pg_writer(store, session)

    await services.ledger.top_up(alice, 1)  # a committed event to seal
    batch = await kept._prepare(store.background_db())
    assert batch is not None
    if isinstance(store, SQLiteEventStore):
        fail_next_sqlite(store, "COMMIT")
    # The seal's own job (what seal() sends), in one batch with the append and the fault.
    outcomes = await asyncio.gather(store.transact(never_written),
                                    store.transact(batch.write), store.transact(breaker),
                                    return_exceptions=True)
    assert all(isinstance(o, StoreError) for o in outcomes), outcomes
    await services.users.register("bob", "correct horse")  # the real events there
    assert await other.seal() is not None  # sealed by another process
    await services.ledger.top_up(alice, 5)
    mine = await kept.seal()
    assert mine is not None
    heads = await account_heads(store.read_db())
    assert "account-777001" not in [stream for stream, _, _ in heads]
    assert mine.accounts_root == root_of([leaf for _, leaf in accounts_tree(heads)]).hex()
    await store.close()
    report = await audit(ledger_at, show_progress=False, checkpoints=True,
                         public_keys=[signer.public_key_pem])
    assert report.ok, report


async def test_a_seal_raced_by_another_process_writes_nothing_and_moves_on_from_theirs(
        services: Services, signer: Signer, ledger_at: str | Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A seal is made from committed events outside its transaction. Should another process
    seal meanwhile, the write finds its checkpoint is no longer the latest and writes
    nothing (not a second checkpoint at one position, nor one that skips the other's); the
    tree it made, the log's at that position, is kept, and the next seal moves it on from
    the other's checkpoint instead of reading every head again."""
    store = services.store
    kept, other = Checkpointer(store, signer), Checkpointer(store, signer)
    alice, _ = await history(services)
    await kept.seal()
    await services.ledger.top_up(alice, 7)
    prepare, theirs = kept._prepare, []

    async def raced(db: Any, pause_s: float = 0.0) -> Any:
        batch = await prepare(db, pause_s)
        if not theirs:  # another process seals just after this one read the log
            theirs.append(await other.seal())
        return batch

    monkeypatch.setattr(kept, "_prepare", raced)
    sealed = await kept.seal()
    assert sealed is not None and theirs[0] is not None
    assert sealed.signature == theirs[0].signature  # the latest is theirs: none of its own
    rows = await store.read_db().fetchall("SELECT position FROM checkpoints")
    assert len(rows) == 2
    tree = kept._heads
    assert tree is not None and tree.signed_as(sealed.accounts_root, sealed.accounts)
    await services.ledger.top_up(alice, 8)
    mine = await kept.seal()
    assert mine is not None and mine.position > sealed.position
    assert kept._heads is tree  # moved on, not read again
    heads = await account_heads(store.read_db())
    assert mine.accounts_root == root_of([leaf for _, leaf in accounts_tree(heads)]).hex()
    await store.close()
    report = await audit(ledger_at, show_progress=False, checkpoints=True,
                         public_keys=[signer.public_key_pem])
    assert report.ok and report.checkpoints_verified == 3, report


async def test_a_seal_made_before_the_log_was_rewritten_under_it_is_not_written(
        services: Services, signer: Signer, ledger_at: str | Path) -> None:
    """Between a seal's read and its write, the log is rewritten end to end (a database
    restored under the process, say) with its latest checkpoint where it was: the write
    finds the event it signs changed and writes nothing (found in review)."""
    kept = Checkpointer(services.store, signer)
    alice = int((await services.users.register("alice", "correct horse")).id)
    await kept.seal()
    await services.ledger.top_up(alice, 100)
    batch = await kept._prepare(services.store.background_db())
    assert batch is not None
    if isinstance(ledger_at, Path):
        rechain_sqlite(ledger_at, batch.checkpoint.position)
    else:
        await rechain_postgres(ledger_at, batch.checkpoint.position)
    assert await services.store.transact(batch.write) is False
    rows = await services.store.read_db().fetchall("SELECT position FROM checkpoints")
    assert len(rows) == 1


async def test_a_seal_that_keeps_losing_stops_and_leaves_the_rest_to_the_next(
        services: Services, signer: Signer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A log that changes under every read is not chased for ever: after SEAL_RACES batches
    made in vain, seal() answers with the latest checkpoint there is."""
    kept = Checkpointer(services.store, signer)
    alice = int((await services.users.register("alice", "correct horse")).id)
    first = await kept.seal()
    await services.ledger.top_up(alice, 5)
    tries = [0]

    async def changed(db: Any, pause_s: float = 0.0) -> Any:
        tries[0] += 1
        raise LogChanged("changed while read")

    monkeypatch.setattr(kept, "_prepare", changed)
    sealed = await kept.seal()
    assert tries[0] == SEAL_RACES
    assert first is not None and sealed is not None and sealed.signature == first.signature


async def cut_back(ledger_at: str | Path, position: int) -> None:
    """The database restored to an older copy: the events after `position` are gone."""
    if isinstance(ledger_at, Path):
        with closing(sqlite3.connect(ledger_at)) as db:
            db.execute("DROP TRIGGER events_no_delete")
            db.execute("DELETE FROM events WHERE position > ?", (position,))
            db.commit()
        return
    db = await asyncpg.connect(ledger_at)
    try:
        await db.execute("DROP TRIGGER events_no_update ON events")  # (and delete)
        await db.execute("DELETE FROM events WHERE position > $1", position)
    finally:
        await db.close()


async def test_a_seal_whose_log_was_cut_back_under_it_keeps_no_tree_from_beyond(
        services: Services, signer: Signer, ledger_at: str | Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The log goes back to its latest checkpoint between a seal's read and its write: the
    write finds the event it signs gone and writes nothing, the tree made past the latest
    checkpoint is not kept, and statements go on from the checkpoint there (kept, such a
    tree made every statement answer "not ready": found in review)."""
    store, kept = services.store, Checkpointer(services.store, signer)
    alice = int((await services.users.register("alice", "correct horse")).id)
    await services.ledger.top_up(alice, 100)
    first = await kept.seal()
    assert first is not None
    await services.ledger.top_up(alice, 5)
    prepare = kept._prepare

    async def restored_meanwhile(db: Any, pause_s: float = 0.0) -> Any:
        batch = await prepare(db, pause_s)
        if batch is not None:
            await cut_back(ledger_at, batch.after)
        return batch

    monkeypatch.setattr(kept, "_prepare", restored_meanwhile)
    sealed = await kept.seal()
    assert sealed is not None and sealed.signature == first.signature
    assert kept._heads is None or kept._heads.position == first.position
    statement = await build_statement(store, kept, alice)
    assert verify_statement(statement, signer.public_key_pem).position == first.position


async def test_a_kept_tree_that_is_not_the_logs_is_dropped_not_used(
        services: Services, signer: Signer) -> None:
    """A tree held at a checkpoint's position whose root is not the one signed there (a
    database restored under a running process, say) proves nothing and moves on to nothing:
    the statement and the next seal read every head again (found in review)."""
    checkpointer = Checkpointer(services.store, signer)
    alice, _ = await history(services)
    sealed = await checkpointer.seal()
    assert sealed is not None

    def wrong_tree() -> HeadTree:
        return HeadTree(sealed.position, [("account-999", 1, "00" * 32)])

    checkpointer._heads = wrong_tree()
    statement = await build_statement(services.store, checkpointer, alice)
    verify_statement(statement, signer.public_key_pem)
    assert checkpointer._heads is not None
    assert checkpointer._heads.root().hex() == sealed.accounts_root  # the log's, read again
    checkpointer._heads = wrong_tree()
    await services.ledger.top_up(alice, 3)
    resealed = await checkpointer.seal()
    heads = await account_heads(services.store.read_db())
    assert resealed is not None
    assert resealed.accounts_root == root_of([leaf for _, leaf in accounts_tree(heads)]).hex()
