"""The auditor's check: verify the hash chain, replay the log from zero into fresh
projections, and compare them with the live ones. Nothing in the live file is written.

On PostgreSQL the log and the projections are first copied, from one REPEATABLE READ READ ONLY
snapshot, into a scratch SQLite file, and that copy gets the very same audit.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import ExitStack, closing, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO
from urllib.parse import quote

import asyncpg  # type: ignore[import-untyped]  # ships no type hints

from events import Database, StoreCorrupted, UniqueViolation
from events.database import InlineDatabase
from events.hashing import GENESIS_HASH
from events.pgdatabase import wrap
from events.projection import apply_each
from events.sql_log import row_from_db
from events.sqlite import SCHEMA as SQLITE_EVENTS_SCHEMA
from events.verify import ChainBreak, verify_chain
from ledger import audit_fast, audit_jobs
from ledger.checkpoint_audit import verify_checkpoints
from ledger.checkpoints import CHECKPOINT_SCHEMA, Checkpoint
from ledger.events import ledger_codec
from ledger.merkle_nodes import NodesVerdict, audit_nodes
from ledger.projections import ledger_projectors
from ledger.store import is_database_url

# Columns that identify a row of each projection, to name what differs.
KEYS = {"accounts": "user_id", "holds": "task_id", "transactions": "id", "tasks": "id",
        "postings": "position", "api_keys": "position", "account_settings": "user_id",
        "spend": "user_id", "spend_holds": "task_id"}
KEYS |= {"account_flags": "user_id", "operator_actions": "position"}  # the operator console
KEYS.update({"usage_slots": "user_id", "usage_days": "user_id", "usage_tasks": "task_id",
             "usage_zones": "user_id"})
KEYS["account_totals"] = "user_id"  # the metrics' start-up totals (ledger/totals.py)


@dataclass
class AuditReport:
    events: int = 0
    integrity: str = "ok"
    first_break: ChainBreak | None = None
    differences: dict[str, list[int]] = field(default_factory=dict)
    accounts_differ: list[int] = field(default_factory=list)
    postings_sum_credits: int = 0
    balances: int = 0
    head_hash: str = ""
    checkpoints_verified: int | None = None  # None: not asked for (--checkpoints)
    fast_path: bool = False  # the verdict is the fast path's (ledger/audit_fast.py)
    merkle_nodes: NodesVerdict = field(default_factory=lambda: NodesVerdict(0, None))

    @property
    def ok(self) -> bool:
        return (self.integrity == "ok" and self.first_break is None and not self.differences
                and self.postings_sum_credits == 0 and self.merkle_nodes.problem is None)

    def render(self) -> str:
        if self.integrity != "ok":  # nothing was read from the file, so nothing is claimed
            return "\n".join([f"file integrity:        {self.integrity}",
                              "hash chain, postings and projections: not checked",
                              "AUDIT FAILED"])
        lines = [f"events in the log:     {self.events:,}",
                 f"file integrity:        {self.integrity}"]
        if self.first_break:
            lines.append(f"hash chain:            BROKEN at position {self.first_break.position}"
                         f" ({self.first_break.reason})")
        else:
            lines.append("hash chain:            intact")
            lines.append(f"head:                  position {self.events}, hash {self.head_hash}")
            lines.append(f"                       (keep it; a later audit with --anchor "
                         f"{self.events}:{self.head_hash} proves nothing before it was rewritten)")
        if self.checkpoints_verified is not None:
            lines.append(f"signed checkpoints:    {self.checkpoints_verified:,} match the log")
        if self.merkle_nodes.problem is not None:
            lines.append(f"merkle nodes:          DIFFER ({self.merkle_nodes.problem}; derived "
                         "data: delete the merkle_nodes rows and the service builds them again)")
        elif self.merkle_nodes.checked:
            lines.append(f"merkle nodes:          {self.merkle_nodes.checked:,} equal to the "
                         "log's tree")
        lines.append(f"postings sum:          {self.postings_sum_credits} credits "
                     f"({'balanced' if self.postings_sum_credits == 0 else 'UNBALANCED'})")
        if self.differences:
            for table, keys in self.differences.items():
                shown = ", ".join(map(str, keys[:20])) + (" …" if len(keys) > 20 else "")
                lines.append(f"projection {table:<11} DIFFERS from the replay at {KEYS[table]} "
                             f"{shown}")
            if self.accounts_differ:
                lines.append("accounts that differ:  " + ", ".join(map(str, self.accounts_differ)))
        else:
            lines.append(f"projections:           equal to the replay ({self.balances:,} "
                         "accounts)")
        lines.append("AUDIT PASSED" if self.ok else "AUDIT FAILED")
        return "\n".join(lines)


def progress_bar(total: int, stream: TextIO = sys.stderr) -> Callable[[int], None]:
    """A text progress bar, drawn only for logs big enough to wait for."""
    if total < 20_000:
        return lambda done: None
    drawn = [-1]  # the last percentage drawn: `done` may come in steps of any size

    def draw(done: int) -> None:
        if 100 * done // total == drawn[0]:
            return
        drawn[0] = 100 * done // total
        filled = 30 * done // total
        print(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done:,}/{total:,} events",
              end="\n" if done >= total else "", file=stream, flush=True)

    return draw


Anchor = tuple[int, str]


def parse_anchor(text: str) -> Anchor:
    """'1234:9f86d0…' → (1234, '9f86d0…'): a head the auditor wrote down earlier."""
    position, _, digest = text.partition(":")
    if not position.isdigit() or len(digest) != 64:
        raise ValueError("an anchor is POSITION:SHA256HEX, as a passing audit prints it")
    return int(position), digest.lower()


@dataclass(frozen=True)
class AuditContext:
    """What the checks after the chain may use: the options, and the live file's URI."""

    anchors: Sequence[Anchor] = ()
    jobs: int = 1
    live_uri: str = ""
    checkpoints: bool = False  # hold the log to the signed checkpoints it keeps
    public_keys: Sequence[str] = ()
    held_checkpoints: Sequence[Checkpoint] = ()


