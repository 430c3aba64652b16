"""Processes on one SQLite file queue for its write lock (events/write_lock.py): with SQLite's
busy timeout at 0, a writer that finds the lock taken waits in the queue instead of failing,
and the lock is free again however the holder's transaction ends: commit, a failed job, a
failed BEGIN, the store closing, the process killed."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest

from events import (
    Event,
    EventCodec,
    SQLiteEventStore,
    SqlSession,
    StoreUnavailable,
)
from events.database import InlineDatabase
from events.sums import SumsFirst
from events.write_lock import WriteLock, lock_path

CHILD = Path(__file__).with_name("write_queue_child.py")
WAIT_S = 20  # a bound on every wait below, so a broken queue fails instead of hanging


@dataclass(frozen=True, kw_only=True)
class Wrote(Event, type_name="Wrote"):
    by: int
    n: int


class Child:
    """One write_queue_child.py process, spoken to line by line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, db: Path, *args: str) -> Child:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(CHILD), str(db), *args, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE)
        return cls(proc)

    async def line(self) -> str:
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), WAIT_S)
        assert raw, f"the child ended early (exit {await self.proc.wait()})"
        return raw.decode().strip()

    def send(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")

    async def finish(self) -> int:
        return await asyncio.wait_for(self.proc.wait(), WAIT_S)


@pytest.fixture
async def children() -> AsyncIterator[list[Child]]:
    started: list[Child] = []
    try:
        yield started
    finally:
        for child in started:
            if child.proc.returncode is None:
                child.proc.kill()
                await child.proc.wait()


async def blocked_on_queue(db: Path, pid: int) -> None:
    """Until the kernel lists `pid` as waiting for the flock on the db's lock file
    (/proc/locks marks a blocked request with '->'): a condition, not a guess at time."""
    inode = os.stat(lock_path(db)).st_ino
    async with asyncio.timeout(WAIT_S):
        while True:
            for line in Path("/proc/locks").read_text().splitlines():  # noqa: ASYNC240 - procfs
                fields = line.split()
                if "->" in fields and "FLOCK" in fields and str(pid) in fields and \
                        fields[-3].endswith(f":{inode}"):
                    return
            await asyncio.sleep(0.005)


def lock_is_free(db: Path) -> bool:
    """Whether another open file description can take the flock right now."""
    fd = os.open(lock_path(db), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # drops it, if taken
    return True


def count_events(db: Path) -> int:
    with closing(sqlite3.connect(db)) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])


async def prepared(db: Path) -> None:
    """The schema made once, so neither child's first transaction is the schema's."""
    store = SQLiteEventStore(db, codec())
    await store.open()
    await store.close()


def codec() -> EventCodec:
    found = EventCodec()
    found.register(Wrote)
    return found


@pytest.mark.slow
@pytest.mark.parametrize("queue", [True, False])
async def test_a_writer_that_finds_the_lock_taken_waits_its_turn_instead_of_failing(
        tmp_path: Path, children: list[Child], queue: bool) -> None:
    db = tmp_path / "shared.db"
    await prepared(db)
    flags = () if queue else ("--no-queue",)
    # The waiter opens first: opening writes too (the schema's transaction), and queues.
    waiter = await Child.start(db, "append", "1", *flags)
    children.append(waiter)
    assert await waiter.line() == "ready"
    holder = await Child.start(db, "hold", *flags)
    children.append(holder)
    assert await holder.line() == "holding"
    waiter.send()
    if queue:
        await blocked_on_queue(db, waiter.proc.pid)
        holder.send()
        held_position = int((await holder.line()).split()[1])
        result = json.loads(await waiter.line())
        assert (result["ok"], result["failed"]) == (1, 0), result
        assert result["stats"]["waited"] == 1, result
        with closing(sqlite3.connect(db)) as conn:
            waiter_position = conn.execute(
                "SELECT position FROM events WHERE stream_id LIKE 'w-%'").fetchone()[0]
        assert held_position < waiter_position  # it went after the holder, not around it
    else:  # SQLite alone, busy timeout 0: the second writer's BEGIN IMMEDIATE fails
        result = json.loads(await waiter.line())
        assert (result["ok"], result["failed"]) == (0, 1), result
        assert "locked" in result["error"], result
        holder.send()
        assert (await holder.line()).startswith("committed")
    assert await holder.finish() == 0
    assert await waiter.finish() == 0


