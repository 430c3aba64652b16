"""The audit's fast path: each group of accounts read once, its rows' hashes checked against
their stored predecessors, its events folded in memory (ledger/audit_fold.py) and the result
compared with the live tables' rows of those accounts, group after group, in any number of
processes. Memory is one group's rows, not the log's.

It answers only "all equal" or "not sure": a broken hash, a fold that meets the unexpected,
a row that differs. Not sure hands the audit to the serial replay through the projectors,
which names what differs and where. An honest log is audited here; a tampered one gets the
very verdict, positions and words it got before.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from events import Database
from events.codec import canonical_json, fast_loads
from events.hashing import GENESIS_HASH
from ledger.audit_fold import Fold, Unexpected
from ledger.events import ALL_EVENTS, ledger_codec

# Events per group: its folded rows are what each process holds (about 20 MB here).
GROUP_EVENTS = 20_000
# The live rows of a group are asked for by account id, one bound parameter each.
GROUP_STREAMS = 5_000


@dataclass(frozen=True)
class TableSpec:
    """How one projection table is compared: the replay's column indexes the live file has
    (all of them, but for a file written by an older release), and how its rows are found
    by account. `columns` empty: the live file has no such table."""

    name: str
    columns: tuple[str, ...]
    indexes: tuple[int, ...]
    partial: bool  # the live table lacks some of the replay's columns
    built: bool  # the file's projection versions say the table was built once


@dataclass(frozen=True)
class GroupResult:
    equal: bool
    events: int
    reason: str = ""


def payload(previous_hash: str, row: Sequence[object]) -> bytes:
    """canonical_json([previous_hash, position, …, recorded_at]).encode(), by orjson where it
    writes the same bytes: a list of text and 64-bit integers, which orjson escapes exactly
    as json.dumps(ensure_ascii=False) does (checked for every code point in the tests)."""
    position, stream_id, version, type_name, schema_version, data, metadata, at = row[:8]
    if type(version) is int and type(schema_version) is int and type(position) is int:
        try:
            return orjson.dumps([previous_hash, position, stream_id, version, type_name,
                                 schema_version, data, metadata, at])
        except TypeError:  # a lone surrogate, bytes, an integer beyond 64 bits
            pass
    return canonical_json([previous_hash, *row[:8]]).encode()


class Decoder:
    """The codec's decode, giving the fields the event's class would be made with, without
    making it: a frozen dataclass costs more to make than the rest of its replay. The same
    texts are refused (as Unexpected); old schema versions go through the codec itself."""

    def __init__(self) -> None:
        self._codec = ledger_codec()
        self._classes: dict[str, tuple[int, frozenset[str], frozenset[str], dict[str, Any]]] = {}
        for cls in ALL_EVENTS:
            fields = [f for f in dataclasses.fields(cls) if f.init]
            defaults = {f.name: f.default for f in fields
                        if f.default is not dataclasses.MISSING}
            if any(f.default_factory is not dataclasses.MISSING for f in fields):
                continue  # the codec makes those
            self._classes[cls.type_name] = (
                cls.schema_version, frozenset(f.name for f in fields),
                frozenset(f.name for f in fields if f.name not in defaults), defaults)
        # The shapes (type, keys in the text's order) the class takes, and whether they name
        # every field: the texts of a type share a few shapes, so each is tested once.
        self._shapes: dict[tuple[str, tuple[str, ...]], bool] = {}

    def __call__(self, type_name: str, schema_version: int, data_json: str) -> dict[str, Any]:
        known = self._classes.get(type_name)
        if known is None or known[0] != schema_version:
            event = self._codec.decode(type_name, schema_version, data_json)
            return {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
        data = _loads(data_json)
        if type(data) is not dict:
            raise Unexpected(f"{type_name} data its class would refuse")
        shape = (type_name, tuple(data))
        whole = self._shapes.get(shape)
        if whole is None:
            if not known[2] <= data.keys() <= known[1]:
                raise Unexpected(f"{type_name} data its class would refuse")
            whole = self._shapes[shape] = len(data) == len(known[1])
        return data if whole else {**known[3], **data}


# fast_loads's test for a run of 19 digits, quicker than its regex: digits to "0", other
# bytes to "x" (a UTF-8 byte of a non-ASCII character is never an ASCII digit).
_DIGITS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x78 for b in range(256))
_NINETEEN_DIGITS = b"0" * 19


def _loads(text: str) -> Any:
    """fast_loads(text), the same value by the same rule."""
    try:
        plain = _NINETEEN_DIGITS not in text.encode().translate(_DIGITS)
    except (AttributeError, UnicodeEncodeError):
        plain = False
    if not plain:
        return fast_loads(text)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def stream_user(stream_id: str) -> int:
    """The account of an `account-<id>` stream; any other stream is for the projectors."""
    digits = stream_id.removeprefix("account-") if isinstance(stream_id, str) else ""
    if not digits.isdigit() or str(int(digits)) != digits:
        raise Unexpected(f"a stream that is not an account's: {stream_id!r}")
    return int(digits)


Group = tuple[str, str | None]  # first <= stream_id < end; None: no end


def plan_groups(counts: Sequence[tuple[str, int]]) -> list[Group]:
    """Ranges of stream ids, in the index's order, of about GROUP_EVENTS events each."""
    starts, events, streams = [""], 0, 0
    for stream_id, count in counts:
        if streams and (events + count > GROUP_EVENTS or streams >= GROUP_STREAMS):
            starts.append(stream_id)
            events = streams = 0
        events, streams = events + count, streams + 1
    return list(zip(starts, [*starts[1:], None], strict=True))