# Checks run in order after an intact chain; each may set report.first_break. A new kind of
# external evidence (signed checkpoints, say) joins this list.
Check = Callable[[Database, AuditReport, AuditContext], Awaitable[None]]


async def _check_anchors(db: Database, report: AuditReport, context: AuditContext) -> None:
    """A chain recomputed end to end after an edit is self-consistent; only a hash kept
    outside the file can tell. Each anchor must still be in the log, unchanged."""
    for position, digest in sorted(context.anchors):
        row = await db.fetchone("SELECT hash FROM live.events WHERE position = ?", (position,))
        if row is None:
            report.first_break = ChainBreak(position, "the log is shorter than an anchor: "
                                                      "events were removed")
            return
        if row["hash"] != digest:
            report.first_break = ChainBreak(position, "the hash differs from the anchor: "
                                                      "history up to here was rewritten")
            return


async def _check_checkpoints(db: Database, report: AuditReport, context: AuditContext) -> None:
    if not context.checkpoints:
        return
    verdict = await verify_checkpoints(db, context.public_keys, context.held_checkpoints)
    report.checkpoints_verified = verdict.checked
    report.first_break = verdict.first_break


async def _check_merkle_nodes(db: Database, report: AuditReport, context: AuditContext
                             ) -> None:
    report.merkle_nodes = await audit_nodes(db)


CHECKS: list[Check] = [_check_anchors, _check_checkpoints, _check_merkle_nodes]


