"""The tree's nodes as leaf ranges (events/merkle.py): every proof is a list of ranges, each
range is made of perfect subtrees, and the frontier names each perfect subtree it completes.
These are what stored nodes stand in for, so they must match the proofs from every leaf."""

from __future__ import annotations

import hashlib
import random

import pytest

from events.merkle import (
    Frontier,
    consistency_proof,
    consistency_ranges,
    inclusion_proofs,
    inclusion_ranges,
    perfect_parts,
    root_of,
    root_of_parts,
)


def random_leaves(rng: random.Random, size: int) -> list[bytes]:
    return [hashlib.sha256(rng.randbytes(8)).digest() for _ in range(size)]


def range_root(leaves: list[bytes], lo: int, hi: int) -> bytes:
    """A node's root from its perfect parts, as the stored-node path computes it."""
    return root_of_parts([root_of(leaves[idx << level:(idx + 1) << level])
                          for level, idx in perfect_parts(lo, hi)])


@pytest.mark.parametrize("seed", range(8))
def test_inclusion_and_consistency_ranges_give_the_proofs_of_every_leaf(seed: int) -> None:
    rng = random.Random(seed)
    for size in [1, 2, 3, 255, 256, 257, *rng.sample(range(4, 1200), 6)]:
        leaves = random_leaves(rng, size)
        wanted = {0, size - 1, *rng.sample(range(size), min(size, 5))}
        expected = inclusion_proofs(leaves, wanted)
        for index in wanted:
            assert [range_root(leaves, lo, hi) for lo, hi in inclusion_ranges(size, index)
                    ] == expected[index]
        for first in {1, size, rng.randint(1, size)}:
            assert [range_root(leaves, lo, hi) for lo, hi in consistency_ranges(size, first)
                    ] == consistency_proof(leaves, first)


def test_a_range_that_is_no_node_of_a_tree_is_refused() -> None:
    assert perfect_parts(8, 13) == [(2, 2), (0, 12)]
    with pytest.raises(ValueError, match="not a node"):
        perfect_parts(3, 7)  # 4 leaves starting at 3: not aligned
    with pytest.raises(ValueError, match="outside"):
        inclusion_ranges(5, 5)


def test_the_frontier_names_each_perfect_subtree_it_completes() -> None:
    rng = random.Random(3)
    leaves, frontier, seen = random_leaves(rng, 1000), Frontier(), {}
    for leaf in leaves:
        for level, idx, node in frontier.append_completing(leaf, 2):
            seen[(level, idx)] = node
    assert frontier.root() == root_of(leaves)
    assert seen == {(level, idx): root_of(leaves[idx << level:(idx + 1) << level])
                    for level in range(2, 10) for idx in range(1000 >> level)}
