"""`audit --checkpoints`: the log must match every signed checkpoint it holds.

A chain recomputed end to end after an edit is self-consistent, but its hashes up to any
checkpoint signed before the edit no longer match that checkpoint, and without the key file no
new signature can be made. Keys are trusted from PEM files the auditor holds; without any, the
keys listed in the database are used, which proves only that the checkpoints were not edited
by someone who could not also replace those keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from events import Database
from events.merkle import Frontier, leaf_hash, root_of
from events.verify import ChainBreak
from ledger.checkpoints import (
    Checkpoint,
    all_checkpoints,
    key_id_of,
    known_keys,
    load_public_key,
)
from ledger.head_tree import accounts_tree


@dataclass(frozen=True)
class CheckpointVerdict:
    checked: int
    first_break: ChainBreak | None
    keys_from: str  # "the given PEM files" or "the database"


async def verify_checkpoints(db: Database, public_keys: Sequence[str] = (),
                             held: Sequence[Checkpoint] = (), schema: str = "live"
                             ) -> CheckpointVerdict:
    """Every checkpoint in `schema` (the audited file, attached), and every one `held`
    outside it (from the API or a statement: deleting rows of the table cannot hide those),
    against the log in it."""
    keys_from = "the given PEM files" if public_keys else "the database"
    found = await db.fetchone(f"SELECT name FROM {schema}.sqlite_master WHERE type = 'table' "
                              "AND name = 'checkpoints'")
    if found is None and not held:  # a log from before checkpoints: nothing to hold it to
        return CheckpointVerdict(0, None, keys_from)
    if public_keys:
        trusted = {key_id_of(k): k for k in map(load_public_key, public_keys)}
    else:
        trusted = {}
        for row in await known_keys(db, f"{schema}.ledger_keys") if found else []:
            key = load_public_key(row["public_key_pem"])
            if key_id_of(key) == row["key_id"]:  # a listed key must be what its id names
                trusted[row["key_id"]] = key
    stored = await all_checkpoints(db, f"{schema}.checkpoints") if found else []
    checkpoints = sorted({*stored, *held}, key=lambda c: (c.position, c.signature))
    for checkpoint in checkpoints:
        if (problem := _signature_problem(checkpoint, trusted)) is not None:
            return CheckpointVerdict(0, ChainBreak(checkpoint.position, problem), keys_from)
    return await _walk(db, schema, checkpoints, keys_from)


def _signature_problem(checkpoint: Checkpoint, trusted: dict[str, Ed25519PublicKey]
                       ) -> str | None:
    key = trusted.get(checkpoint.key_id)
    if key is None:
        return f"the checkpoint is signed by an unknown key {checkpoint.key_id[:16]}…"
    if not checkpoint.verifies_with(key):
        return "the checkpoint's signature does not verify: the checkpoint was altered"
    return None


async def _walk(db: Database, schema: str, checkpoints: list[Checkpoint], keys_from: str
                ) -> CheckpointVerdict:
    frontier, heads = Frontier(), {}
    pending, checked, previous = list(checkpoints), 0, 0
    async for row in db.iterate(f"SELECT position, stream_id, version, hash FROM "
                                f"{schema}.events ORDER BY position"):
        if not pending:
            break
        frontier.append(leaf_hash(bytes.fromhex(row["hash"])))
        heads[row["stream_id"]] = (int(row["version"]), row["hash"])
        while pending and pending[0].position == frontier.size:
            checkpoint = pending.pop(0)
            leaves = accounts_tree((s, v, h) for s, (v, h) in heads.items())
            if (row["hash"] != checkpoint.head_hash
                    or frontier.root().hex() != checkpoint.merkle_root
                    or root_of([leaf for _, leaf in leaves]).hex() != checkpoint.accounts_root):
                return CheckpointVerdict(checked, ChainBreak(checkpoint.position, (
                    f"the log differs from the checkpoint signed at {checkpoint.signed_at}: "
                    f"history between positions {previous + 1} and {checkpoint.position} "
                    "was rewritten")), keys_from)
            checked, previous = checked + 1, checkpoint.position
    if pending:
        return CheckpointVerdict(checked, ChainBreak(pending[0].position, (
            f"the log ends at position {frontier.size}, before a checkpoint signed at "
            f"{pending[0].signed_at}: events were removed")), keys_from)
    return CheckpointVerdict(checked, None, keys_from)