async def audit(
    path: str | Path, *, show_progress: bool = True, anchors: Sequence[Anchor] = (),
    checkpoints: bool = False, public_keys: Sequence[str] = (),
    held_checkpoints: Sequence[Checkpoint] = (),
    jobs: int | None = None,
) -> AuditReport:
    """Everything the audit compares is read in ONE read transaction on the live file (or
    database), so a server writing meanwhile cannot make the log, the replay and the live
    projections disagree. `path` is a SQLite file or a `postgresql://` URL. `jobs` processes
    (default: the cores) share the hashes and the replay; 1 keeps it all in this one."""
    # Asked for, processes are used whatever the size; by default only where they pay.
    least = 1 if jobs else audit_jobs.PARALLEL_FROM_EVENTS
    jobs = max(1, jobs or os.cpu_count() or 1)
    if is_database_url(path):
        assert isinstance(path, str)
        with tempfile.TemporaryDirectory(prefix="ml-cabinet-audit-pg-") as scratch:
            copy = Path(scratch) / "snapshot.db"
            await snapshot_postgres(path, copy)
            return await audit(copy, show_progress=show_progress, anchors=anchors, jobs=jobs,
                               checkpoints=checkpoints, public_keys=public_keys,
                               held_checkpoints=held_checkpoints)
    report = AuditReport()
    # quote() keeps '?', '#' and '%' in the path literal, as Database.connect does.
    live_uri = f"file:{quote(str(Path(path).resolve()))}?mode=ro"  # noqa: ASYNC240 - not I/O
    context = AuditContext(anchors=anchors, jobs=jobs, live_uri=live_uri,
                           checkpoints=checkpoints, public_keys=public_keys,
                           held_checkpoints=held_checkpoints)
    with tempfile.TemporaryDirectory(prefix="ml-cabinet-audit-") as scratch, ExitStack() as stack:
        # The audit is a process of its own: its statements run inline, no thread trips.
        db = await InlineDatabase.connect_inline(Path(scratch) / "replay.db")
        try:
            schema = "\n".join(p.schema for p in ledger_projectors())
            await db.executescript(schema)
            # A file that cannot be opened at all is an error for the caller to report;
            # one whose schema pages are damaged is a damaged file, and said so.
            try:
                await db.execute("ATTACH DATABASE ? AS live", (live_uri,))
            except Exception:
                if (damage := _schema_damage(live_uri)) is None:
                    raise
                report.integrity = f"DAMAGED ({damage})"
                return report
            pool, parts = None, []
            if jobs > 1 and await _head_or_zero(db) >= least:
                pool = stack.enter_context(ProcessPoolExecutor(jobs))
                parts = audit_jobs.part_files(Path(scratch), jobs)
                for k, part in enumerate(parts):  # attached now: not within the transaction
                    with closing(sqlite3.connect(part)) as conn:
                        conn.executescript(schema)
                    await db.execute(f"ATTACH DATABASE ? AS part{k}", (str(part),))
            await db.execute("BEGIN")
            # The fast path's groups start first: the file's quick_check (a second or more
            # on a big file) runs meanwhile. Nothing they find counts unless the file is ok.
            fast = await _start_fast(db, context, pool)
            await _check_file(db, report)
            if report.integrity != "ok":
                for future in fast.futures if fast else ():
                    future.cancel()
                with suppress(StoreCorrupted):  # nothing was written: closing ends it anyway
                    await db.execute("ROLLBACK")
                return report
            if not await _finish_fast(db, report, context, show_progress, fast):
                await _verify(db, report, context, show_progress, pool)
                if pool is None or not await _replay_in_parts(db, report, context, pool, parts):
                    await _replay(db, report)
                await _compare(db, report)
            await db.execute("COMMIT")
        finally:
            await db.close()
    return report


async def _head_or_zero(db: Database) -> int:
    try:
        return await _head(db)
    except StoreCorrupted:  # the quick_check, next, says so
        return 0


async def _head(db: Database) -> int:
    head = await db.fetchone("SELECT COALESCE(MAX(position), 0) AS n FROM live.events")
    return int(head["n"]) if head else 0


