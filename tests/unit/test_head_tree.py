"""The accounts tree kept between seals: after any run of changed, new and untouched heads
its root is the root a checkpoint made afresh signs (every head read, every leaf hashed),
and LeafLevels' root is RFC 6962's over the same leaves (tests/unit/test_merkle.py's
reference) after any run of changes, insertions and appends."""

from __future__ import annotations

import hashlib
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.merkle import LeafLevels, inclusion_proofs, root_from_inclusion
from ledger.head_tree import HeadTree, account_leaf, accounts_tree
from tests.unit.test_merkle import reference_root


def _leaf(seed: int) -> bytes:
    return hashlib.sha256(seed.to_bytes(8, "big")).digest()


# (kind, where, seed): "set" changes 1 to 8 leaves from `where % n` on, at once; "insert"
# puts a new one before leaf `where % (n + 1)`.
OPS = st.lists(st.tuples(st.sampled_from(["set", "insert"]), st.integers(0, 10**6),
                         st.integers(0, 2**32)), max_size=40)


@given(size=st.integers(0, 70), ops=OPS)
def test_leaf_levels_keep_the_root_of_their_leaves(size: int, ops: list[tuple[str, int, int]]
                                                   ) -> None:
    leaves = [_leaf(k) for k in range(size)]
    levels = LeafLevels(leaves)
    assert levels.root() == reference_root(leaves)
    for kind, where, seed in ops:
        if kind == "set" and leaves:
            changed = {(where + 5 * k) % len(leaves): _leaf(seed + k)
                       for k in range(seed % 8 + 1)}
            for index, leaf in changed.items():
                leaves[index] = leaf
            levels.set(changed)
        else:
            index = where % (len(leaves) + 1)
            leaves.insert(index, _leaf(seed))
            levels.leaves.insert(index, leaves[index])
            levels.rebuild_from(index)
        assert levels.root() == reference_root(leaves)
        assert len(levels) == len(leaves)


# Stream ids as the ledger names accounts: "account-12" sorts before "account-9", so a new
# account lands among the old ones, not only after them.
STREAMS = st.integers(1, 400).map(lambda n: f"account-{n}")
HEAD = st.tuples(st.integers(1, 10**6), st.integers(0, 2**32).map(lambda n: f"{n:064x}"))
SEALS = st.lists(st.dictionaries(STREAMS, HEAD, max_size=30), min_size=1, max_size=8)


def _fresh_root(heads: dict[str, tuple[int, str]]) -> bytes:
    """What a seal signed before the tree was kept: every head, leaves in stream-id order."""
    return reference_root([leaf for _, leaf in accounts_tree(
        (stream_id, version, digest) for stream_id, (version, digest) in heads.items())])


@given(first=st.dictionaries(STREAMS, HEAD, max_size=60), seals=SEALS)
def test_a_kept_tree_signs_what_a_tree_made_afresh_signs(
        first: dict[str, tuple[int, str]], seals: list[dict[str, tuple[int, str]]]) -> None:
    heads = dict(first)
    tree = HeadTree(1, [(s, v, h) for s, (v, h) in heads.items()])
    assert tree.root() == _fresh_root(heads)
    for position, moved in enumerate(seals, start=2):
        tree.advance(position, moved)
        heads.update(moved)
        assert tree.root() == _fresh_root(heads)
        assert (tree.position, len(tree)) == (position, len(heads))


def test_a_tree_that_failed_halfway_claims_no_position() -> None:
    tree = HeadTree(5, [("account-1", 1, "00" * 32)])
    with pytest.raises(ValueError, match="JSON"):  # a count JSON cannot hold
        tree.advance(6, {"account-2": (math.nan, "00" * 32)})  # type: ignore[dict-item]
    assert tree.position is None  # so the next seal reads every head again


@given(size=st.integers(1, 300), data=st.data())
def test_an_inclusion_path_from_the_levels_is_the_one_from_every_leaf(
        size: int, data: st.DataObject) -> None:
    leaves = [_leaf(k) for k in range(size)]
    levels = LeafLevels(leaves)
    index = data.draw(st.integers(0, size - 1))
    assert levels.inclusion_path(index) == inclusion_proofs(leaves, [index])[index]
    assert root_from_inclusion(index, size, leaves[index], levels.inclusion_path(index)) == \
        reference_root(leaves)


def test_a_kept_tree_proves_a_head_into_its_root() -> None:
    heads = [(f"account-{n}", n, f"{n:064x}") for n in range(1, 40)]
    tree = HeadTree(3, heads)
    found = tree.proof("account-17")
    assert found is not None and tree.proof("account-99") is None
    index, leaf, path = found
    assert leaf == account_leaf("account-17", 17, f"{17:064x}")
    assert root_from_inclusion(index, len(tree), leaf, path) == tree.root()
