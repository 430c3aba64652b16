"""Verification that does not grow with the log: a verified-through mark checked at start-up,
and a background re-walk of the whole chain at a bounded rate.

The mark (position + hash) is a control-plane row: it only advances after the rows up to it
were verified, so a start-up checks only what a crash can damage — the mark's own row, the tail
written since, and the head. Whatever happened before the mark is re-checked by the background
pass, which keeps its cursor in the same row; a break it finds is kept there too, so every
process (and the next start) knows the first bad position.
"""

from __future__ import annotations

import asyncio
import logging
import time
from asyncio import Lock
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from events import SqlEventStore, StoreCorrupted, StoreError
from events.hashing import GENESIS_HASH
from events.rows import StoredRow
from events.sql import SqlDatabase
from events.sql_log import ROW_COLUMNS, row_from_db
from events.store import SqlSession
from events.verify import ChainBreak, check_link

log = logging.getLogger(__name__)

VERIFIER_SCHEMA = """
CREATE TABLE IF NOT EXISTS verifier_state (
    id                INTEGER PRIMARY KEY CHECK (id = 1),
    mark_position     BIGINT  NOT NULL,
    mark_hash         TEXT    NOT NULL,
    pass_position     BIGINT  NOT NULL,
    pass_hash         TEXT    NOT NULL,
    last_full_pass_at TEXT,
    break_position    BIGINT,
    break_reason      TEXT,
    updated_at        TEXT    NOT NULL
);
-- One process re-walks at a time (others only read the state): whoever holds this lease.
CREATE TABLE IF NOT EXISTS verifier_lease (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    owner TEXT    NOT NULL,
    until TEXT    NOT NULL
);
"""
LEASE_S = 30.0
# Rows fetched per query at start-up (a read never holds a snapshot for long), and the most
# of the tail after the mark that one background tick walks (the pass gets the rest).
BATCH_ROWS = 2_000
# Rows the background walk reads and hashes at a time, serving requests in between: each
# row's hash is made again on the event loop (about 5 µs), so 2,000 at once held every
# request for 10 ms or more and set the service's p99 at one connection (BENCHMARKS.md,
# round 12). The tick's budget (the rate) is unchanged.
STEP_ROWS = 200


@dataclass(frozen=True)
class VerifierState:
    """mark: every row up to it chains (verified); pass: the re-walk's cursor."""

    mark_position: int = 0
    mark_hash: str = GENESIS_HASH
    pass_position: int = 0
    pass_hash: str = GENESIS_HASH
    last_full_pass_at: str | None = None
    break_position: int | None = None
    break_reason: str | None = None

    @property
    def broken(self) -> ChainBreak | None:
        if self.break_position is None:
            return None
        return ChainBreak(self.break_position, self.break_reason or "")


@dataclass(frozen=True)
class StartupCheck:
    rows_read: int
    state: VerifierState
    first_break: ChainBreak | None


async def load_state(db: SqlDatabase) -> VerifierState:
    row = await db.fetchone(
        "SELECT mark_position, mark_hash, pass_position, pass_hash, last_full_pass_at, "
        "break_position, break_reason FROM verifier_state WHERE id = 1")
    if row is None:  # a log never verified under this scheme: nothing is taken on trust
        return VerifierState()
    return VerifierState(
        int(row["mark_position"]), row["mark_hash"], int(row["pass_position"]),
        row["pass_hash"], row["last_full_pass_at"],
        None if row["break_position"] is None else int(row["break_position"]),
        row["break_reason"])