SNAPSHOT_TABLES = ("events", *KEYS, "checkpoints", "ledger_keys", "merkle_nodes")
SNAPSHOT_ORDER = {"events": "position", "postings": "position", "checkpoints": "position",
                  "merkle_nodes": "level, idx",
                  "ledger_keys": "key_id"}


async def snapshot_postgres(url: str, target: Path, batch_size: int = 2_000) -> int:
    """Copy the log and the projection tables, exactly as stored, from one consistent
    snapshot of a PostgreSQL database into a new SQLite file; the number of events copied."""
    schema = "\n".join([SQLITE_EVENTS_SCHEMA, *(p.schema for p in ledger_projectors()),
                        CHECKPOINT_SCHEMA])
    copied = 0
    try:
        conn = await asyncpg.connect(url, timeout=10)
    except Exception as exc:
        raise wrap(exc) from exc
    try:
        with closing(sqlite3.connect(target, isolation_level=None)) as out:
            out.executescript(f"BEGIN;\n{schema}")
            # One snapshot for every table: writes committed meanwhile are not seen.
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                for table in SNAPSHOT_TABLES:
                    order = SNAPSHOT_ORDER.get(table) or KEYS[table]
                    cursor = await conn.cursor(f"SELECT * FROM {table} ORDER BY {order}")
                    while rows := await cursor.fetch(batch_size):
                        columns = ", ".join(rows[0].keys())
                        marks = ", ".join("?" * len(rows[0]))
                        out.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})",
                                        [tuple(row.values()) for row in rows])
                        copied += len(rows) if table == "events" else 0
            out.execute("COMMIT")
    finally:
        await conn.close()
    return copied


def _schema_damage(live_uri: str) -> str | None:
    """Why SQLite cannot read the file's schema, when that is the reason ATTACH failed."""
    try:
        with closing(sqlite3.connect(live_uri, uri=True)) as conn:
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        text = str(exc)
        return text if any(w in text.lower() for w in ("malformed", "corrupt")) else None
    return None


async def _check_file(db: Database, report: AuditReport) -> None:
    try:
        rows = await db.fetchall("PRAGMA live.quick_check")
        await db.fetchone("SELECT COUNT(*) FROM live.events")
    except StoreCorrupted as exc:
        report.integrity = f"DAMAGED ({exc})"
        return
    verdict = "; ".join(str(next(iter(r.values()))) for r in rows[:5])
    report.integrity = "ok" if verdict == "ok" else f"DAMAGED ({verdict})"


@dataclass(frozen=True)
class FastRun:
    """The fast path's groups, running (ledger/audit_fast.py)."""

    total: int
    futures: list[Future[audit_fast.GroupResult]]
    tables: Sequence[audit_fast.TableSpec]
    users: Sequence[int]


async def _start_fast(db: Database, context: AuditContext,
                      pool: ProcessPoolExecutor | None) -> FastRun | None:
    """The groups submitted, or None when the log is not for the fast path (or the file
    cannot even be read so far: its quick_check, next, says why)."""
    try:
        tables = [await _table_spec(db, table) for table in audit_jobs.tables()]
        plan = await audit_fast.plan(db)
        total = await _head(db)
    except Exception:  # whatever it is, the file check next reports it as before
        return None
    if plan is None:
        return None
    run = pool.submit if pool is not None else _done_now
    return FastRun(total, [run(audit_fast.audit_group, context.live_uri, first, end, tables)
                           for first, end in plan.groups], tables, plan.users)


