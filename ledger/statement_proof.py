"""A statement a user can keep and check without us: their own events, exactly as hashed,
each with a Merkle inclusion proof against a signed checkpoint, and their account's signed
head (count and last hash, proven into the checkpoint's `accounts_root`) to show that none of
their events up to that checkpoint was left out. Other users appear only as hashes.
"""

from __future__ import annotations

import itertools
import json
import sys
from dataclasses import dataclass
from typing import Any

from events import SqlDatabase, SqlEventStore, UnknownEventType
from events.hashing import GENESIS_HASH
from events.merkle import leaf_hash, root_from_inclusion
from events.rows import StoredRow, utc_now
from events.sql_log import row_from_db
from ledger import merkle_nodes
from ledger.account import fold
from ledger.checkpoints import (
    Checkpoint,
    Checkpointer,
    latest_checkpoint,
    load_public_key,
)
from ledger.events import ledger_codec
from ledger.head_tree import account_leaf
from ledger.service import account_stream

FORMAT = "ml-cabinet-statement/1"
ROW_FIELDS = ("position", "stream_id", "version", "type_name", "schema_version", "data_json",
              "metadata_json", "recorded_at", "hash")


class StatementInvalid(Exception):
    """The statement does not prove what it claims; the message names what failed."""


class StatementUnreadable(Exception):
    """Its hashes and proofs held, but it records an event of a type this version does not
    know (written by a newer one): its balance cannot be checked here, nor called wrong."""


class StatementNotReady(Exception):
    """The log moved while the statement was being read, every time it was tried."""


@dataclass(frozen=True)
class StatementSummary:
    user_id: int
    events: int
    position: int
    signed_at: str
    balance_credits: int
    held_credits: int

    def render(self) -> str:
        return (f"statement OK: account {self.user_id}, {self.events} events, complete up to "
                f"position {self.position} (checkpoint signed {self.signed_at}); balance "
                f"{self.balance_credits} credits, {self.held_credits} held")


async def build_statement(store: SqlEventStore, checkpointer: Checkpointer, user_id: int,
                          attempts: int = 5) -> dict[str, Any]:
    """The user's statement, sealing a checkpoint first when their latest event is newer
    than the latest one. Read without a lock: a seal landing mid-read is seen (the account's
    head no longer matches the checkpoint) and the read starts again."""
    stream = account_stream(user_id)
    db = store.read_db()
    for _ in range(attempts):
        checkpoint = await latest_checkpoint(db)
        row = await db.fetchone("SELECT version, hash FROM checkpoint_heads WHERE stream_id = ?",
                                (stream,))
        mine = None if row is None else (stream, int(row["version"]), str(row["hash"]))
        latest = await db.fetchone("SELECT MAX(version) AS v FROM events WHERE stream_id = ?",
                                   (stream,))
        current = int(latest["v"]) if latest and latest["v"] is not None else 0
        if checkpoint is None or mine is None or mine[1] != current:
            await checkpointer.seal(pause_s=0.0)  # the user waits: no pauses
            continue
        tree = await checkpointer.tree_for(db, checkpoint)  # no read of every head, mostly
        found = None if tree is None else tree.proof(stream)
        if found is None or found[1] != account_leaf(*mine):
            continue  # a seal committed between the reads
        return await _assemble(store, checkpoint, (found[0], found[2]), mine, user_id)
    raise StatementNotReady("the log kept moving; try again")


async def _assemble(store: SqlEventStore, checkpoint: Checkpoint,
                    account_proof: tuple[int, list[bytes]], head: tuple[str, int, str],
                    user_id: int) -> dict[str, Any]:
    db = store.read_db()
    raw = await db.fetchall(
        "SELECT position, stream_id, version, type_name, schema_version, data, metadata, "
        "recorded_at, hash FROM events WHERE stream_id = ? AND position <= ? ORDER BY version",
        (head[0], checkpoint.position))
    rows = [row_from_db(r) for r in raw]
    # From stored nodes: the reads grow with the account's events, not with the log.
    paths = await merkle_nodes.stored(store, checkpoint.position, lambda: (
        merkle_nodes.inclusion_proofs_stored(db, checkpoint.position,
                                             [r.position - 1 for r in rows])))
    previous = await _hashes_at(db, [r.position - 1 for r in rows if r.position > 1])
    index, account_path = account_proof
    account = fold(r.to_recorded(ledger_codec()).event for r in rows)
    assert account is not None
    return {
        "format": FORMAT, "user_id": user_id,
        "issued_at": utc_now().isoformat(timespec="microseconds"),
        "checkpoint": checkpoint.to_json(),
        "account_head": {"stream_id": head[0], "count": head[1], "last_hash": head[2],
                         "index": index, "proof": [p.hex() for p in account_path]},
        "events": [{"row": {name: getattr(r, name) for name in ROW_FIELDS},
                    "previous_hash": previous.get(r.position - 1, GENESIS_HASH),
                    "proof": [p.hex() for p in paths[r.position - 1]]} for r in rows],
        "balance": {"balance_credits": account.balance_credits,
                    "held_credits": account.held_credits,
                    "available_credits": account.available_credits},
    }