async def save_state(db: SqlDatabase, state: VerifierState, now: str) -> None:
    values = (state.mark_position, state.mark_hash, state.pass_position, state.pass_hash,
              state.last_full_pass_at, state.break_position, state.break_reason, now)
    await db.execute(
        "INSERT INTO verifier_state (id, mark_position, mark_hash, pass_position, pass_hash, "
        "last_full_pass_at, break_position, break_reason, updated_at) SELECT 1, ?, ?, ?, ?, ?, "
        "?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM verifier_state WHERE id = 1)", values)
    # Another process may have moved on meanwhile: the mark never goes back, a break stays.
    await db.execute(
        "UPDATE verifier_state SET mark_position = ?, mark_hash = ?, pass_position = ?, "
        "pass_hash = ?, last_full_pass_at = ?, break_position = COALESCE(break_position, ?), "
        "break_reason = COALESCE(break_reason, ?), updated_at = ? "
        "WHERE id = 1 AND mark_position <= ?", (*values, state.mark_position))
    if state.break_position is not None:  # a break is kept whoever moved the mark
        await db.execute("UPDATE verifier_state SET break_position = ?, break_reason = ? "
                         "WHERE id = 1 AND break_position IS NULL",
                         (state.break_position, state.break_reason))


async def read_after(db: SqlDatabase, position: int, limit: int) -> list[StoredRow]:
    rows = await db.fetchall(f"SELECT {ROW_COLUMNS} FROM events WHERE position > ? "
                             "ORDER BY position LIMIT ?", (position, limit))
    return [row_from_db(row) for row in rows]


def check_rows(rows: list[StoredRow], after: int, previous_hash: str) -> ChainBreak | None:
    for expected, row in enumerate(rows, start=after + 1):
        if (broken := check_link(row, expected, previous_hash)) is not None:
            return broken
        previous_hash = row.hash
    return None


async def _check_mark(db: SqlDatabase, state: VerifierState) -> tuple[int, ChainBreak | None]:
    """The mark's row must still be there, hold the hash the mark kept, and chain onto its
    stored predecessor (an edit that left the hash alone shows there). Two rows read."""
    if state.mark_position == 0:
        return 0, None
    # The mark's row and its predecessor; a mark on the first event has none.
    rows = await read_after(db, max(state.mark_position - 2, 0), min(state.mark_position, 2))
    row = rows[-1] if rows else None
    if row is None or row.position != state.mark_position:
        return len(rows), ChainBreak(state.mark_position, "the log is shorter than the "
                                     "verified mark: events were removed")
    if row.hash != state.mark_hash:
        return len(rows), ChainBreak(state.mark_position, "the hash differs from the "
                                     "verified mark: history up to here was rewritten")
    previous = rows[0].hash if len(rows) == 2 else GENESIS_HASH
    return len(rows), check_rows([row], state.mark_position - 1, previous)


async def check_at_start(store: SqlEventStore, batch_rows: int = BATCH_ROWS) -> StartupCheck:
    """The mark, then the tail up to the head; the mark moves to the head when they hold.
    Work is the tail's length plus two rows, whatever the log's size."""
    db = store.read_db()
    state = await load_state(db)
    if state.broken is not None:
        return StartupCheck(0, state, state.broken)
    rows_read, broken = await _check_mark(db, state)
    position, previous = state.mark_position, state.mark_hash
    while broken is None:
        rows = await read_after(db, position, batch_rows)
        rows_read += len(rows)
        broken = check_rows(rows, position, previous)
        if broken is None and rows:
            position, previous = rows[-1].position, rows[-1].hash
        if len(rows) < batch_rows:
            break
    if broken is None and position != state.mark_position:
        state = replace(state, mark_position=position, mark_hash=previous)
        await _store(store, state)
    return StartupCheck(rows_read, state, broken)


async def _store(store: SqlEventStore, state: VerifierState) -> None:
    now = store.clock().astimezone(UTC).isoformat(timespec="seconds")
    try:
        await store.transact(lambda session: save_state(session.db, state, now))
    except StoreError as error:  # a read-only disk: the next start re-checks a longer tail
        log.warning("the verified mark was not saved: %s", error)


async def take_lease(store: SqlEventStore, owner: str, now: datetime) -> bool:
    """The lease for `owner` for LEASE_S more seconds, unless another owner's is still good.
    Read and written in one write transaction, so two processes cannot both get it."""
    at, until = (now.astimezone(UTC).isoformat(timespec="microseconds"),
                 (now + timedelta(seconds=LEASE_S)).astimezone(UTC).isoformat(
                     timespec="microseconds"))

    async def work(session: SqlSession) -> bool:
        row = await session.db.fetchone("SELECT owner, until FROM verifier_lease WHERE id = 1")
        if row is not None and row["owner"] != owner and row["until"] > at:
            return False
        await session.db.execute("DELETE FROM verifier_lease WHERE id = 1")
        await session.db.execute("INSERT INTO verifier_lease (id, owner, until) VALUES (1, ?, ?)",
                                 (owner, until))
        return True

    return await store.transact(work)


