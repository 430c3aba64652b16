"""Signed checkpoints of the log: (position, head hash, Merkle root, account heads) under an
Ed25519 key that lives in a file, never in the database.

Whoever can write the database but cannot read the key file cannot forge a checkpoint, so a
log rewritten end to end after a checkpoint was signed no longer matches it. The `accounts_root`
commits to every account stream's (count, last hash) at that position: a statement proves with
it that none of an account's events up to the checkpoint was left out.

The tables are control plane (kept for good, never events). Any process may seal: a seal is
made from committed events, outside any write, and written in one write transaction that
first checks that the checkpoint it extends is still the latest and the log still holds the
event it signs (else it writes nothing and is made again). The store's writer lock (SQLite)
or write advisory lock (PostgreSQL) orders those writes of all processes that share the log
and the key file.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from events import SqlDatabase, SqlEventStore, SqlSession
from events.codec import canonical_json
from events.merkle import Frontier, leaf_hash
from events.rows import utc_now
from ledger import merkle_nodes
from ledger.head_tree import HeadTree

CHECKPOINT_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger_keys (
    key_id         TEXT PRIMARY KEY,
    public_key_pem TEXT NOT NULL,
    first_used_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    position      INTEGER PRIMARY KEY,
    head_hash     TEXT    NOT NULL,
    merkle_root   TEXT    NOT NULL,
    accounts_root TEXT    NOT NULL,
    accounts      INTEGER NOT NULL,
    signed_at     TEXT    NOT NULL,
    key_id        TEXT    NOT NULL,
    signature     TEXT    NOT NULL,
    frontier      TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoint_heads (
    stream_id TEXT    PRIMARY KEY,
    version   INTEGER NOT NULL,
    hash      TEXT    NOT NULL
);
""" + merkle_nodes.NODES_SCHEMA

FORMAT = "ml-cabinet-checkpoint/1"
# One seal reads at most this many new events, so a first seal over an old log holds the
# writer for a moment per batch, not for the whole history.
SEAL_BATCH_EVENTS = 10_000
HEADS_A_STATEMENT = 150  # rows of one upsert of checkpoint_heads: 450 parameters
# Leaves a seal hashes between two turns of the event loop's other tasks (about 1 ms).
SLICE_LEAVES = merkle_nodes.BLOCK
# Batches a seal() makes in vain (another process sealed, the log changed) before it
# leaves the rest to the next seal.
SEAL_RACES = 8

# A tree of this many accounts or more is made whole, or moved past a new account, in a
# worker thread: that hashes every block from the new leaf on, 131 ms at 100,000 accounts
# (a whole tree 5-7 ms a thousand), and on the event loop no request would be answered
# meanwhile. In a thread the loop takes the GIL back at each switch interval (5 ms). Below
# it the hop would cost more than the hashing. The tree is used under the tree lock only,
# and its holder waits for the thread, so nothing else touches it meanwhile.
OFF_LOOP_ACCOUNTS = 4_096