@pytest.mark.slow
async def test_two_processes_committing_back_to_back_never_see_the_lock_busy(
        tmp_path: Path, children: list[Child]) -> None:
    db = tmp_path / "shared.db"
    await prepared(db)
    commits = 150
    for _ in range(2):
        children.append(await Child.start(db, "append", str(commits)))
    for child in children:
        assert await child.line() == "ready"
    for child in children:
        child.send()
    results = [json.loads(await child.line()) for child in children]
    for result in results:
        assert (result["ok"], result["failed"]) == (commits, 0), result
        assert result["stats"]["acquisitions"] == commits + 1, result  # + the schema's
    assert count_events(db) == 2 * commits
    assert [await child.finish() for child in children] == [0, 0]


@pytest.mark.slow
async def test_a_holder_killed_mid_transaction_lets_the_waiting_process_go_on(
        tmp_path: Path, children: list[Child]) -> None:
    db = tmp_path / "shared.db"
    await prepared(db)
    waiter = await Child.start(db, "append", "1")
    children.append(waiter)
    assert await waiter.line() == "ready"
    holder = await Child.start(db, "hold")
    children.append(holder)
    assert await holder.line() == "holding"
    waiter.send()
    await blocked_on_queue(db, waiter.proc.pid)
    holder.proc.send_signal(signal.SIGKILL)
    assert await holder.finish() == -signal.SIGKILL
    result = json.loads(await waiter.line())
    assert (result["ok"], result["failed"]) == (1, 0), result
    assert await waiter.finish() == 0
    with closing(sqlite3.connect(db)) as conn:  # the killed holder's event never committed
        streams = [r[0] for r in conn.execute("SELECT stream_id FROM events")]
    assert len(streams) == 1 and streams[0].startswith("w-"), streams


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteEventStore]:
    opened = SQLiteEventStore(tmp_path / "one.db", codec(), busy_timeout_ms=0)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


async def test_the_lock_is_held_for_the_transaction_and_free_after_commit(
        store: SQLiteEventStore) -> None:
    seen: list[bool] = []

    async def work(session: SqlSession) -> None:
        seen.append(lock_is_free(store.path))
        await session.append("s", 0, [Wrote(by=0, n=0)])

    await store.transact(work)
    assert seen == [False]
    assert lock_is_free(store.path)


async def test_the_lock_is_free_after_a_job_fails_alone_or_fails_its_batch(
        store: SQLiteEventStore) -> None:
    async def fails_alone(session: SqlSession) -> None:
        await session.append("alone", 0, [Wrote(by=0, n=0)])
        raise ValueError("a bad job")  # rolled back to its savepoint; the batch commits

    async def fails_the_batch(session: SqlSession) -> None:
        await session.append("batch", 0, [Wrote(by=0, n=0)])
        raise StoreUnavailable("the store is failing")  # the whole transaction rolls back

    with pytest.raises(ValueError, match="a bad job"):
        await store.transact(fails_alone)
    assert lock_is_free(store.path)
    with pytest.raises(StoreUnavailable):
        await store.transact(fails_the_batch)
    assert lock_is_free(store.path)
    assert count_events(store.path) == 0
    await store.append("after", 0, [Wrote(by=0, n=1)])  # and the next write goes through
    assert count_events(store.path) == 1