async def _hashes_at(db: SqlDatabase, positions: list[int]) -> dict[int, str]:
    """The hashes of the events at `positions` (each event's predecessor, to check its own)."""
    found: dict[int, str] = {}
    for start in range(0, len(positions), merkle_nodes.IN_LIST):
        chunk = positions[start:start + merkle_nodes.IN_LIST]
        rows = await db.fetchall("SELECT position, hash FROM events WHERE position IN "
                                 f"({', '.join('?' * len(chunk))})", tuple(chunk))
        found.update({int(r["position"]): str(r["hash"]) for r in rows})
    return found


def verify_statement(statement: Any, public_key_pem: str) -> StatementSummary:
    """Check a statement offline; raises StatementInvalid naming the first thing that fails
    (StatementUnreadable for an event type this version does not know)."""
    try:
        return _verify(statement, public_key_pem)
    except StatementInvalid:
        raise
    except UnknownEventType as exc:  # hashes and proofs held; its events cannot be folded
        raise StatementUnreadable(
            f"the statement holds an event type this version cannot read ({exc}): check it "
            "with the version that issued it, or a newer one") from exc
    except (KeyError, TypeError, ValueError, AttributeError, AssertionError) as exc:
        raise StatementInvalid(f"the file is not a well-formed statement ({exc!r})") from exc


def _check(condition: bool, failure: str) -> None:
    if not condition:
        raise StatementInvalid(failure)


def _verify(statement: dict[str, Any], public_key_pem: str) -> StatementSummary:
    _check(statement.get("format") == FORMAT, f"the file is not a {FORMAT} statement")
    checkpoint = Checkpoint.from_json(statement["checkpoint"])
    key = load_public_key(public_key_pem)
    _check(checkpoint.verifies_with(key), "signature: the checkpoint is not signed by this "
           "public key (a different key id, or the checkpoint was altered)")
    user_id, head = int(statement["user_id"]), statement["account_head"]
    stream = account_stream(user_id)
    _check(head["stream_id"] == stream, "account head: it is another account's")
    root = root_from_inclusion(int(head["index"]), checkpoint.accounts,
                               account_leaf(stream, int(head["count"]), head["last_hash"]),
                               [bytes.fromhex(p) for p in head["proof"]])
    _check(root.hex() == checkpoint.accounts_root,
           "completeness: the account head (count, last hash) is not in the checkpoint")
    rows = [_row(entry, checkpoint, stream) for entry in statement["events"]]
    _check([r.version for r in rows] == list(range(1, int(head["count"]) + 1)),
           f"completeness: the checkpoint holds {head['count']} events of this account and "
           f"the file has versions {[r.version for r in rows][:20]} (dropped or reordered)")
    _check(all(a.position < b.position for a, b in itertools.pairwise(rows)),
           "order: the events are not in log order")
    _check(rows[-1].hash == head["last_hash"],
           "completeness: the last event is not the account's last one at the checkpoint")
    account = fold(r.to_recorded(ledger_codec()).event for r in rows)
    assert account is not None
    claimed = statement["balance"]
    _check(claimed == {"balance_credits": account.balance_credits,
                       "held_credits": account.held_credits,
                       "available_credits": account.available_credits},
           f"balance: the events give {account.balance_credits} credits "
           f"({account.held_credits} held), the file says {json.dumps(claimed)}")
    return StatementSummary(user_id, len(rows), checkpoint.position, checkpoint.signed_at,
                            account.balance_credits, account.held_credits)


def _row(entry: dict[str, Any], checkpoint: Checkpoint, stream: str) -> StoredRow:
    row = StoredRow(**{name: entry["row"][name] for name in ROW_FIELDS})
    where = f"event at position {row.position}"
    _check(row.stream_id == stream, f"{where}: it belongs to another account")
    _check(row.hash == row.expected_hash(entry["previous_hash"]),
           f"{where}: its content does not match its hash (altered)")
    _check(0 < row.position <= checkpoint.position, f"{where}: not covered by the checkpoint")
    root = root_from_inclusion(row.position - 1, checkpoint.position,
                               leaf_hash(bytes.fromhex(row.hash)),
                               [bytes.fromhex(p) for p in entry["proof"]])
    _check(root.hex() == checkpoint.merkle_root,
           f"{where}: its inclusion proof does not lead to the signed Merkle root")
    return row


def verify_statement_file(path: str, public_key_file: str) -> int:
    """The command: 0 and a summary when the statement holds, 1 naming what failed, 2 when a
    file cannot be read at all or holds an event this version cannot read."""
    try:
        with open(path, encoding="utf-8") as statement, \
                open(public_key_file, encoding="utf-8") as pem:
            data, key = json.load(statement), pem.read()
        load_public_key(key)
    except (OSError, ValueError) as exc:  # (a PEM that is not an Ed25519 key: ValueError)
        print(f"STATEMENT NOT CHECKED: {exc}", file=sys.stderr)
        return 2
    try:
        summary = verify_statement(data, key)
    except StatementInvalid as failure:
        print(f"STATEMENT INVALID: {failure}", file=sys.stderr)
        return 1
    except StatementUnreadable as unread:
        print(f"STATEMENT NOT CHECKED: {unread}", file=sys.stderr)
        return 2
    print(summary.render())
    return 0