@dataclass(frozen=True)
class Plan:
    groups: list[Group]
    users: list[int]  # every account with a stream in the log


async def plan(db: Database) -> Plan | None:
    """The groups to audit, or None when this log is not for the fast path: positions with
    gaps, a stream that is not an account's. Quick (one pass over an index): the groups start
    on it, and stray_rows runs while they do."""
    head = await db.fetchone("SELECT COALESCE(MAX(position), 0) AS last FROM live.events")
    counts = [(str(r["stream_id"]), int(r["n"])) for r in await db.fetchall(
        "SELECT stream_id, COUNT(*) AS n FROM live.events GROUP BY stream_id ORDER BY stream_id")]
    if head is None or sum(n for _, n in counts) != head["last"]:  # positions with gaps
        return None
    try:
        users = [stream_user(stream_id) for stream_id, _ in counts]
    except Unexpected:
        return None
    return Plan(plan_groups(counts), users)


async def stray_rows(db: Database, tables: Sequence[TableSpec], users: Sequence[int]) -> bool:
    """Whether the live tables hold a row no group asks for (a row of no account in the log,
    a posting of no transaction, a hold of a status its CHECK refuses), or one the fast path
    cannot find by account: then the projectors' replay must compare the tables."""
    await db.execute("CREATE TEMP TABLE IF NOT EXISTS audit_users (user_id INTEGER PRIMARY KEY)")
    await db.execute("DELETE FROM audit_users")
    await db.execute("INSERT INTO audit_users SELECT value FROM json_each(?)",
                     (orjson.dumps(list(users)).decode(),))
    for spec in tables:
        if not spec.columns:
            continue
        if spec.name == "holds" and await db.fetchone(  # the groups find holds by status
                "SELECT 1 AS x FROM live.holds WHERE status IS NULL OR status NOT IN "
                f"{_HOLD_STATUSES} LIMIT 1") is not None:
            return True
        if spec.name == "postings":  # found by their transaction's account
            if not any(t.name == "transactions" and t.columns for t in tables):
                return True
            stray = await db.fetchone(
                "SELECT 1 AS x FROM live.postings t WHERE NOT EXISTS (SELECT 1 FROM "
                "live.transactions x WHERE x.id = t.position) LIMIT 1")
        elif "user_id" not in spec.columns:
            return True
        else:
            stray = await db.fetchone(
                f"SELECT 1 AS x FROM live.{spec.name} WHERE user_id IS NULL OR user_id NOT IN "
                "(SELECT user_id FROM temp.audit_users) LIMIT 1")
        if stray is not None:
            return True
    return False


