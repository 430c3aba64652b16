"""Stored Merkle nodes, on both stores: proofs from them are byte for byte the proofs from every
leaf, an old log's table is built (and an interrupted build resumes), the audit catches a wrong
node, a wrong node never makes a proof pass, and a statement's reads do not grow with the log."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg  # type: ignore[import-untyped]
import pytest

from events import SqlEventStore, SqlSession
from events.merkle import (
    consistency_proof,
    inclusion_proofs,
    inclusion_ranges,
    leaf_hash,
    perfect_parts,
    root_from_inclusion,
    root_of,
)
from ledger import merkle_nodes
from ledger.audit import audit
from ledger.checkpoints import Checkpointer, Signer
from ledger.events import AccountOpened, CreditsDeposited
from ledger.merkle_nodes import BLOCK, BLOCK_LEVEL
from ledger.statement_proof import StatementInvalid, build_statement, verify_statement

if TYPE_CHECKING:
    from conftest import Services

pytestmark = pytest.mark.parametrize("ledger_at", ["sqlite", "postgres"], indirect=True)
FILLER = 900_000  # a user id no test registers: the account whose events grow the log


@pytest.fixture
def signer(tmp_path: Path) -> Signer:
    return Signer.from_file(tmp_path / "signing-key")


async def grow(store: SqlEventStore, events: int, rng: random.Random) -> None:
    """`events` more events of the filler account, random amounts, a few big appends."""
    stream = f"account-{FILLER}"

    async def work(session: SqlSession, count: int) -> None:
        row = await session.db.fetchone("SELECT COUNT(*) AS n FROM events WHERE stream_id = ?",
                                        (stream,))
        version = int(row["n"]) if row else 0
        batch: list[Any] = [] if version else [AccountOpened(user_id=FILLER, username="filler")]
        batch += [CreditsDeposited(user_id=FILLER, amount_credits=rng.randint(1, 10**6),
                                   description="filler")
                  for _ in range(count - len(batch))]
        await session.append(stream, version, batch)

    while events > 0:
        count = min(events, 700)
        await store.transact(lambda session, n=count: work(session, n))  # type: ignore[misc]
        events -= count


async def leaves(store: SqlEventStore, size: int) -> list[bytes]:
    rows = await store.read_db().fetchall(
        "SELECT hash FROM events WHERE position <= ? ORDER BY position", (size,))
    return [leaf_hash(bytes.fromhex(r["hash"])) for r in rows]


async def stored_table(store: SqlEventStore) -> list[tuple[int, int, str]]:
    rows = await store.read_db().fetchall("SELECT level, idx, hash FROM merkle_nodes "
                                          "ORDER BY level, idx")
    return [(int(r["level"]), int(r["idx"]), r["hash"]) for r in rows]


async def tamper(ledger_at: str | Path, sql: str, params: tuple[Any, ...] = ()) -> None:
    """Someone with write access to the database edits the table behind the service."""
    if isinstance(ledger_at, Path):
        with closing(sqlite3.connect(ledger_at)) as db:
            db.execute(sql, params)
            db.commit()
        return
    db = await asyncpg.connect(ledger_at)
    try:
        marks = iter(range(1, 10))
        await db.execute("".join(f"${next(marks)}" if c == "?" else c for c in sql), *params)
    finally:
        await db.close()


async def test_proofs_from_stored_nodes_equal_the_proofs_from_every_leaf(
        services: Services, signer: Signer) -> None:
    rng, store = random.Random(11), services.store
    checkpointer = Checkpointer(store, signer)
    sizes = []
    for step in [1, BLOCK - 2, 1, 1, 3 * BLOCK + 5, rng.randint(1, 900), 4 * BLOCK]:
        await grow(store, step, rng)
        sealed = await checkpointer.seal()  # the sealer writes the nodes with the checkpoint
        assert sealed is not None
        sizes.append(sealed.position)
    assert sizes[-1] > 8 * BLOCK and any(s & (s - 1) for s in sizes)  # not powers of two
    everything = await leaves(store, sizes[-1])
    assert await merkle_nodes.built_through(store.read_db()) == sizes[-1] // BLOCK * BLOCK
    for size in [*sizes, 2 * BLOCK, 4 * BLOCK + 1, sizes[-1] - 1]:
        tree = everything[:size]
        wanted = {0, size - 1, *rng.sample(range(size), min(size, 12))}
        expected = inclusion_proofs(tree, wanted)
        stored = await merkle_nodes.inclusion_proofs_stored(store.read_db(), size, wanted)
        assert stored == expected, size
        root = root_of(tree)
        for index, path in stored.items():
            assert root_from_inclusion(index, size, tree[index], path) == root
        for first in {1, size, rng.randint(1, size)}:
            assert (await merkle_nodes.consistency_proof_stored(store.read_db(), size, first)
                    == consistency_proof(tree, first))


async def test_an_old_log_gets_its_nodes_built_and_an_interrupted_build_resumes(
        services: Services, signer: Signer, ledger_at: str | Path) -> None:
    rng, store = random.Random(12), services.store
    await grow(store, 9 * BLOCK + 17, rng)
    await Checkpointer(store, signer).seal()
    honest = await stored_table(store)
    assert len(honest) == 9 + 4 + 2 + 1  # levels 8, 9, 10, 11 of 9 blocks: 9, 4, 2, 1
    await tamper(ledger_at, "DELETE FROM merkle_nodes")  # a log from before the table
    # One batch of the build commits, then the process dies: the table says how far it got.
    await store.transact(lambda session: merkle_nodes.extend(session.db, 10**9, 3 * BLOCK))
    assert await merkle_nodes.built_through(store.read_db()) == 3 * BLOCK
    assert await merkle_nodes.build(store) == 9 * BLOCK  # resumed from there
    assert await stored_table(store) == honest


async def test_the_audit_catches_a_wrong_or_missing_node(
        services: Services, signer: Signer, ledger_at: str | Path) -> None:
    store = services.store
    await grow(store, 5 * BLOCK + 3, random.Random(13))
    await Checkpointer(store, signer).seal()
    await store.close()
    honest = await audit(ledger_at, show_progress=False)
    assert honest.ok and honest.merkle_nodes.checked == 5 + 2 + 1
    assert "merkle nodes:          8 equal to the log's tree" in honest.render()
    await tamper(ledger_at, "UPDATE merkle_nodes SET hash = ? WHERE level = ? AND idx = ?",
                 ("00" * 32, BLOCK_LEVEL + 1, 1))
    wrong = await audit(ledger_at, show_progress=False)
    assert not wrong.ok and wrong.first_break is None  # the log itself is intact
    assert wrong.merkle_nodes.problem == ("the stored node (level 9, index 1) is not the "
                                          "hash of its two children")
    assert "AUDIT FAILED" in wrong.render()
    await tamper(ledger_at, "DELETE FROM merkle_nodes WHERE level = ? AND idx = ?",
                 (BLOCK_LEVEL + 1, 1))
    missing = await audit(ledger_at, show_progress=False)
    assert missing.merkle_nodes.problem == "the stored node (level, index) (9, 1) is missing"
    # The top nodes must give the checkpoint's root with the log's leaves after them.
    await tamper(ledger_at, "DELETE FROM merkle_nodes")
    await tamper(ledger_at, "INSERT INTO merkle_nodes VALUES (?, ?, ?)", (BLOCK_LEVEL, 0,
                                                                          "cd" * 32))
    top = await audit(ledger_at, show_progress=False)
    assert top.merkle_nodes.problem == ("the stored nodes and the log's events after them do "
                                        f"not give the Merkle root of the checkpoint at "
                                        f"position {5 * BLOCK + 3}")


async def test_a_wrong_node_makes_the_statement_fail_verification_never_pass(
        services: Services, signer: Signer, ledger_at: str | Path) -> None:
    rng, store = random.Random(14), services.store
    checkpointer = Checkpointer(store, signer)
    alice = int((await services.users.register("alice", "correct horse")).id)
    await grow(store, 3 * BLOCK, rng)
    await services.ledger.top_up(alice, 40)
    await grow(store, 2 * BLOCK, rng)
    statement = await build_statement(store, checkpointer, alice)
    verify_statement(statement, signer.public_key_pem)  # honest nodes: it holds
    size = statement["checkpoint"]["position"]
    first = statement["events"][0]["row"]["position"] - 1
    used = [p for r in inclusion_ranges(size, first) for p in perfect_parts(*r)
            if p[0] >= BLOCK_LEVEL]
    level, idx = used[0]  # a stored node on the path of Alice's first event
    await tamper(ledger_at, "UPDATE merkle_nodes SET hash = ? WHERE level = ? AND idx = ?",
                 ("ab" * 32, level, idx))
    forged = await build_statement(store, checkpointer, alice)
    with pytest.raises(StatementInvalid, match="does not lead to the signed Merkle root"):
        verify_statement(forged, signer.public_key_pem)


async def test_removed_nodes_are_built_again_and_sealing_and_statements_go_on(
        services: Services, signer: Signer, ledger_at: str | Path) -> None:
    """The nodes are derived: rows lost to a bad restore or a hand must not stop the sealer
    (every later checkpoint) nor the statements; both build the table again from the log."""
    rng, store = random.Random(16), services.store
    checkpointer = Checkpointer(store, signer)
    alice = int((await services.users.register("alice", "correct horse")).id)
    await services.ledger.top_up(alice, 40)
    await grow(store, 5 * BLOCK, rng)
    await checkpointer.seal()
    honest = await stored_table(store)
    # Alice's proof needs the sibling (level 9, index 1) of her first event's path.
    await tamper(ledger_at, "DELETE FROM merkle_nodes WHERE level = ?", (BLOCK_LEVEL + 1,))
    statement = await build_statement(store, checkpointer, alice)
    verify_statement(statement, signer.public_key_pem)
    assert await stored_table(store) == honest

    # The tree's right edge (level 10, index 0): the next seal extends the tree from it.
    await tamper(ledger_at, "DELETE FROM merkle_nodes WHERE level = ?", (BLOCK_LEVEL + 2,))
    await grow(store, 2 * BLOCK, rng)
    sealed = await checkpointer.seal()
    assert sealed is not None and sealed.position == 7 * BLOCK + 2
    assert sealed.merkle_root == root_of(await leaves(store, sealed.position)).hex()
    verify_statement(await build_statement(store, checkpointer, alice), signer.public_key_pem)
    await store.close()
    report = await audit(ledger_at, show_progress=False)
    assert report.ok and report.merkle_nodes.problem is None, report.render()


class CountingDb:
    """The store's real connection, counting the rows each read returns."""

    def __init__(self, db: Any, counter: list[int]) -> None:
        self._db, self._counter = db, counter

    async def fetchall(self, query: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        rows = await self._db.fetchall(query, params)
        self._counter[0] += len(rows)
        return rows  # type: ignore[no-any-return]

    async def fetchone(self, query: str, params: tuple[Any, ...] = ()) -> dict[str, Any] | None:
        row = await self._db.fetchone(query, params)
        self._counter[0] += row is not None
        return row  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


class CountingStore:
    def __init__(self, store: SqlEventStore) -> None:
        self._store, self.rows = store, [0]

    def read_db(self) -> CountingDb:
        return CountingDb(self._store.read_db(), self.rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


async def statement_reads(services: Services, checkpointer: Checkpointer, name: str,
                          prefix: int, rng: random.Random) -> tuple[int, int, int]:
    """Rows one statement read, the size of its tree, and its events: a new user whose three
    top-ups are a block apart, after `prefix` more events of the filler."""
    store = services.store
    await grow(store, prefix, rng)
    user = int((await services.users.register(name, "correct horse")).id)
    for _ in range(3):
        await services.ledger.top_up(user, 5)
        await grow(store, BLOCK + 7, rng)
    await checkpointer.seal()
    counting = CountingStore(store)
    statement = await build_statement(counting, checkpointer, user)  # type: ignore[arg-type]
    verify_statement(statement, signer_pem(checkpointer))
    return counting.rows[0], statement["checkpoint"]["position"], len(statement["events"])


def signer_pem(checkpointer: Checkpointer) -> str:
    return checkpointer.signer.public_key_pem


async def test_a_statements_reads_do_not_grow_with_the_log(
        services: Services, signer: Signer) -> None:
    rng, checkpointer = random.Random(15), Checkpointer(services.store, signer)
    small, small_log, events = await statement_reads(services, checkpointer, "alice", BLOCK,
                                                     rng)
    large, large_log, same = await statement_reads(services, checkpointer, "bob", 48 * BLOCK,
                                                   rng)
    assert same == events and large_log > 8 * small_log
    # Per event of the user: its block of leaves, a node per level above it, its predecessor;
    # once: the tail block and the account heads. Nothing that grows with the log.
    for rows, size in ((small, small_log), (large, large_log)):
        assert rows <= (events + 1) * BLOCK + events * (size.bit_length() + 3) + 40
    assert large <= small + BLOCK + events * 8
    assert large < large_log / 8  # the log was read before: every hash up to the checkpoint


async def open_accounts(store: SqlEventStore, first_id: int, count: int) -> None:
    """`count` more accounts of one event each (ids from `first_id`): heads, few events."""
    async def work(session: SqlSession) -> None:
        for user_id in range(first_id, first_id + count):
            await session.append(f"account-{user_id}", 0,
                                 [AccountOpened(user_id=user_id, username=f"many{user_id}")])
    await store.transact(work)


async def test_a_statements_reads_do_not_grow_with_the_accounts(
        services: Services, signer: Signer) -> None:
    """The account's proof comes from the accounts tree the sealing process keeps (ledger/
    head_tree.py): no read of every account's head. A process that did not seal the
    checkpoint reads them all once, keeps the tree, and moves it on over the events of the
    other's later seals: its statements are as good, and as cheap from then on."""
    sealer, rows = Checkpointer(services.store, signer), []
    for name, more in (("alice", 0), ("bob", 600)):
        await open_accounts(services.store, 800_000 + len(rows) * 1000, more)
        user = int((await services.users.register(name, "correct horse")).id)
        for _ in range(2):
            await services.ledger.top_up(user, 5)
        await sealer.seal()
        counting = CountingStore(services.store)
        statement = await build_statement(counting, sealer, user)  # type: ignore[arg-type]
        verify_statement(statement, signer.public_key_pem)
        rows.append(counting.rows[0])
    assert rows[1] <= rows[0] + BLOCK + 20, rows  # a block of leaves more at most, not 600
    other = Checkpointer(services.store, signer)  # another process, which has not sealed
    elsewhere = CountingStore(services.store)
    statement = await build_statement(elsewhere, other, user)  # type: ignore[arg-type]
    verify_statement(statement, signer.public_key_pem)
    assert elsewhere.rows[0] >= rows[1] + 600  # every head, once: then its tree is kept
    await services.ledger.top_up(user, 5)
    await sealer.seal()  # sealed by the first process again
    again = CountingStore(services.store)
    statement = await build_statement(again, other, user)  # type: ignore[arg-type]
    verify_statement(statement, signer.public_key_pem)
    assert statement["checkpoint"]["position"] > 0 and again.rows[0] <= rows[0] + BLOCK + 20


async def test_a_statement_made_while_a_seal_runs_waits_for_it_and_reads_no_heads(
        services: Services, signer: Signer) -> None:
    """The seal has the kept tree out until it commits; a statement asked meanwhile waits
    for it (one user of the tree at a time) and takes its proof from the tree the seal puts
    back, instead of reading all 600 heads."""
    sealer = Checkpointer(services.store, signer)
    await open_accounts(services.store, 800_000, 600)
    user = int((await services.users.register("alice", "correct horse")).id)
    await services.ledger.top_up(user, 5)
    await sealer.seal()
    await open_accounts(services.store, 810_000, 50)  # the next seal has work; alice not
    counting = CountingStore(services.store)
    sealed, statement = await asyncio.gather(
        sealer.seal(), build_statement(counting, sealer, user))  # type: ignore[arg-type]
    verify_statement(statement, signer.public_key_pem)
    assert sealed is not None and statement["checkpoint"]["position"] == sealed.position
    assert counting.rows[0] < BLOCK + 100, counting.rows  # its block and paths, not 651 heads