async def _finish_fast(db: Database, report: AuditReport, context: AuditContext,
                       show_progress: bool, fast: FastRun | None) -> bool:
    """The fast path's verdict; False, with the report as it was, when it is not sure, and
    the serial replay must say what differs and where."""
    if fast is None:
        return False
    report.events = fast.total
    row = await db.fetchone("SELECT hash FROM live.events WHERE position = ?", (fast.total,))
    report.head_hash = row["hash"] if row else GENESIS_HASH
    for check in CHECKS:  # while the groups run
        if report.first_break is None:
            await check(db, report, context)
    try:  # while the groups run too
        equal = not await audit_fast.stray_rows(db, fast.tables, fast.users)
    except Exception:  # the projectors' replay says what it is
        equal = False
    draw, done = progress_bar(fast.total) if show_progress else None, 0
    for future in fast.futures:
        result = future.result()
        equal = equal and result.equal
        done += result.events
        if draw is not None and equal:
            draw(min(done, fast.total))
    if not equal or report.first_break is not None:
        report.events, report.head_hash, report.first_break = 0, "", None
        report.checkpoints_verified = None
        return False
    total_row = await db.fetchone(
        "SELECT COALESCE(SUM(amount_credits), 0) AS s FROM live.postings")
    report.postings_sum_credits = int(total_row["s"]) if total_row else 0
    count = await db.fetchone("SELECT COUNT(*) AS n FROM live.accounts")
    report.balances = int(count["n"]) if count else 0
    report.fast_path = True
    return True


def _done_now(function: Callable[..., audit_fast.GroupResult],
              *args: object) -> Future[audit_fast.GroupResult]:
    """One process: each group audited when its turn comes (one group's rows held at once)."""
    future: Future[audit_fast.GroupResult] = Future()
    future.set_result(function(*args))
    return future


async def _table_spec(db: Database, table: str) -> audit_fast.TableSpec:
    replayed = [r["name"] for r in await db.fetchall(f"PRAGMA main.table_info({table})")]
    live = {r["name"] for r in await db.fetchall(f"PRAGMA live.table_info({table})")}
    indexes = tuple(i for i, name in enumerate(replayed) if name in live)
    return audit_fast.TableSpec(name=table, columns=tuple(replayed[i] for i in indexes),
                                indexes=indexes, partial=len(indexes) != len(replayed),
                                built=await _was_built(db, table))


async def _verify(
    db: Database, report: AuditReport, context: AuditContext, show_progress: bool,
    pool: ProcessPoolExecutor | None,
) -> None:
    total = await _head(db)
    if pool is not None:  # ranges in parallel; what they found is what one walk would say
        report.first_break = audit_jobs.first_break(pool, context.live_uri, total,
                                                    context.jobs)
        report.events = total if report.first_break is None else report.first_break.position - 1
        row = await db.fetchone("SELECT hash FROM live.events WHERE position = ?",
                                (report.events,))
        report.head_hash = row["hash"] if row else GENESIS_HASH
    else:
        draw = progress_bar(total) if show_progress else (lambda done: None)
        chain = await verify_chain((row_from_db(r) async for r in db.iterate(
            "SELECT * FROM live.events ORDER BY position")), progress=draw)
        report.events, report.first_break = chain.events, chain.first_break
        report.head_hash = chain.head_hash
    for check in CHECKS:
        if report.first_break is not None:
            return
        await check(db, report, context)


async def _replay_in_parts(db: Database, report: AuditReport, context: AuditContext,
                           pool: ProcessPoolExecutor, parts: Sequence[Path]) -> bool:
    """The replay split by account and merged into the scratch tables; False when the parts
    do not merge (a constraint across accounts failed), so one process must replay."""
    before = report.first_break.position if report.first_break else report.events + 1
    failure = audit_jobs.replay_parts(pool, context.live_uri, parts, before)
    if failure is not None:  # the serial replay stops there for every account: so do we
        audit_jobs.replay_parts(pool, context.live_uri, parts, failure.position)
    try:
        for k in range(len(parts)):
            for table in audit_jobs.tables():
                await db.execute(f"INSERT INTO main.{table} SELECT * FROM part{k}.{table}")
    except (UniqueViolation, sqlite3.IntegrityError):
        for table in audit_jobs.tables():
            await db.execute(f"DELETE FROM main.{table}")
        return False
    if failure is not None:
        report.first_break = failure
    return True