def audit_group(live_uri: str, first: str, end: str | None,
                tables: Sequence[TableSpec]) -> GroupResult:
    """Streams first <= stream_id < end: hashes, fold, and rows equal to the live ones, all
    read in one snapshot of the live file (so a server writing meanwhile is no difference)."""
    try:
        # Closing the connection ends its read transaction: nothing to commit, nothing written.
        with closing(sqlite3.connect(live_uri, uri=True, isolation_level=None)) as conn:
            conn.execute("BEGIN")
            fold, users, events = _fold(conn, first, end)
            _compare(conn, fold, sorted(users), tables)
    except Unexpected as exc:
        return GroupResult(False, 0, str(exc))
    except Exception as exc:  # a damaged file, say: what the slow path says, it says
        return GroupResult(False, 0, f"{type(exc).__name__}: {exc}")
    return GroupResult(True, events)


def _range(column: str, end: str | None) -> str:
    return f"{column} >= ?" + ("" if end is None else f" AND {column} < ?")


def _fold(conn: sqlite3.Connection, first: str, end: str | None) -> tuple[Fold, set[int], int]:
    fold, events, users = Fold(), 0, set()
    sha256, fromisoformat, decode, loads = (hashlib.sha256, datetime.fromisoformat, Decoder(),
                                            orjson.loads)
    stream, user_id, recorded_at = None, 0, datetime.min
    at_text: object = object()  # equal to no stored value, not even None
    query = ("SELECT e.position, e.stream_id, e.version, e.type_name, e.schema_version, e.data, "
             "e.metadata, e.recorded_at, e.hash, p.hash FROM events e LEFT JOIN events p "
             f"ON p.position = e.position - 1 WHERE {_range('e.stream_id', end)} "
             "ORDER BY e.stream_id, e.version")
    for row in conn.execute(query, _bounds(first, end)):
        position, previous = row[0], row[9]
        if previous is None:
            if position != 1:
                raise Unexpected(f"position {position - 1} is missing")
            previous = GENESIS_HASH
        if sha256(payload(previous, row)).hexdigest() != row[8]:
            raise Unexpected(f"the hash at position {position} does not match")
        if row[1] != stream:
            stream, user_id = row[1], stream_user(row[1])
            users.add(user_id)
        event = decode(row[3], row[4], row[5])
        # Metadata.from_dict would fail on a text that is not an object (or json.loads would)
        if row[6] != "{}" and type(loads(row[6])) is not dict:
            raise Unexpected(f"metadata at position {position} is not an object")
        if row[7] != at_text:  # the events of one append share their time
            at_text, recorded_at = row[7], fromisoformat(row[7])
        fold.apply(position, user_id, row[2], row[3], event, row[7], recorded_at)
        events += 1
    return fold, users, events


def _bounds(first: str, end: str | None) -> tuple[str, ...]:
    return (first,) if end is None else (first, end)


def _compare(conn: sqlite3.Connection, fold: Fold, users: list[int],
             tables: Sequence[TableSpec]) -> None:
    for spec in tables:
        replayed = fold.rows(spec.name)
        if not spec.columns:
            if spec.built and replayed:
                raise Unexpected(f"the live file has no table {spec.name}")
            continue
        if spec.partial:
            replayed = [tuple(row[i] for i in spec.indexes) for row in replayed]
        expected = set(replayed)
        if len(expected) != len(replayed):
            raise Unexpected(f"the replay has a row of {spec.name} twice")
        cols = ", ".join(f"t.{c}" for c in spec.columns)
        marks = ",".join("?" * len(users))
        if spec.name == "postings":  # by the account of their transaction (there is one)
            live = conn.execute(f"SELECT {cols} FROM postings t JOIN transactions x ON "
                                f"x.id = t.position WHERE x.user_id IN ({marks})", users)
        else:
            live = conn.execute(f"SELECT {cols} FROM {spec.name} t WHERE "
                                f"{_BY_INDEX.get(spec.name, '')}t.user_id IN ({marks})", users)
        # Compared whole, in C: no live row twice (the replay has none), and the same rows.
        rows = live.fetchall()
        if len(rows) != len(replayed) or expected != set(rows):
            raise Unexpected(f"the live rows of {spec.name} differ from the replay")


# holds has no index on user_id alone, but one on (status, user_id): the statuses its CHECK
# allows let SQLite search it instead of scanning the table for every group. A row of another
# status (or none) is found by stray_rows(), and the audit leaves the log to the projectors.
_HOLD_STATUSES = "('open', 'settled', 'released')"
_BY_INDEX = {"holds": f"t.status IN {_HOLD_STATUSES} AND "}
