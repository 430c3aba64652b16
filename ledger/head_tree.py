"""The accounts tree of a checkpoint, kept from one seal to the next.

A checkpoint's `accounts_root` is the Merkle root over every stream's head (version, last
hash) in stream-id order (accounts_tree). Made afresh, a seal reads every head
and hashes every leaf and node: 5 to 7 ms a thousand accounts, on the event loop, at every
seal (once a second under load), so a service of 100,000 accounts would stop for half a
second or more every second, and each user's statement would cost as much again
(bench/seal_bench.py).

The heads at a checkpoint's position are a function of the log up to it, whoever sealed it
and in what batches, so the tree of one checkpoint serves every later seal. The next seal
moves it on: only the leaves of the streams its events moved are hashed again, with each
block above them once (events/merkle.py LeafLevels); a tree behind the last checkpoint
(another process sealed since) moves on over the events after its own position too, and a
statement takes its account's proof from it. A stream seen for the first time shifts every
leaf after it (the tree is positional), so the blocks from there on are hashed again: new
accounts cost a seal as much as before, for the part of the tree after them.

A tree is made of committed events only (a seal reads them outside its write:
checkpoints.Checkpointer.seal), and is taken out while a seal moves it on: it is put back
once the seal's checkpoint is written, or once another process's is there at or past its
position; a seal that fails leaves none. A kept tree is used only where a checkpoint signed
its root at its position: one whose root is not, one more than a seal's batch behind, or
none at all, and every head is read again. The tree takes about 300 bytes of memory an
account (30 MB at 100,000). A tree of many accounts is made, or moved past a new one, in a
worker thread (checkpoints.OFF_LOOP_ACCOUNTS), so requests are answered meanwhile.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping

from events.codec import canonical_json
from events.merkle import LeafLevels, leaf_hash


def account_leaf(stream_id: str, count: int, last_hash: str) -> bytes:
    return leaf_hash(canonical_json([stream_id, count, last_hash]).encode())


def accounts_tree(heads: Iterable[tuple[str, int, str]]) -> list[tuple[str, bytes]]:
    """The account-head leaves in stream-id order (sorted here, not by the database's
    collation, so both stores and the offline verifier agree)."""
    return [(s, account_leaf(s, v, h)) for s, v, h in sorted(heads)]


class HeadTree:
    """The leaves (one a stream, in stream-id order) and the tree over them at `position`."""

    def __init__(self, position: int, heads: Iterable[tuple[str, int, str]]) -> None:
        leaves = accounts_tree(heads)
        self.position: int | None = position
        self._ids = [stream_id for stream_id, _ in leaves]
        self._index = {stream_id: k for k, stream_id in enumerate(self._ids)}
        self._levels = LeafLevels(leaf for _, leaf in leaves)

    def __len__(self) -> int:
        return len(self._ids)

    def root(self) -> bytes:
        return self._levels.root()

    def signed_as(self, accounts_root: str, accounts: int) -> bool:
        """Whether this is the tree a checkpoint with these figures signed."""
        return (self.root().hex(), len(self)) == (accounts_root, accounts)

    def proof(self, stream_id: str) -> tuple[int, bytes, list[bytes]] | None:
        """(index, leaf, inclusion path) of a stream's head in the tree, None if it has none."""
        index = self._index.get(stream_id)
        if index is None:
            return None
        return index, self._levels.leaves[index], self._levels.inclusion_path(index)

    def adds_streams(self, moved: Mapping[str, tuple[int, str]]) -> bool:
        """Whether advancing over `moved` inserts a leaf: then every block after it is
        hashed again (about half the tree, on average), not one a level a leaf moved."""
        return any(stream_id not in self._index for stream_id in moved)

    def advance(self, position: int, moved: Mapping[str, tuple[int, str]]) -> None:
        """The tree at `position`, from this one and the heads (version, last hash) of the
        streams the events after this one's position moved, new streams among them."""
        # Halfway the tree is of no position: should this raise, it is read whole again.
        self.position = None
        levels, leaves = self._levels, self._levels.leaves
        new = sorted(stream_id for stream_id in moved if stream_id not in self._index)
        first = bisect.bisect_left(self._ids, new[0]) if new else len(self._ids)
        before: dict[int, bytes] = {}  # leaves before `first`: their blocks, once each
        for stream_id, (version, last_hash) in moved.items():
            index = self._index.get(stream_id)
            if index is None:
                continue
            leaf = account_leaf(stream_id, version, last_hash)
            if index < first:
                before[index] = leaf
            else:
                leaves[index] = leaf  # hashed again below with everything after `first`
        levels.set(before)
        for stream_id in new:  # in order, each where it sorts (the leaves after it shift)
            index = bisect.bisect_left(self._ids, stream_id, lo=first)
            self._ids.insert(index, stream_id)
            leaves.insert(index, account_leaf(stream_id, *moved[stream_id]))
        if new:
            self._index.update(zip(self._ids[first:], range(first, len(self._ids)),
                                   strict=True))
        levels.rebuild_from(first)
        self.position = position