async def _replay(db: Database, report: AuditReport) -> None:
    codec, projectors = ledger_codec(), ledger_projectors()
    async for raw in db.iterate("SELECT * FROM live.events ORDER BY position"):
        row = row_from_db(raw)
        if report.first_break and row.position >= report.first_break.position:
            break  # past a break nothing is trusted, so nothing is replayed
        try:
            await apply_each(db, projectors, row.to_recorded(codec))
        except Exception as exc:  # a row the chain accepted but the domain cannot fold
            report.first_break = ChainBreak(row.position, f"cannot be replayed: {exc}")
            break


async def _compare(db: Database, report: AuditReport) -> None:
    for table in audit_jobs.tables():
        await _compare_table(db, table, report)
    total = await db.fetchone("SELECT COALESCE(SUM(amount_credits), 0) AS s FROM live.postings")
    report.postings_sum_credits = int(total["s"]) if total else 0
    count = await db.fetchone("SELECT COUNT(*) AS n FROM main.accounts")
    report.balances = int(count["n"]) if count else 0


async def shared_columns(replay: Database, table: str) -> str:
    """The columns the replay's table and the live one both have, in the replay's order.

    Like is compared with like: a file written by an older release keeps its projections'
    older shape until the new code opens it (and rebuilds them from the log); its columns
    must still equal the replay's, and a column it does not have yet is not a difference."""
    replayed = await replay.fetchall(f"PRAGMA main.table_info({table})")
    live = {row["name"] for row in await replay.fetchall(f"PRAGMA live.table_info({table})")}
    return ", ".join(row["name"] for row in replayed if row["name"] in live)


async def _was_built(replay: Database, table: str) -> bool:
    """Whether the file's projection versions say the projector owning `table` was built."""
    names = [p.name for p in ledger_projectors() if table in p.tables]
    versions = await replay.fetchone(
        "SELECT 1 AS x FROM live.sqlite_master WHERE name = 'projection_versions'")
    if versions is None or not names:
        return False
    row = await replay.fetchone("SELECT 1 AS x FROM live.projection_versions WHERE name = ?",
                                (names[0],))
    return row is not None


async def _compare_table(replay: Database, table: str, report: AuditReport) -> None:
    key = KEYS[table]
    cols = await shared_columns(replay, table)
    if not cols:  # the file has no such table
        if not await _was_built(replay, table):
            return  # a file older than the projection: the new code builds it at open
        missing = await replay.fetchall(f"SELECT {key} AS k FROM main.{table} ORDER BY {key}")
        if missing:  # built once and dropped since
            report.differences[table] = [int(r["k"]) for r in missing]
        return
    # Each EXCEPT in its own subquery: compound operators chain left to right, so without them
    # "A EXCEPT B UNION ALL B EXCEPT A" is ((A - B) + B) - A and loses rows missing from live.
    differing = await replay.fetchall(
        f"SELECT k FROM (SELECT {key} AS k FROM (SELECT {cols} FROM main.{table} EXCEPT "
        f"SELECT {cols} FROM live.{table}) UNION ALL SELECT {key} AS k FROM (SELECT {cols} "
        f"FROM live.{table} EXCEPT SELECT {cols} FROM main.{table})) GROUP BY k ORDER BY k")
    if not differing:
        return
    report.differences[table] = [int(r["k"]) for r in differing]
    user_col = "user_id" if table != "postings" else None
    if user_col is None:
        return
    keys = ",".join(str(r["k"]) for r in differing[:1000])
    users = await replay.fetchall(
        f"SELECT DISTINCT user_id FROM (SELECT {key}, user_id FROM main.{table} UNION ALL "
        f"SELECT {key}, user_id FROM live.{table}) WHERE {key} IN ({keys}) ORDER BY user_id")
    report.accounts_differ = sorted({*report.accounts_differ, *(int(u["user_id"])
                                                                 for u in users)})
