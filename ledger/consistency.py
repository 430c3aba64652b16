"""That a newer checkpoint extends an older one: an RFC 6962 consistency proof between two
signed checkpoints, so whoever kept an old one (a statement, a saved latest checkpoint) can
check that the log the service signs today still begins with the log it signed then."""

from __future__ import annotations

import json
import sys
from typing import Any

from events import SqlEventStore
from events.merkle import verify_consistency
from ledger import merkle_nodes
from ledger.checkpoints import Checkpoint, latest_checkpoint, load_public_key


class NoSuchCheckpoint(Exception):
    """No checkpoint was signed at that position."""


async def build_consistency(store: SqlEventStore, first: int) -> dict[str, Any]:
    """The checkpoint at `first`, the latest one, and the proof that the second extends it
    (from stored Merkle nodes: a few reads, whatever the size of the log)."""
    db = store.read_db()
    row = await db.fetchone("SELECT * FROM checkpoints WHERE position = ?", (first,))
    latest = await latest_checkpoint(db)
    if row is None or latest is None:
        raise NoSuchCheckpoint(f"no checkpoint was signed at position {first}")
    old = Checkpoint.from_json(row)
    proof = await merkle_nodes.stored(store, latest.position, lambda: (
        merkle_nodes.consistency_proof_stored(db, latest.position, first)))
    return {"from": old.to_json(), "to": latest.to_json(), "proof": [p.hex() for p in proof]}


def check_consistency(document: dict[str, Any], public_key_pems: list[str],
                      held: Checkpoint | None = None) -> str | None:
    """What fails, or None: both signatures (by any of the keys), the proof, and that
    `from` is the checkpoint the caller kept."""
    old, new = Checkpoint.from_json(document["from"]), Checkpoint.from_json(document["to"])
    keys = [load_public_key(pem) for pem in public_key_pems]
    for name, checkpoint in (("from", old), ("to", new)):
        if not any(checkpoint.verifies_with(key) for key in keys):
            return f"signature: the '{name}' checkpoint is not signed by the given keys"
    if held is not None and held != old:
        return "the 'from' checkpoint is not the one you kept"
    proof = [bytes.fromhex(p) for p in document["proof"]]
    if not verify_consistency(old.position, new.position, bytes.fromhex(old.merkle_root),
                              bytes.fromhex(new.merkle_root), proof):
        return (f"the log signed at position {new.position} does not extend the one signed "
                f"at {old.position}: history was rewritten")
    return None


def verify_consistency_file(path: str, key_files: list[str], held_file: str | None) -> int:
    """The command: 0 when the newer checkpoint extends the older one, 1 if not, 2 when a
    file cannot be read."""
    try:
        with open(path, encoding="utf-8") as file:
            document = json.load(file)
        pems = []
        for name in key_files:
            with open(name, encoding="utf-8") as pem:
                pems.append(pem.read())
        held = None
        if held_file is not None:
            with open(held_file, encoding="utf-8") as file:
                kept = json.load(file)
            held = Checkpoint.from_json(kept.get("checkpoint", kept))
        failure = check_consistency(document, pems, held)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        print(f"CONSISTENCY NOT CHECKED: {exc!r}", file=sys.stderr)
        return 2
    if failure is not None:
        print(f"NOT CONSISTENT: {failure}", file=sys.stderr)
        return 1
    print(f"consistent: the log signed at position {document['to']['position']} extends the "
          f"one signed at {document['from']['position']}")
    return 0