class _Pace:
    """A pause before every slice of a step but its first (a pace, not a synchronisation)."""

    def __init__(self, pause_s: float) -> None:
        self.pause_s, self.started = pause_s, False

    async def slice(self) -> None:
        if self.started:
            await asyncio.sleep(self.pause_s)
        self.started = True


async def _walk_tail(db: SqlDatabase, state: VerifierState, budget: int, pace: _Pace
                     ) -> tuple[VerifierState, int, ChainBreak | None]:
    """The rows after the mark, up to `budget` of them, STEP_ROWS at a time: the mark moves
    over each slice that chains (to the last one before a break, should there be one)."""
    done = 0
    while done < budget:
        await pace.slice()
        wanted = min(budget - done, STEP_ROWS)
        tail = await read_after(db, state.mark_position, wanted)
        done += len(tail)
        if (broken := check_rows(tail, state.mark_position, state.mark_hash)) is not None:
            return state, done, broken
        if tail:
            state = replace(state, mark_position=tail[-1].position, mark_hash=tail[-1].hash)
        if len(tail) < wanted:  # the head
            break
    return state, done, None


class LogVerifier:
    """The background re-walk: `step()` checks up to `rows` rows — the tail after the mark
    first (it bounds the next start-up), then the full pass from its cursor — and saves its
    progress. At the end of a pass the projections' invariants are checked too. It reads on
    the store's background connection, so no request's read waits behind it. (The file's
    full PRAGMA quick_check is not run here: 1.3 s on 1M events of a connection's time and a
    core's; the walk reads every page of the log, and the audit runs quick_check.)"""

    def __init__(self, store: SqlEventStore, rate_per_s: int, tick_s: float = 1.0,
                 on_break: Callable[[ChainBreak], None] | None = None,
                 owner: str | None = None) -> None:
        self.store, self.rate_per_s, self.tick_s = store, rate_per_s, tick_s
        self.owner, self._lease_until = owner, 0.0
        self.state = VerifierState()
        self.on_break = on_break
        self.min_pass_interval_s = 60.0
        # One step at a time in a process: a step called while the background one pauses
        # between slices would otherwise end first, and the background step, ending after
        # it, set the state back to what it had read before (verified_through went back).
        self._stepping = Lock()

    @property
    def broken(self) -> ChainBreak | None:
        return self.state.broken

    async def load(self) -> None:
        self.state = await load_state(self.store.read_db())

    def health(self) -> dict[str, Any]:
        broken = self.broken
        return {"verified_through": self.state.mark_position,
                "pass_position": self.state.pass_position,
                "last_full_pass_at": self.state.last_full_pass_at,
                "first_break": None if broken is None else {"position": broken.position,
                                                      "reason": broken.reason}}

    async def step(self, rows: int | None = None, spread_s: float = 0.0) -> int:
        """Check up to `rows` rows (the rate's tick), STEP_ROWS at a time, the pauses between
        the slices adding up to less than `spread_s`: done at once, a request that needs
        several turns of the event loop would meet a slice at each; spread, it meets one."""
        budget = rows if rows is not None else max(1, int(self.rate_per_s * self.tick_s))
        if budget <= 0:
            return 0
        async with self._stepping:
            return await self._step(budget, _Pace(spread_s / -(-budget // STEP_ROWS)))

    async def _step(self, budget: int, pace: _Pace) -> int:
        db = self.store.read_db()
        stored = await load_state(db)  # another process may have advanced it
        state = stored if stored.mark_position >= self.state.mark_position else self.state
        if state.broken is not None or not await self._lease():
            self.state = state  # a break another process found is known here too
            return 0
        before, db = state, self.store.background_db()  # long reads: apart
        state, done, broken = await _walk_tail(db, state, min(budget, BATCH_ROWS), pace)
        if broken is None and self._pass_due(state):  # the pass gets the rest of the budget
            state, walked, broken = await self._walk_pass(db, state, budget - done, pace)
            done += walked
        if broken is not None:
            state = replace(state, break_position=broken.position, break_reason=broken.reason)
            log.error("the event log is broken at position %d: %s", broken.position,
                      broken.reason)
        self.state = state
        if state != before:  # an idle service does not commit once a tick
            await _store(self.store, state)
        if broken is not None and self.on_break is not None:
            self.on_break(broken)
        return done

    async def _walk_pass(self, db: SqlDatabase, state: VerifierState, budget: int,
                         pace: _Pace) -> tuple[VerifierState, int, ChainBreak | None]:
        """The full pass from its cursor, up to `budget` rows; when it meets the mark, the
        projections' invariants, and the pass starts again."""
        done = 0
        while done < budget:
            await pace.slice()
            try:  # the walk reads every page of the log: a damaged one shows here
                walked = await read_after(db, state.pass_position,
                                          min(budget - done, STEP_ROWS))
            except StoreCorrupted as error:
                return state, done, ChainBreak(state.pass_position + 1,
                                               f"the file is damaged: {error}")
            done += len(walked)
            if (broken := check_rows(walked, state.pass_position, state.pass_hash)) is not None:
                return state, done, broken
            if walked:
                state = replace(state, pass_position=walked[-1].position,
                                pass_hash=walked[-1].hash)
            if state.pass_position >= state.mark_position:  # the pass met the tail: done
                broken = await projections_problem(db)
                if broken is None:
                    state = replace(state, pass_position=0, pass_hash=GENESIS_HASH,
                                    last_full_pass_at=self._now())
                return state, done, broken
        return state, done, None

    async def _lease(self) -> bool:
        """Several processes on one database: only the lease holder walks. Renewed at half
        its length, so an idle holder commits once in LEASE_S / 2 seconds."""
        if self.owner is None:
            return True
        if time.monotonic() < self._lease_until - LEASE_S / 2:
            return True
        if not await take_lease(self.store, self.owner, self.store.clock()):
            self._lease_until = 0.0
            return False
        self._lease_until = time.monotonic() + LEASE_S
        return True

    def _pass_due(self, state: VerifierState) -> bool:
        """A small log is re-walked at most once a minute, not once a tick."""
        if state.pass_position > 0 or state.last_full_pass_at is None:
            return True
        ended = datetime.fromisoformat(state.last_full_pass_at)
        return (self.store.clock() - ended).total_seconds() >= self.min_pass_interval_s

    def _now(self) -> str:
        return self.store.clock().astimezone(UTC).isoformat(timespec="seconds")

    async def run_forever(self) -> None:
        while True:
            started = time.monotonic()
            try:  # the tick's slices spread over most of it
                await self.step(spread_s=self.tick_s * 0.8)
            except StoreError as error:
                log.warning("verifier step skipped: %s", error)
            except Exception:  # the verifier must outlive any one bad step
                log.exception("verifier step failed")
            # The rate limit, not a synchronisation: a step a tick.
            await asyncio.sleep(max(0.0, self.tick_s - (time.monotonic() - started)))


async def projections_problem(db: SqlDatabase) -> ChainBreak | None:
    """The projections' invariants, set-based in the database: double entry sums to zero, and
    every balance equals its account's postings. (The full replay is the audit's job.)"""
    total = await db.fetchone("SELECT COALESCE(SUM(amount_credits), 0) AS s FROM postings")
    if total is not None and int(total["s"]) != 0:
        return ChainBreak(0, f"the postings sum to {total['s']} credits, not 0")
    wrong = await db.fetchone(
        "SELECT a.user_id AS u FROM accounts a LEFT JOIN (SELECT account, SUM(amount_credits) "
        "AS s FROM postings GROUP BY account) p ON p.account = 'user:' || a.user_id "
        "WHERE a.balance_credits <> COALESCE(p.s, 0) ORDER BY a.user_id LIMIT 1")
    if wrong is not None:
        return ChainBreak(0, f"the balance of account {wrong['u']} differs from its postings")
    return None