async def test_the_lock_is_free_after_begin_itself_fails(store: SQLiteEventStore) -> None:
    # A writer outside the queue (the sqlite3 shell, say) holds SQLite's own write lock.
    with closing(sqlite3.connect(store.path, isolation_level=None)) as outsider:
        outsider.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreUnavailable, match="locked"):
            await store.append("s", 0, [Wrote(by=0, n=0)])
        assert lock_is_free(store.path)
        outsider.execute("ROLLBACK")
    await store.append("s", 0, [Wrote(by=0, n=0)])
    assert count_events(store.path) == 1


async def test_closing_the_connection_mid_transaction_drops_the_lock(
        store: SQLiteEventStore) -> None:
    # What a writer cancelled inside its transaction leaves: BEGIN taken, no COMMIT.
    db = await InlineDatabase.connect_inline(store.path, busy_timeout_ms=0, write_lock=True)
    await db.execute("BEGIN IMMEDIATE")
    assert not lock_is_free(store.path)
    await db.close()
    assert lock_is_free(store.path)
    await store.append("s", 0, [Wrote(by=0, n=0)])
    stats = store.write_lock_stats
    assert stats is not None and stats.acquisitions == 2 and stats.waited == 0  # schema, s


async def test_without_the_queue_no_lock_file_is_taken(tmp_path: Path) -> None:
    store = SQLiteEventStore(tmp_path / "one.db", codec(), write_queue=False)
    await store.open()
    try:
        await store.append("s", 0, [Wrote(by=0, n=0)])
        assert store.write_lock_stats is None
        assert not lock_path(store.path).exists()
    finally:
        await store.close()


