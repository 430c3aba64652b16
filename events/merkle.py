"""A Merkle tree over the log, as RFC 6962 / 9162 define it, in pure Python.

Leaves are H(0x00 || data), nodes H(0x01 || left || right), and a tree of n leaves splits at
the largest power of two below n. The `Frontier` (the roots of the perfect subtrees along the
right edge) grows one leaf at a time, so a new checkpoint hashes only the events since the
last one. Inclusion proofs let anyone holding a root check that one leaf is in it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two strictly below `size` (size >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


@dataclass
class Frontier:
    """The right edge of a tree: (height, root) of each perfect subtree, left to right."""

    size: int = 0
    edge: list[tuple[int, bytes]] = field(default_factory=list)

    def append(self, leaf: bytes) -> None:
        height, node = 0, leaf
        # Two perfect subtrees of one height merge, as the carry of a binary counter.
        while self.edge and self.edge[-1][0] == height:
            node = node_hash(self.edge.pop()[1], node)
            height += 1
        self.edge.append((height, node))
        self.size += 1

    def append_completing(self, leaf: bytes, lowest: int) -> list[tuple[int, int, bytes]]:
        """`append`, returning (level, index, root) of each perfect subtree of `lowest` levels
        or more that this leaf completes (they all end at the new size), lowest first."""
        height, node, completed = 0, leaf, []
        size = self.size + 1
        while self.edge and self.edge[-1][0] == height:
            node = node_hash(self.edge.pop()[1], node)
            height += 1
            if height >= lowest:
                completed.append((height, (size >> height) - 1, node))
        self.edge.append((height, node))
        self.size = size
        return completed

    def extend(self, leaves: Iterable[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    def root(self) -> bytes:
        if not self.edge:
            return EMPTY_ROOT
        node = self.edge[-1][1]
        for _, left in reversed(self.edge[:-1]):
            node = node_hash(left, node)
        return node

    def to_json(self) -> list[list[object]]:
        return [[height, node.hex()] for height, node in self.edge]

    @classmethod
    def from_json(cls, size: int, edge: Sequence[Sequence[object]]) -> Frontier:
        frontier = cls(size, [(int(str(h)), bytes.fromhex(str(n))) for h, n in edge])
        if sum(1 << h for h, _ in frontier.edge) != size:
            raise ValueError("a frontier's subtrees must add up to its size")
        return frontier


def perfect_root(leaves: Sequence[bytes]) -> bytes:
    """The root of a perfect subtree (a power of two of leaves), level by level: the fast way
    to hash a whole block, with no call per node."""
    if not leaves or len(leaves) & (len(leaves) - 1):
        raise ValueError("a perfect subtree has a power of two of leaves")
    level, sha256 = list(leaves), hashlib.sha256
    while len(level) > 1:
        level = [sha256(b"\x01" + level[k] + level[k + 1]).digest()
                 for k in range(0, len(level), 2)]
    return level[0]


def root_of(leaves: Sequence[bytes]) -> bytes:
    frontier = Frontier()
    frontier.extend(leaves)
    return frontier.root()


def inclusion_proofs(leaves: Sequence[bytes], indexes: Iterable[int]) -> dict[int, list[bytes]]:
    """The audit path of each wanted leaf in the tree of all `leaves`, in one pass (RFC 6962
    PATH, deepest sibling first). Subtrees holding no wanted leaf are hashed, not descended."""
    wanted = sorted(set(indexes))
    if wanted and not 0 <= wanted[0] <= wanted[-1] < len(leaves):
        raise ValueError("a leaf index is outside the tree")
    paths: dict[int, list[bytes]] = {i: [] for i in wanted}

    def walk(lo: int, hi: int, inside: list[int]) -> bytes:
        if not inside:
            return root_of(leaves[lo:hi])
        if hi - lo == 1:
            return leaves[lo]
        mid = lo + _split(hi - lo)
        left_wanted = [i for i in inside if i < mid]
        right_wanted = [i for i in inside if i >= mid]
        left, right = walk(lo, mid, left_wanted), walk(mid, hi, right_wanted)
        for i in left_wanted:
            paths[i].append(right)
        for i in right_wanted:
            paths[i].append(left)
        return node_hash(left, right)

    if leaves:
        walk(0, len(leaves), wanted)
    return paths


def root_from_inclusion(index: int, size: int, leaf: bytes, path: Sequence[bytes]) -> bytes:
    """The root that `path` proves `leaf` (at `index`) into (RFC 9162 2.1.3.2); raises
    ValueError when the path cannot belong to a tree of `size` leaves."""
    if not 0 <= index < size:
        raise ValueError("the leaf index is outside the tree")
    fn, sn, node = index, size - 1, leaf
    for sibling in path:
        if sn == 0:
            raise ValueError("the proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            node = node_hash(sibling, node)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            node = node_hash(node, sibling)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ValueError("the proof is shorter than the tree is deep")
    return node


def consistency_proof(leaves: Sequence[bytes], first: int) -> list[bytes]:
    """The proof that the tree of the first `first` leaves is a prefix of the tree of all
    `leaves` (RFC 6962 PROOF(m, D[n]), 0 < m <= n); empty when the sizes are equal."""
    if not 0 < first <= len(leaves):
        raise ValueError("the first size must be in 1..the second size")

    def sub(m: int, lo: int, hi: int, whole: bool) -> list[bytes]:
        if m == hi - lo:
            return [] if whole else [root_of(leaves[lo:hi])]
        k = _split(hi - lo)
        if m <= k:
            return [*sub(m, lo, lo + k, whole), root_of(leaves[lo + k:hi])]
        return [*sub(m - k, lo + k, hi, False), root_of(leaves[lo:lo + k])]

    return sub(first, 0, len(leaves), True)


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes,
                       path: Sequence[bytes]) -> bool:
    """Whether `path` proves the tree of `first` leaves a prefix of the one of `second`
    (RFC 9162 2.1.4.2)."""
    if not 0 < first <= second:
        return False
    if first == second:
        return not path and first_root == second_root
    proof = list(path)
    if not proof:
        return False
    if first & (first - 1) == 0:  # a perfect left subtree: its root starts the path
        proof.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = proof[0]
    for node in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(node, fr), node_hash(node, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, node)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == first_root and sr == second_root


# Every node of an RFC 6962 tree covers leaves [lo, hi): a perfect subtree, or one on the
# right edge, which is the perfect subtrees of the binary digits of its size, largest first.
# So a proof is a list of such ranges, and each range's root can come from stored perfect
# subtrees (see ledger/merkle_nodes.py) instead of from every leaf.

def perfect_parts(lo: int, hi: int) -> list[tuple[int, int]]:
    """The perfect subtrees (level, index) that the tree node over leaves [lo, hi) is made
    of, left to right; ValueError when [lo, hi) is not a node of any RFC 6962 tree."""
    parts: list[tuple[int, int]] = []
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        if lo & ((1 << level) - 1):
            raise ValueError(f"[{lo}, {hi}) is not a node of the tree")
        parts.append((level, lo >> level))
        lo += 1 << level
    return parts


def root_of_parts(roots: Sequence[bytes]) -> bytes:
    """The root over perfect subtrees' roots, left to right (as `Frontier.root`)."""
    node = roots[-1]
    for left in reversed(roots[:-1]):
        node = node_hash(left, node)
    return node