def key_id_of(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def load_public_key(pem: str | bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the public key is not an Ed25519 key")
    return key


def public_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@dataclass(frozen=True, kw_only=True)
class Checkpoint:
    key_id: str
    position: int
    head_hash: str
    merkle_root: str
    accounts_root: str
    accounts: int
    signed_at: str
    signature: str

    def signed_bytes(self) -> bytes:
        return canonical_json({"format": FORMAT, "key_id": self.key_id,
                               "position": self.position, "head_hash": self.head_hash,
                               "merkle_root": self.merkle_root,
                               "accounts_root": self.accounts_root, "accounts": self.accounts,
                               "signed_at": self.signed_at}).encode()

    def to_json(self) -> dict[str, Any]:
        return {"key_id": self.key_id, "position": self.position, "head_hash": self.head_hash,
                "merkle_root": self.merkle_root, "accounts_root": self.accounts_root,
                "accounts": self.accounts, "signed_at": self.signed_at,
                "signature": self.signature}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Checkpoint:
        fields = ("key_id", "position", "head_hash", "merkle_root", "accounts_root", "accounts",
                  "signed_at", "signature")
        return cls(**{name: data[name] for name in fields})  # extra keys (a row's) ignored

    def verifies_with(self, public_key: Ed25519PublicKey) -> bool:
        if key_id_of(public_key) != self.key_id:
            return False
        try:
            public_key.verify(base64.b64decode(self.signature, validate=True),
                              self.signed_bytes())
        except (InvalidSignature, ValueError):
            return False
        return True


class Signer:
    """The Ed25519 signing key, read from its file (made at first start, mode 0600)."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.public_key = private_key.public_key()
        self.key_id = key_id_of(self.public_key)
        self.public_key_pem = public_pem(self.public_key)

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self._key.sign(message)).decode()

    @classmethod
    def from_file(cls, path: Path) -> Signer:
        """Load the key, creating it first if there is none. Two processes starting together
        agree on one: the key is written whole under a private name, then linked into place."""
        if not path.exists():
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption())
            draft = path.with_name(f"{path.name}.{secrets.token_hex(8)}.tmp")
            fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(pem)
                    out.flush()
                    os.fsync(out.fileno())
                with contextlib.suppress(FileExistsError):  # another process won: use its key
                    os.link(draft, path)
            finally:
                draft.unlink(missing_ok=True)
        if path.stat().st_mode & 0o077:
            raise PermissionError(f"{path} can be read by others: chmod 600 it (and think "
                                  "about whether it was copied; if so, rotate the key)")
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} does not hold an Ed25519 private key")
        return cls(key)


def _checkpoint_from_row(row: dict[str, Any]) -> Checkpoint:
    return Checkpoint(key_id=row["key_id"], position=int(row["position"]),
                      head_hash=row["head_hash"], merkle_root=row["merkle_root"],
                      accounts_root=row["accounts_root"], accounts=int(row["accounts"]),
                      signed_at=row["signed_at"], signature=row["signature"])


async def latest_checkpoint(db: SqlDatabase) -> Checkpoint | None:
    row = await db.fetchone("SELECT * FROM checkpoints ORDER BY position DESC LIMIT 1")
    return None if row is None else _checkpoint_from_row(row)


async def all_checkpoints(db: SqlDatabase, table: str = "checkpoints") -> list[Checkpoint]:
    rows = await db.fetchall(f"SELECT * FROM {table} ORDER BY position")
    return [_checkpoint_from_row(row) for row in rows]


HEADS_QUERY = "SELECT stream_id, version, hash FROM checkpoint_heads"


async def account_heads(db: SqlDatabase) -> list[tuple[str, int, str]]:
    return _heads_of(await db.fetchall(HEADS_QUERY))


def _heads_of(rows: list[dict[str, Any]]) -> list[tuple[str, int, str]]:
    return [(r["stream_id"], int(r["version"]), r["hash"]) for r in rows]


async def known_keys(db: SqlDatabase, table: str = "ledger_keys") -> list[dict[str, str]]:
    rows = await db.fetchall(f"SELECT key_id, public_key_pem, first_used_at FROM {table} "
                             "ORDER BY first_used_at, key_id")
    return [{"key_id": r["key_id"], "algorithm": "Ed25519",
             "public_key_pem": r["public_key_pem"], "first_used_at": r["first_used_at"]}
            for r in rows]


async def _moved_between(db: SqlDatabase, after: int, upto: int
                         ) -> dict[str, tuple[int, str]]:
    """The head (version, hash) at `upto` of each stream the events after position `after`
    moved."""
    rows = await db.fetchall(
        "SELECT position, stream_id, version, hash FROM events WHERE position > ? "
        "AND position <= ? ORDER BY position", (after, upto))
    return {r["stream_id"]: (int(r["version"]), r["hash"]) for r in rows}


async def _stored_tree(db: SqlDatabase, position: int,
                       moved: dict[str, tuple[int, str]] | None = None) -> HeadTree:
    """The tree of every head as stored, with those `moved` after it, at `position`: the
    heads turned into leaves off the loop when they are many (OFF_LOOP_ACCOUNTS)."""
    rows = await db.fetchall(HEADS_QUERY)  # turned into heads in the thread, if it is one
    moved = moved or {}
    if max(len(rows), len(moved)) >= OFF_LOOP_ACCOUNTS:  # a first seal: all of them moved
        return await asyncio.to_thread(_tree_of_rows, position, rows, moved)
    return _tree_of_rows(position, rows, moved)


def _tree_of_rows(position: int, rows: list[dict[str, Any]],
                  moved: dict[str, tuple[int, str]]) -> HeadTree:
    stored = {s: (v, h) for s, v, h in _heads_of(rows)} | moved
    return HeadTree(position, [(s, v, h) for s, (v, h) in stored.items()])


async def _advance(tree: HeadTree, position: int, moved: dict[str, tuple[int, str]]) -> None:
    """tree.advance(position, moved), off the loop when it hashes much (OFF_LOOP_ACCOUNTS)."""
    if len(tree) >= OFF_LOOP_ACCOUNTS and tree.adds_streams(moved):
        await asyncio.to_thread(tree.advance, position, moved)
    else:
        tree.advance(position, moved)


async def _signed_as(db: SqlDatabase, tree: HeadTree) -> bool:
    """Whether a checkpoint at the tree's position signed its root: a tree that is not the
    log's (a database restored under a running process, say) is never moved on."""
    row = await db.fetchone("SELECT accounts_root, accounts FROM checkpoints "
                            "WHERE position = ?", (tree.position,))
    return row is not None and tree.signed_as(row["accounts_root"], int(row["accounts"]))


async def _nodes_made(nodes: merkle_nodes.Pending, leaves: list[bytes], pause_s: float
                      ) -> list[tuple[int, int, bytes]]:
    """The stored nodes the leaves after `nodes.built` complete, a block at a time."""
    made: list[tuple[int, int, bytes]] = []
    for start in range(0, nodes.target - nodes.built, merkle_nodes.BLOCK):
        made += merkle_nodes.block_completed(nodes.blocks,
                                             leaves[start:start + merkle_nodes.BLOCK])
        await asyncio.sleep(pause_s)  # a turn for requests (a pace, not a synchronisation)
    return made


@dataclass
class _Leaves:
    """The events of a batch, read and hashed a slice at a time (_read_leaves)."""

    leaves: list[bytes]  # of every event read, from the first
    heads: dict[str, tuple[int, str]]  # the streams moved after `done`: (version, hash)
    last_hash: str


class LogChanged(RuntimeError):
    """Rows read for a seal no longer chain onto the ones read before them: the log was
    rewritten or restored while it was read. The seal is made again."""


async def _read_leaves(db: SqlDatabase, first: int, done: int, upto: int, frontier: Frontier,
                       done_hash: str | None, pause_s: float) -> _Leaves:
    """The leaf of each event after `first` up to `upto`; those after `done` go onto
    `frontier` too. A slice a query: a read of thousands of rows made into dicts on a
    worker thread holds the interpreter's lock from the event loop as long. Slices are
    separate reads, so each starts at the last row of the one before, and the row at `done`
    must hold the hash of the checkpoint there (`done_hash`): one log, not two, is signed."""
    read, held = _Leaves([], {}, ""), {} if done_hash is None else {done: done_hash}
    while (position := first + len(read.leaves)) < upto:
        end = min(upto, position + SLICE_LEAVES)
        rows = await db.fetchall("SELECT position, stream_id, version, hash FROM events "
                                 "WHERE position >= ? AND position <= ? ORDER BY position",
                                 (position, end))
        if position > 0:  # the overlap row: there, and as read before
            if not rows or int(rows[0]["position"]) != position or (
                    position in held and held.pop(position) != rows[0]["hash"]):
                raise LogChanged(f"the event at position {position} changed while read")
            rows = rows[1:]
        if len(rows) != end - position:  # positions are gapless; else the log is damaged
            raise RuntimeError(f"the log has gaps before position {end}: not sealed")
        if done in held and position < done <= end and rows[done - position - 1]["hash"] \
                != held.pop(done):
            raise LogChanged(f"the event at position {done} is not the one signed there")
        leaves = [leaf_hash(bytes.fromhex(r["hash"])) for r in rows]
        skip = max(0, done - position)
        frontier.extend(leaves[skip:])
        read.heads.update({r["stream_id"]: (int(r["version"]), r["hash"]) for r in rows[skip:]})
        read.leaves += leaves
        read.last_hash = rows[-1]["hash"]
        held[end] = read.last_hash
        await asyncio.sleep(pause_s)  # a turn for requests (a pace, not a synchronisation)
    return read


@dataclass(frozen=True, kw_only=True)
class SealBatch:
    """A checkpoint made from committed events, and what its transaction writes."""

    checkpoint: Checkpoint
    after: int  # the position of the checkpoint it extends (0: none)
    frontier: Frontier
    heads: dict[str, tuple[int, str]]  # the streams moved since `after`: (version, hash)
    nodes: merkle_nodes.Pending | None  # None: a stored node was missing
    made: list[tuple[int, int, bytes]] | None
    tree: HeadTree
    caught_up: bool
    signer: Signer

    async def write(self, session: SqlSession) -> bool:
        """The batch's rows, unless another process sealed (or stored nodes) since it was
        read, or the event it signs changed (the log rewritten or restored): then nothing,
        and False."""
        db = session.db
        latest = await db.fetchone("SELECT COALESCE(MAX(position), 0) AS p FROM checkpoints")
        if (int(latest["p"]) if latest else 0) != self.after:
            return False
        upto = self.checkpoint.position
        # The event signed is still there (a database restored meanwhile, say, is not
        # signed over): its hash chains every event before it.
        signed = await db.fetchone("SELECT hash FROM events WHERE position = ?", (upto,))
        if signed is None or signed["hash"] != self.checkpoint.head_hash:
            return False
        if self.nodes is None or self.made is None:
            # A stored node was missing when the batch was read: extend drops the table and
            # builds it again here, from the log, as far as one batch goes.
            await merkle_nodes.extend(db, upto, limit=upto - self.after + merkle_nodes.BLOCK)
        elif await merkle_nodes.built_through(db) != self.nodes.built:
            return False
        else:
            await merkle_nodes.insert(db, self.made)
        moved = list(self.heads.items())
        for start in range(0, len(moved), HEADS_A_STATEMENT):
            chunk = moved[start:start + HEADS_A_STATEMENT]
            await db.execute(
                "INSERT INTO checkpoint_heads VALUES " + ", ".join(["(?, ?, ?)"] * len(chunk))
                + " ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, "
                "hash = excluded.hash",
                tuple(v for stream_id, (version, digest) in chunk
                      for v in (stream_id, version, digest)))
        c = self.checkpoint
        await db.execute(
            "INSERT INTO ledger_keys VALUES (?, ?, ?) ON CONFLICT (key_id) DO NOTHING",
            (self.signer.key_id, self.signer.public_key_pem, c.signed_at))
        await db.execute(
            "INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (upto, c.head_hash, c.merkle_root, c.accounts_root, c.accounts, c.signed_at,
             c.key_id, c.signature, json.dumps(self.frontier.to_json())))
        return True


class Checkpointer:
    """Seals checkpoints of one store with one key."""

    def __init__(self, store: SqlEventStore, signer: Signer,
                 clock: Callable[[], datetime] = utc_now, pause_s: float = 0.0) -> None:
        self.store, self.signer, self.clock = store, signer, clock
        # Between two slices of a seal's hashing: with none, a request that needs several
        # turns of the loop meets a slice at each (the service sets one: web/sealing.py).
        self.pause_s = pause_s
        # The accounts tree at a checkpoint's position (or at a batch's, once another
        # process sealed there or beyond): checked against a signed root before any use.
        self._heads: HeadTree | None = None
        # One user of the kept tree at a time: a seal's batch (which has it out until its
        # write is done), or a statement moving it on (tree_for), which so never reads
        # every head in vain.
        self._tree_lock = asyncio.Lock()

    async def seal(self, pause_s: float | None = None) -> Checkpoint | None:
        """Sign a checkpoint at the head of the log as it is now (in batches); the newest
        checkpoint, or None when the log is empty. `pause_s` between slices of hashing
        (None: the sealer's own; a statement waiting for its seal passes 0).

        A batch is made outside the write transaction, from committed events (read apart,
        on the store's background connection), in slices that give the event loop back;
        its transaction only checks that the log is still the one read and nobody sealed
        meanwhile, then writes the rows. Made inside, it held every write and request for
        the whole batch: 8-12 ms a thousand events, and a loaded service seals some 6,000
        once a second (BENCHMARKS.md, round 12). The tree is taken a batch at a time, so a
        statement waits for one batch, not a backlog."""
        pause_s = self.pause_s if pause_s is None else pause_s
        target, races = await self.store.head_position(), 0
        while races < SEAL_RACES:
            async with self._tree_lock:
                # An old log's nodes (or ones a write had to make again) first, in batches:
                # two indexed reads when they are caught up.
                await merkle_nodes.build(self.store)
                try:
                    batch = await self._prepare(self.store.background_db(), pause_s)
                except LogChanged:
                    races += 1
                    continue
                if batch is None:
                    break
                if await self.store.transact(batch.write):
                    self._heads = batch.tree  # committed: a checkpoint's tree now
                    if batch.caught_up:
                        return batch.checkpoint
                    continue
                races += 1
                latest = await latest_checkpoint(self.store.read_db())
                if latest is not None and latest.position >= batch.checkpoint.position:
                    # Another process sealed meanwhile: the tree, the log's at the batch's
                    # position, moves on to (or is checked against) that one's.
                    self._heads = batch.tree
                    if latest.position >= target:
                        return latest
        return await latest_checkpoint(self.store.read_db())

    async def _prepare(self, db: SqlDatabase, pause_s: float = 0.0) -> SealBatch | None:
        """The next batch's checkpoint, signed, with every row it writes; None when the
        latest checkpoint is at the head."""
        last = await db.fetchone("SELECT position, head_hash, frontier FROM checkpoints "
                                 "ORDER BY position DESC LIMIT 1")
        head_row = await db.fetchone("SELECT COALESCE(MAX(position), 0) AS p FROM events")
        head = int(head_row["p"]) if head_row else 0
        done = int(last["position"]) if last else 0
        if head <= done:
            return None
        frontier = (Frontier.from_json(done, json.loads(last["frontier"])) if last
                    else Frontier())
        upto = min(head, done + SEAL_BATCH_EVENTS)
        nodes = await merkle_nodes.pending(db, upto, limit=upto - done + merkle_nodes.BLOCK)
        first = done if nodes is None else min(done, nodes.built)
        read = await _read_leaves(db, first, done, upto, frontier,
                                  last["head_hash"] if last else None, pause_s)
        made = None if nodes is None else await _nodes_made(
            nodes, read.leaves[nodes.built - first:], pause_s)
        tree = await self._tree_at(db, done, upto, read.heads)
        now = self.clock().isoformat(timespec="microseconds")
        unsigned = Checkpoint(key_id=self.signer.key_id, position=upto,
                              head_hash=read.last_hash, merkle_root=frontier.root().hex(),
                              accounts_root=tree.root().hex(), accounts=len(tree),
                              signed_at=now, signature="")
        checkpoint = Checkpoint(**{**unsigned.__dict__,
                                   "signature": self.signer.sign(unsigned.signed_bytes())})
        return SealBatch(checkpoint=checkpoint, after=done, frontier=frontier, heads=read.heads,
                         nodes=nodes, made=made, tree=tree, caught_up=upto == head,
                         signer=self.signer)

    async def tree_for(self, db: SqlDatabase, checkpoint: Checkpoint) -> HeadTree | None:
        """The accounts tree of `checkpoint` (a committed one), kept for the next statement
        and seal: the one held, moved on over the events since its position (another
        process sealed), else made from every head as stored. None when the checkpoint is
        no longer the latest, or the heads read are no longer its (read again)."""
        async with self._tree_lock:
            held = self._heads
            if held is not None and (held.position or 0) > checkpoint.position:
                return None  # a newer checkpoint was sealed since this one was read
            tree = await self._moved_on(db, checkpoint.position)
            if tree is None:
                tree = await _stored_tree(db, checkpoint.position)
            if not tree.signed_as(checkpoint.accounts_root, checkpoint.accounts):
                self._heads = None  # not the log's (a database restored under it, say)
                return None
            self._heads = tree
            return tree

    async def _tree_at(self, db: SqlDatabase, done: int, upto: int,
                       moved: dict[str, tuple[int, str]]) -> HeadTree:
        """The accounts tree at `upto`, given the heads `moved` after `done` (the last
        checkpoint's position): the kept one moved on (ledger/head_tree.py says why that
        holds), else every head, as stored at `done`, with those moved. The kept one is
        taken out meanwhile: seal() puts a tree back once its write committed, or once a
        checkpoint at or past its position is there (another process's), and a failed seal
        leaves none."""
        tree = await self._moved_on(db, done)  # over committed events only: up to `done`
        self._heads = None
        if tree is None or not await _signed_as(db, tree):
            # The stored heads are at `done` (or later: then another process sealed, and
            # the batch's write finds its checkpoint is not the latest).
            return await _stored_tree(db, upto, moved)
        await _advance(tree, upto, moved)
        return tree

    async def _moved_on(self, db: SqlDatabase, position: int) -> HeadTree | None:
        """The kept tree, moved on to the committed checkpoint at `position` over the
        events since its own; None when there is none, or it is ahead, or it is more than
        a seal's batch behind (reading every head is then as cheap)."""
        tree = self._heads
        if tree is None or tree.position is None or not (
                0 <= position - tree.position <= SEAL_BATCH_EVENTS):
            return None
        if tree.position < position:
            await _advance(tree, position, await _moved_between(db, tree.position, position))
        return tree

    async def register_key(self) -> None:
        """List this process's key among those that ever signed, before it signs anything."""
        async def work(session: SqlSession) -> None:
            await session.db.execute(
                "INSERT INTO ledger_keys VALUES (?, ?, ?) ON CONFLICT (key_id) DO NOTHING",
                (self.signer.key_id, self.signer.public_key_pem,
                 self.clock().isoformat(timespec="microseconds")))
        await self.store.transact(work)
