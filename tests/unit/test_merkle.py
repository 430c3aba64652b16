"""The Merkle tree against a plain recursive reference (RFC 6962's definitions, word for word)."""

from __future__ import annotations

import contextlib
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.merkle import (
    EMPTY_ROOT,
    Frontier,
    consistency_proof,
    inclusion_proofs,
    leaf_hash,
    node_hash,
    root_from_inclusion,
    root_of,
    verify_consistency,
)


def reference_root(leaves: list[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(reference_root(leaves[:k]), reference_root(leaves[k:]))


def reference_path(m: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    if m < k:
        return [*reference_path(m, leaves[:k]), reference_root(leaves[k:])]
    return [*reference_path(m - k, leaves[k:]), reference_root(leaves[:k])]


def leaves_of(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def test_the_empty_tree_and_a_known_root() -> None:
    assert root_of([]) == EMPTY_ROOT
    # RFC 6962's own leaf and node prefixes: a tree of one leaf is that leaf's hash.
    assert root_of([leaf_hash(b"")]).hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")


@given(st.integers(min_value=0, max_value=300))
def test_the_incremental_root_equals_the_reference_at_every_size(n: int) -> None:
    assert root_of(leaves_of(n)) == reference_root(leaves_of(n))


@given(st.integers(min_value=0, max_value=200), st.integers(min_value=0, max_value=200))
def test_a_frontier_stored_and_reloaded_goes_on_as_if_never_stopped(a: int, b: int) -> None:
    leaves = leaves_of(a + b)
    first = Frontier()
    first.extend(leaves[:a])
    reloaded = Frontier.from_json(first.size, first.to_json())
    reloaded.extend(leaves[a:])
    assert reloaded.root() == reference_root(leaves)


@given(st.integers(min_value=1, max_value=130), st.data())
def test_every_inclusion_proof_equals_the_reference_and_verifies(n: int, data: st.DataObject
                                                                 ) -> None:
    leaves = leaves_of(n)
    wanted = data.draw(st.sets(st.integers(min_value=0, max_value=n - 1), min_size=1))
    paths = inclusion_proofs(leaves, wanted)
    root = reference_root(leaves)
    for index in wanted:
        assert paths[index] == reference_path(index, leaves)
        assert root_from_inclusion(index, n, leaves[index], paths[index]) == root


@given(st.integers(min_value=2, max_value=70), st.data())
def test_a_proof_does_not_verify_for_another_leaf_or_index(n: int, data: st.DataObject
                                                                ) -> None:
    leaves = leaves_of(n)
    index = data.draw(st.integers(min_value=0, max_value=n - 1))
    path = inclusion_proofs(leaves, [index])[index]
    root = root_of(leaves)
    other = data.draw(st.integers(min_value=0, max_value=n - 1).filter(lambda i: i != index))
    assert root_from_inclusion(index, n, leaves[other], path) != root
    # (The size is not bound by the path alone: it comes from the signed checkpoint.)
    with contextlib.suppress(ValueError):  # a path of the wrong length is refused outright
        assert root_from_inclusion(other, n, leaves[index], path) != root


def test_a_frontier_that_does_not_add_up_is_refused() -> None:
    with pytest.raises(ValueError, match="add up"):
        Frontier.from_json(3, [[1, "00" * 32]])


def reference_subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if whole else [reference_root(leaves)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*reference_subproof(m, leaves[:k], whole), reference_root(leaves[k:])]
    return [*reference_subproof(m - k, leaves[k:], False), reference_root(leaves[:k])]


@given(st.integers(min_value=1, max_value=100), st.data())
def test_a_consistency_proof_equals_the_reference_and_verifies(n: int, data: st.DataObject
                                                               ) -> None:
    leaves = leaves_of(n)
    m = data.draw(st.integers(min_value=1, max_value=n))
    proof = consistency_proof(leaves, m)
    assert proof == reference_subproof(m, leaves, True)
    first_root, second_root = root_of(leaves[:m]), root_of(leaves)
    assert verify_consistency(m, n, first_root, second_root, proof)
    # A rewritten prefix, or a different claimed size, is not consistent.
    forged = root_of([leaf_hash(b"forged"), *leaves[1:m]])
    assert not verify_consistency(m, n, forged, second_root, proof)
    if m < n:
        assert not verify_consistency(m + 1, n, root_of(leaves[:m + 1]), second_root, proof)
