"""Stored inner nodes of the log's Merkle tree, so a proof reads O(log n) rows, not the log.

`merkle_nodes` holds the root of every complete perfect subtree of 2^BLOCK_LEVEL leaves or
more, up to the latest checkpoint: about n/128 rows in all. A proof's sibling is a tree node
(perfect, or on the right edge, made of perfect subtrees); its parts of BLOCK_LEVEL levels or
more come from the table, the smaller ones from the leaves of their own 2^BLOCK_LEVEL block.
So a statement reads, per event of the user, one block of leaf hashes and a few nodes.

The sealer writes the nodes in the checkpoint's own transaction (ledger/checkpoints.py): the
append path stays as it is, and a checkpoint on view always has its nodes. The table says how
far it is built (the last block node), so a build over an old log goes in bounded batches, one
transaction each, and an interrupted one resumes there. Nodes are derived data: a proof is
checked against the signed root, so a wrong node makes a proof fail, never pass; the audit
checks them against the log's tree (`audit_nodes`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from events import Database, SqlDatabase, SqlEventStore, SqlSession
from events.merkle import (
    Frontier,
    consistency_ranges,
    inclusion_ranges,
    leaf_hash,
    node_hash,
    perfect_parts,
    perfect_root,
    root_of_parts,
)

NODES_SCHEMA = """
CREATE TABLE IF NOT EXISTS merkle_nodes (
    level INTEGER NOT NULL,
    idx   INTEGER NOT NULL,
    hash  TEXT    NOT NULL,
    PRIMARY KEY (level, idx)
);
"""

BLOCK_LEVEL = 8  # 256 leaves a block: a proof reads <= 256 leaf rows a block, the table n/128
BLOCK = 1 << BLOCK_LEVEL
# One build transaction reads at most this many events: the writer is held for a moment.
BUILD_BATCH_EVENTS = 10_000
RUN_BLOCKS = 40  # blocks read by one range query: 10,240 leaf rows at most
IN_LIST = 500  # ids per IN (...) list: well under both databases' parameter limits


T = TypeVar("T")


class NodesMissing(RuntimeError):
    """A node the table should hold is not there (not built yet, or rows were removed)."""


async def built_through(db: SqlDatabase) -> int:
    """How many leaves the table covers: up to the end of its last block node."""
    row = await db.fetchone("SELECT MAX(idx) AS m FROM merkle_nodes WHERE level = ?",
                            (BLOCK_LEVEL,))
    return 0 if row is None or row["m"] is None else (int(row["m"]) + 1) << BLOCK_LEVEL


async def extend(db: SqlDatabase, upto: int, limit: int = BUILD_BATCH_EVENTS) -> int:
    """Store the nodes completed by the leaves after `built_through`, up to `upto` (at most
    `limit` of them, to a whole block), inside the caller's write transaction; how many
    leaves were added."""
    due = await pending(db, upto, limit)
    if due is None:  # rows removed (a restore, a hand): derived data, so start again
        await db.execute("DELETE FROM merkle_nodes")
        return await extend(db, upto, limit)
    if due.target <= due.built:
        return 0
    rows = await db.fetchall("SELECT position, hash FROM events WHERE position > ? AND "
                             "position <= ? ORDER BY position", (due.built, due.target))
    if [int(r["position"]) for r in rows] != list(range(due.built + 1, due.target + 1)):
        raise RuntimeError(f"the log has a gap or ends between positions {due.built + 1} and "
                           f"{due.target}: nodes not built")
    await insert(db, blocks_completed(due.blocks, [str(r["hash"]) for r in rows]))
    return due.target - due.built


@dataclass
class Pending:
    """The nodes still to store: the leaves after `built` up to `target` (whole blocks) make
    them, appended to `blocks`, the stored right edge at `built`."""

    built: int
    target: int
    blocks: Frontier


async def pending(db: SqlDatabase, upto: int, limit: int = BUILD_BATCH_EVENTS
                  ) -> Pending | None:
    """What `extend` would add, read but not made; None when a stored node it needs is
    missing (then the table is built again)."""
    built = await built_through(db)
    target = (min(upto, built + limit) >> BLOCK_LEVEL) << BLOCK_LEVEL
    if target <= built:
        return Pending(built, built, Frontier())
    try:
        return Pending(built, target, await _frontier_at(db, built))
    except NodesMissing:
        return None


async def insert(db: SqlDatabase, completed: list[tuple[int, int, bytes]]) -> None:
    """Store (level, index, root) nodes, inside the caller's write transaction."""
    for start in range(0, len(completed), IN_LIST // 3):
        chunk = completed[start:start + IN_LIST // 3]
        await db.execute(
            "INSERT INTO merkle_nodes (level, idx, hash) VALUES "
            + ", ".join(["(?, ?, ?)"] * len(chunk)) + " ON CONFLICT (level, idx) DO NOTHING",
            tuple(v for level, idx, node in chunk for v in (level, idx, node.hex())))


async def build(store: SqlEventStore) -> int:
    """Catch the table up with the latest checkpoint, one batch a transaction; the leaves
    it covers. Cheap when caught up (two indexed reads)."""
    async def batch(session: SqlSession) -> int:
        row = await session.db.fetchone("SELECT COALESCE(MAX(position), 0) AS p "
                                        "FROM checkpoints")
        return await extend(session.db, int(row["p"]) if row else 0)

    while await store.transact(batch):
        pass
    return await built_through(store.read_db())


async def ensure_built(store: SqlEventStore, size: int) -> None:
    """Every node a proof in a tree of `size` leaves can need is stored (built if not)."""
    if await built_through(store.read_db()) < (size >> BLOCK_LEVEL) << BLOCK_LEVEL:
        await build(store)


async def stored(store: SqlEventStore, size: int,
                 read: Callable[[], Awaitable[T]]) -> T:
    """`read` (a proof from stored nodes) once every node for `size` leaves is stored; when
    one is missing anyway, once more after the nodes are built again from the log."""
    await ensure_built(store, size)
    try:
        return await read()
    except NodesMissing:
        await rebuild(store)
        return await read()


async def rebuild(store: SqlEventStore) -> int:
    """Drop every stored node and build them again from the log: what a proof does when a
    node it needs is missing, since the nodes are derived and the signed root is the check."""
    async def drop(session: SqlSession) -> None:
        await session.db.execute("DELETE FROM merkle_nodes")

    await store.transact(drop)
    return await build(store)


async def inclusion_proofs_stored(db: SqlDatabase, size: int, indexes: Iterable[int]
                                  ) -> dict[int, list[bytes]]:
    """As `events.merkle.inclusion_proofs` over the first `size` leaves of the log, byte
    for byte, from stored nodes and the leaves of the wanted leaves' blocks."""
    paths = {i: inclusion_ranges(size, i) for i in set(indexes)}
    roots = await range_roots(db, size, {r for ranges in paths.values() for r in ranges})
    return {i: [roots[r] for r in ranges] for i, ranges in paths.items()}


async def consistency_proof_stored(db: SqlDatabase, size: int, first: int) -> list[bytes]:
    """As `events.merkle.consistency_proof` over the first `size` leaves of the log."""
    ranges = consistency_ranges(size, first)
    roots = await range_roots(db, size, set(ranges))
    return [roots[r] for r in ranges]


async def range_roots(db: SqlDatabase, size: int, ranges: Collection[tuple[int, int]]
                      ) -> dict[tuple[int, int], bytes]:
    """The root of each tree node [lo, hi) of the tree of `size` leaves."""
    parts = {r: perfect_parts(*r) for r in ranges}
    wanted = {p for ps in parts.values() for p in ps}
    stored = await _read_nodes(db, {p for p in wanted if p[0] >= BLOCK_LEVEL})
    blocks = sorted({(idx << level) >> BLOCK_LEVEL for level, idx in wanted
                     if level < BLOCK_LEVEL})
    small = await _block_nodes(db, blocks, size)

    def part_root(level: int, idx: int) -> bytes:
        return stored[(level, idx)] if level >= BLOCK_LEVEL else small[(level, idx)]

    return {r: root_of_parts([part_root(*p) for p in ps]) for r, ps in parts.items()}


async def _read_nodes(db: SqlDatabase, keys: Collection[tuple[int, int]]
                      ) -> dict[tuple[int, int], bytes]:
    """The stored nodes at `keys`, every level in one statement (a round trip per ~500 ids)."""
    found: dict[tuple[int, int], bytes] = {}
    pending = sorted(keys)
    while pending:
        chunk, pending = pending[:IN_LIST], pending[IN_LIST:]
        levels = sorted({level for level, _ in chunk})
        ids = {level: [idx for lv, idx in chunk if lv == level] for level in levels}
        where = " OR ".join(f"(level = ? AND idx IN ({', '.join('?' * len(ids[level]))}))"
                            for level in levels)
        rows = await db.fetchall(f"SELECT level, idx, hash FROM merkle_nodes WHERE {where}",
                                 tuple(v for level in levels for v in (level, *ids[level])))
        found.update({(int(r["level"]), int(r["idx"])): bytes.fromhex(r["hash"])
                      for r in rows})
    if missing := set(keys) - found.keys():
        raise NodesMissing(f"merkle_nodes lacks {len(missing)} node(s), e.g. (level, index) "
                           f"{min(missing)}")
    return found


async def _block_nodes(db: SqlDatabase, blocks: list[int], size: int
                       ) -> dict[tuple[int, int], bytes]:
    """Every perfect subtree below BLOCK_LEVEL inside the given blocks (the last one may be
    partial), from their leaves: one range read per run of adjacent blocks."""
    runs: list[list[int]] = []
    for block in blocks:  # (a run is capped, so one read holds a bounded number of rows)
        if runs and runs[-1][-1] == block - 1 and len(runs[-1]) < RUN_BLOCKS:
            runs[-1].append(block)
        else:
            runs.append([block])
    nodes: dict[tuple[int, int], bytes] = {}
    for run in runs:
        lo, hi = run[0] << BLOCK_LEVEL, min((run[-1] + 1) << BLOCK_LEVEL, size)
        rows = await db.fetchall("SELECT position, hash FROM events WHERE position > ? AND "
                                 "position <= ? ORDER BY position", (lo, hi))
        if [int(r["position"]) for r in rows] != list(range(lo + 1, hi + 1)):
            raise RuntimeError(f"the log has a gap between positions {lo + 1} and {hi}")
        level_nodes = [leaf_hash(bytes.fromhex(r["hash"])) for r in rows]
        first = lo
        for level in range(BLOCK_LEVEL):
            nodes.update({(level, (first >> level) + k): n for k, n in enumerate(level_nodes)})
            level_nodes = [node_hash(level_nodes[k], level_nodes[k + 1])
                           for k in range(0, len(level_nodes) - 1, 2)]
    return nodes


def blocks_completed(blocks: Frontier, hashes: list[str]) -> list[tuple[int, int, bytes]]:
    """(level, index, root) of every node of BLOCK_LEVEL or more that the whole blocks of
    event `hashes` complete, appended to `blocks`: a frontier whose leaves are block roots
    (its height h is level BLOCK_LEVEL + h), so the hashing runs block by block."""
    completed = []
    for start in range(0, len(hashes), BLOCK):
        completed += block_completed(
            blocks, [leaf_hash(bytes.fromhex(h)) for h in hashes[start:start + BLOCK]])
    return completed


def block_completed(blocks: Frontier, leaves: Sequence[bytes]) -> list[tuple[int, int, bytes]]:
    """The nodes one whole block of leaves completes, appended to `blocks`."""
    root = perfect_root(leaves)
    completed = [(BLOCK_LEVEL, blocks.size, root)]
    return completed + [(BLOCK_LEVEL + height, idx, node)
                        for height, idx, node in blocks.append_completing(root, 1)]


async def _frontier_at(db: SqlDatabase, built: int) -> Frontier:
    """The right edge of the tree of `built` leaves (a whole number of blocks), in blocks:
    all stored."""
    keys, offset = [], 0
    for level in range(built.bit_length() - 1, BLOCK_LEVEL - 1, -1):
        if built >> level & 1:
            keys.append((level, offset >> level))
            offset += 1 << level
    nodes = await _read_nodes(db, keys)
    return Frontier(built >> BLOCK_LEVEL,
                    [(level - BLOCK_LEVEL, nodes[(level, idx)]) for level, idx in keys])


@dataclass(frozen=True)
class NodesVerdict:
    checked: int  # stored nodes found consistent with the log's tree
    problem: str | None


async def audit_nodes(db: Database, schema: str = "live") -> NodesVerdict:
    """The stored nodes against the log's tree in `schema` (the audited file, attached), in
    O(n/128) hashes, not O(n): every node of the tree up to where the table is built is there
    (and no other), each is the hash of its two children, and the top ones with the log's
    leaves after them give the Merkle root of the checkpoint there. A wrong node cannot keep
    all three without a collision, so it is caught; `--checkpoints` holds that root to the
    log's own leaves and to its signature."""
    found = await db.fetchone(f"SELECT name FROM {schema}.sqlite_master WHERE type = 'table' "
                              "AND name = 'merkle_nodes'")
    if found is None:  # a file from before the table: opened by the service, it is built
        return NodesVerdict(0, None)
    stored = {(int(r["level"]), int(r["idx"])): bytes.fromhex(r["hash"]) for r in
              await db.fetchall(f"SELECT level, idx, hash FROM {schema}.merkle_nodes")}
    built = max(((idx + 1) << BLOCK_LEVEL for level, idx in stored if level == BLOCK_LEVEL),
                default=0)
    tree = {(level, idx) for level in range(BLOCK_LEVEL, built.bit_length())
            for idx in range(built >> level)}
    if missing := tree - stored.keys():
        return NodesVerdict(0, f"the stored node (level, index) {min(missing)} is missing")
    if extra := stored.keys() - tree:
        return NodesVerdict(0, f"the stored node (level, index) {min(extra)} is no node of the "
                               f"log's tree up to position {built}")
    for level, idx in sorted(tree):
        if level > BLOCK_LEVEL and stored[(level, idx)] != node_hash(
                stored[(level - 1, 2 * idx)], stored[(level - 1, 2 * idx + 1)]):
            return NodesVerdict(0, f"the stored node (level {level}, index {idx}) is not the "
                                   "hash of its two children")
    if not stored:
        return NodesVerdict(0, None)
    return await _root_problem(db, schema, stored, built)


async def _root_problem(db: Database, schema: str, stored: dict[tuple[int, int], bytes],
                        built: int) -> NodesVerdict:
    checkpoint = await db.fetchone(f"SELECT position, merkle_root FROM {schema}.checkpoints "
                                   "WHERE position >= ? ORDER BY position LIMIT 1", (built,))
    if checkpoint is None:
        return NodesVerdict(0, f"nodes are stored up to position {built}, past every "
                               "checkpoint")
    position, offset, edge = int(checkpoint["position"]), 0, []
    for level in range(built.bit_length() - 1, BLOCK_LEVEL - 1, -1):
        if built >> level & 1:
            edge.append((level, stored[(level, offset >> level)]))
            offset += 1 << level
    frontier = Frontier(built, edge)
    while frontier.size < position:  # a few leaves; more only where a build was cut short
        rows = await db.fetchall(f"SELECT hash FROM {schema}.events WHERE position > ? AND "
                                 "position <= ? ORDER BY position",
                                 (frontier.size, min(position, frontier.size + BLOCK * RUN_BLOCKS)))
        if not rows:
            break
        frontier.extend(leaf_hash(bytes.fromhex(r["hash"])) for r in rows)
    if frontier.size != position or frontier.root().hex() != checkpoint["merkle_root"]:
        return NodesVerdict(0, "the stored nodes and the log's events after them do not give "
                               f"the Merkle root of the checkpoint at position {position}")
    return NodesVerdict(len(stored), None)