def inclusion_ranges(size: int, index: int) -> list[tuple[int, int]]:
    """The leaf ranges whose roots are the audit path of leaf `index` in a tree of `size`
    leaves, deepest sibling first (as `inclusion_proofs`)."""
    if not 0 <= index < size:
        raise ValueError("a leaf index is outside the tree")
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        mid = lo + _split(hi - lo)
        if index < mid:
            ranges.append((mid, hi))
            hi = mid
        else:
            ranges.append((lo, mid))
            lo = mid
    return ranges[::-1]


def consistency_ranges(size: int, first: int) -> list[tuple[int, int]]:
    """The leaf ranges whose roots are `consistency_proof(leaves[:size], first)`."""
    if not 0 < first <= size:
        raise ValueError("the first size must be in 1..the second size")

    def sub(m: int, lo: int, hi: int, whole: bool) -> list[tuple[int, int]]:
        if m == hi - lo:
            return [] if whole else [(lo, hi)]
        k = _split(hi - lo)
        if m <= k:
            return [*sub(m, lo, lo + k, whole), (lo + k, hi)]
        return [*sub(m - k, lo + k, hi, False), (lo, lo + k)]

    return sub(first, 0, size, True)


class LeafLevels:
    """A tree's leaves and the root of every perfect subtree over them, level by level
    (level h holds the len(leaves) >> h complete blocks of 2^h leaves), so that changing a
    leaf costs one hash a level and the root the few of its perfect parts: `root()` is
    `root_of(leaves)` always. About two hashes kept per leaf."""

    def __init__(self, leaves: Iterable[bytes] = ()) -> None:
        self.levels: list[list[bytes]] = [list(leaves)]
        self.rebuild_from(0)

    def __len__(self) -> int:
        return len(self.levels[0])

    @property
    def leaves(self) -> list[bytes]:
        return self.levels[0]

    def set(self, changed: Mapping[int, bytes]) -> None:
        """Leaves changed in place, {index: leaf}: each block above them hashed once, however
        many of them it holds (250 leaves of 2,000 rehash ~950 blocks, not 250 × 11)."""
        levels = self.levels
        for index, leaf in changed.items():
            levels[0][index] = leaf
        touched = set(changed)
        for height in range(1, len(levels)):
            level, below = levels[height], levels[height - 1]
            touched = {index >> 1 for index in touched if index >> 1 < len(level)}
            if not touched:  # no block at this height is complete over a changed leaf
                return
            for index in touched:
                level[index] = node_hash(below[2 * index], below[2 * index + 1])

    def rebuild_from(self, first: int) -> None:
        """Recompute every block that holds a leaf at `first` or after: after leaves were
        inserted, removed or changed from there on (in `leaves`, in place)."""
        levels, sha256 = self.levels, hashlib.sha256
        height = 1
        while len(levels[height - 1]) >= 2:
            below = levels[height - 1]
            if height == len(levels):
                levels.append([])
            kept = min(first >> height, len(below) // 2)
            # node_hash, inline: a call per node costs a rebuild about a tenth more.
            levels[height][kept:] = [sha256(b"\x01" + below[k] + below[k + 1]).digest()
                                     for k in range(2 * kept, len(below) - 1, 2)]
            height += 1
        del levels[height:]

    def root(self) -> bytes:
        return self.range_root(0, len(self)) if len(self) else EMPTY_ROOT

    def range_root(self, lo: int, hi: int) -> bytes:
        """The root of leaves[lo:hi], a subtree of the tree (one of inclusion_ranges'): its
        perfect parts, largest first, are blocks the levels hold."""
        parts, offset, size = [], lo, hi - lo
        for height in range(size.bit_length() - 1, -1, -1):
            if size >> height & 1:  # a perfect part of 2^height leaves, left to right
                if offset & ((1 << height) - 1):
                    raise ValueError(f"leaves {lo}..{hi} are not a subtree of the tree")
                parts.append(self.levels[height][offset >> height])
                offset += 1 << height
        return root_of_parts(parts)

    def inclusion_path(self, index: int) -> list[bytes]:
        """`inclusion_proofs(leaves, [index])[index]`, from the blocks: one a level."""
        return [self.range_root(lo, hi) for lo, hi in inclusion_ranges(len(self), index)]