class Batches:
    """A CommitObserver that keeps the size of each committed batch."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def batch_committed(self, jobs: int, seconds: float) -> None:
        self.sizes.append(jobs)

    def events_committed(self, events: object) -> None:
        pass


async def test_jobs_queued_while_the_writer_waits_its_turn_join_its_batch(
        store: SQLiteEventStore) -> None:
    batches = Batches()
    store.observer = batches
    other = os.open(lock_path(store.path), os.O_RDWR)  # another process's turn, as it were
    try:
        fcntl.flock(other, fcntl.LOCK_EX)
        first = asyncio.create_task(store.append("first", 0, [Wrote(by=0, n=0)]))
        await blocked_on_queue(store.path, os.getpid())  # the writer waits in the kernel
        later = [asyncio.create_task(store.append(f"later-{n}", 0, [Wrote(by=0, n=n)]))
                 for n in range(4)]
        await asyncio.sleep(0)  # one turn of the loop: each task queues its job and waits
        assert store.queue_depth == len(later)
        fcntl.flock(other, fcntl.LOCK_UN)
        await asyncio.gather(first, *later)
    finally:
        os.close(other)
    assert batches.sizes == [5]  # one transaction, one commit
    assert count_events(store.path) == 5


async def test_a_writer_taking_the_lock_again_lets_the_waiting_one_go_first(
        tmp_path: Path) -> None:
    # Two open files of the lock conflict as two processes do (flock is per open file).
    db = tmp_path / "turns.db"
    mine, theirs = WriteLock(db), WriteLock(db)
    order: list[str] = []

    def their_turn() -> None:
        theirs.acquire()
        order.append("theirs")
        theirs.release()

    try:
        mine.acquire()
        waiting = asyncio.create_task(asyncio.to_thread(their_turn))
        await blocked_on_queue(db, os.getpid())
        # Released and at once asked for again, in one go: a plain flock usually goes
        # straight back to this caller (the waiter's thread is still waking up).
        mine.release()
        mine.acquire()
        order.append("mine")
        mine.release()
        await waiting
        assert order == ["theirs", "mine"]
        assert theirs.stats.waited == 1
    finally:
        mine.close()
        theirs.close()


@pytest.mark.slow
async def test_a_stopped_holder_makes_writes_fail_as_busy_in_time_not_hang(
        tmp_path: Path, children: list[Child]) -> None:
    """A holder that never lets go (stopped, in a debugger) must not hang every other
    process's writes and shutdown: past the lock timeout a write fails StoreUnavailable
    (the API's 503, retry), and once the holder is gone, writes go through again and no
    lock is left taken behind them."""
    db = tmp_path / "shared.db"
    await prepared(db)
    store = SQLiteEventStore(db, codec(), lock_timeout_ms=300)
    await store.open()  # opening writes too (the schema's transaction): before the holder
    try:
        holder = await Child.start(db, "hold")
        children.append(holder)
        assert await holder.line() == "holding"
        async with asyncio.timeout(WAIT_S):
            with pytest.raises(StoreUnavailable, match="write lock"):
                await store.append("late", 0, [Wrote(by=0, n=0)])
        holder.send()
        assert (await holder.line()).startswith("committed")
        assert await holder.finish() == 0
        async with asyncio.timeout(WAIT_S):
            await store.append("late", 0, [Wrote(by=0, n=1)])
    finally:
        async with asyncio.timeout(WAIT_S):
            await store.close()
    assert lock_is_free(db)
    assert count_events(db) == 2


async def test_a_transaction_sqlite_ended_by_itself_leaves_the_lock_free(
        tmp_path: Path) -> None:
    """SQLite may roll a whole transaction back on its own (an I/O error, a full disk) at
    any statement; the writer then has no transaction, and must not keep the lock."""
    db = tmp_path / "shared.db"
    store = SQLiteEventStore(db, codec())
    await store.open()
    try:
        async def rolled_back_under_us(session: SqlSession) -> None:
            await session.append("gone", 0, [Wrote(by=0, n=0)])
            assert isinstance(session.db, SumsFirst)  # the batch's counters, in front of
            assert isinstance(session.db.db, InlineDatabase)  # the writer's connection
            session.db.db.raw.execute("ROLLBACK")  # as SQLite's own rollback would
            raise OSError("disk I/O error")

        with pytest.raises(StoreUnavailable):
            await store.transact(rolled_back_under_us)
        assert lock_is_free(db)
        await store.append("kept", 0, [Wrote(by=0, n=1)])
        assert lock_is_free(db)
    finally:
        await store.close()
    assert count_events(db) == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="making a file another user's needs root")
async def test_the_lock_files_take_the_database_files_mode_and_owner(tmp_path: Path) -> None:
    """Opened first by root (init_db, the audit), the lock files must stay usable by the
    service's user, as SQLite's own -wal and -shm files do."""
    db = tmp_path / "shared.db"
    await prepared(db)
    for leftover in (lock_path(db), Path(f"{db}-writer.wait")):
        leftover.unlink()
    os.chmod(db, 0o640)
    os.chown(db, 65534, 65534)
    await prepared(db)
    for made in (lock_path(db), Path(f"{db}-writer.wait")):
        found = os.stat(made)
        assert (found.st_mode & 0o777, found.st_uid, found.st_gid) == (0o640, 65534, 65534)


async def test_a_stopped_waiter_delays_a_writer_taking_its_turn_again_only_briefly(
        tmp_path: Path) -> None:
    """A writer taking the lock again first lets a waiting process go; a waiter that is
    stopped while it says it waits (a shared flock on <db>-writer.wait) must not stop it:
    the courtesy is bounded (YIELD_S) and the write goes through."""
    db = tmp_path / "shared.db"
    store = SQLiteEventStore(db, codec())
    await store.open()
    waiting = os.open(f"{db}-writer.wait", os.O_RDWR)
    try:
        fcntl.flock(waiting, fcntl.LOCK_SH)  # "waiting", and never taking its turn
        async with asyncio.timeout(WAIT_S):
            await store.append("on", 0, [Wrote(by=0, n=0)])
        stats = store.write_lock_stats
        assert stats is not None and stats.yielded >= 1, stats
    finally:
        os.close(waiting)
        await store.close()
    assert count_events(db) == 1
