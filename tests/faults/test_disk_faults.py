"""A full disk and a read-only database: writes answer 503 problem+json and write nothing,
reads go on, and writes work again once the fault clears."""

from __future__ import annotations

import asyncio
import errno
import resource
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import pytest
from fault_harness import (
    PASSWORD,
    PROBLEM_JSON,
    Api,
    Server,
    Servers,
    query,
    run_audit,
    wait_for_open_hold,
)

# -- the faults ----------------------------------------------------------------------------


class Fault(Protocol):
    db: Path

    def apply(self, server: Server) -> None: ...

    def clear(self, server: Server) -> None: ...


@dataclass
class FileSizeLimit:
    """RLIMIT_FSIZE lowered to 0 on the running server: the kernel refuses every write to a
    file (EFBIG), as a full disk or an exhausted quota does. Raising it again needs no
    restart. Works without root."""

    db: Path
    hard_limit: int = resource.RLIM_INFINITY

    def apply(self, server: Server) -> None:
        _, self.hard_limit = resource.prlimit(server.pid, resource.RLIMIT_FSIZE)
        resource.prlimit(server.pid, resource.RLIMIT_FSIZE, (0, self.hard_limit))

    def clear(self, server: Server) -> None:
        resource.prlimit(server.pid, resource.RLIMIT_FSIZE, (self.hard_limit, self.hard_limit))


@dataclass
class FullDisk:
    """The database lives on a small tmpfs; a filler file takes its last free page (ENOSPC).
    Deleting the filler frees the space."""

    db: Path

    @property
    def filler(self) -> Path:
        return self.db.parent / "filler"

    def apply(self, server: Server) -> None:
        with self.filler.open("wb", buffering=0) as out:
            for block in (bytes(1 << 20), bytes(4096)):
                for _ in range(TMPFS_BYTES // len(block) + 1):
                    try:
                        if out.write(block) < len(block):
                            break
                    except OSError as error:
                        if error.errno != errno.ENOSPC:
                            raise
                        break
        assert shutil.disk_usage(self.db.parent).free < 4096, "the disk is not full"

    def clear(self, server: Server) -> None:
        self.filler.unlink()


@dataclass
class ImmutableFile:
    """`chattr +i` on the database and its WAL: the kernel refuses every write (EPERM), to
    root too and through the descriptors the server already holds. The -shm file stays
    writable: SQLite maps it into memory, where a refused write is a SIGBUS, not an error."""

    db: Path

    @property
    def files(self) -> list[Path]:
        return [self.db, Path(f"{self.db}-wal")]

    def apply(self, server: Server) -> None:
        chattr("+i", *self.files)

    def clear(self, server: Server) -> None:
        chattr("-i", *self.files)


TMPFS_BYTES = 16 << 20


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=30)


def chattr(flag: str, *paths: Path) -> None:
    done = run("chattr", flag, *(str(p) for p in paths if p.exists()))
    assert done.returncode == 0, done.stderr


def require_immutable_files(folder: Path) -> None:
    """Skip unless this process may set the immutable flag here (root on ext4, xfs…)."""
    probe = folder / "probe"
    probe.touch()
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed")
    done = run("chattr", "+i", str(probe))
    if done.returncode != 0:
        pytest.skip(f"cannot make a file immutable here: {done.stderr.strip()}")
    chattr("-i", probe)
    probe.unlink()


def mount_tmpfs(folder: Path) -> None:
    done = run("mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs", str(folder))
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip()}")


@pytest.fixture
async def fault(request: pytest.FixtureRequest, tmp_path: Path,
                servers: Servers) -> AsyncIterator[Fault]:
    if request.param == "file-size-limit":
        yield FileSizeLimit(tmp_path / "ledger.db")
    elif request.param == "full-disk":
        disk = tmp_path / "disk"
        disk.mkdir()
        mount_tmpfs(disk)
        try:
            yield FullDisk(disk / "ledger.db")
        finally:
            await servers.close()  # a busy tmpfs cannot be unmounted
            run("umount", str(disk))
    else:
        require_immutable_files(tmp_path)
        immutable = ImmutableFile(tmp_path / "ledger.db")
        try:
            yield immutable
        finally:
            chattr("-i", *immutable.files)  # or tmp_path could never be removed


# -- what a user sees ------------------------------------------------------------------------

@dataclass(frozen=True)
class Snapshot:
    balance: dict[str, int]
    tasks: list[dict[str, Any]]
    head_position: int
    operations: int


async def customer(api: Api) -> str:
    """An account with a history: 100 credits topped up, one prediction of 3 credits."""
    token = await api.signup("patient")
    assert (await api.top_up(token, 100, key="before-top-up")).status == 201
    assert (await api.predict(token, [1.0, 2.0, 3.0], key="before-predict")).status == 200
    return token


async def snapshot(api: Api, token: str, db: Path) -> Snapshot:
    tasks = await api.call("GET", "/tasks", token=token)
    assert tasks.status == 200, tasks
    [(head, operations)] = query(db, "SELECT (SELECT MAX(position) FROM events), "
                                     "(SELECT COUNT(*) FROM operations)")
    return Snapshot(await api.balance(token), tasks.body["data"], head, operations)


async def assert_writes_refused(api: Api, token: str) -> None:
    refused = [await api.top_up(token, 25, key="during-top-up"),
               await api.predict(token, [4.0, 5.0], key="during-predict"),
               await api.call("POST", "/auth/register",
                              json={"username": "newcomer", "password": PASSWORD})]
    for reply in refused:
        assert (reply.status, reply.content_type, reply.code) == (
            503, PROBLEM_JSON, "service_unavailable"), reply
        assert reply.retry_after is not None, "a 503 says when to retry"


async def assert_writes_resume(api: Api, token: str, before: Snapshot) -> None:
    """The refused requests, retried with their keys, now apply, and apply once."""
    top_up = await api.top_up(token, 25, key="during-top-up")
    assert top_up.status == 201, top_up
    predict = await api.predict(token, [4.0, 5.0], key="during-predict")
    assert (predict.status, predict.body.get("cost")) == (200, 2), predict
    assert await api.top_up(token, 25, key="during-top-up") == top_up
    assert await api.predict(token, [4.0, 5.0], key="during-predict") == predict
    expected = before.balance["balance"] + 25 - 2
    assert await api.balance(token) == {"balance": expected, "held": 0, "available": expected}
    newcomer = await api.call("POST", "/auth/register",
                              json={"username": "newcomer", "password": PASSWORD})
    assert newcomer.status == 201, newcomer


async def assert_audit_passes(db: Path) -> None:
    code, report = await run_audit(db)
    assert code == 0, report


@pytest.mark.parametrize("fault", ["file-size-limit", "full-disk", "immutable-file"],
                         indirect=True)
async def test_a_write_fault_while_serving_refuses_writes_whole_and_heals_without_restart(
        fault: Fault, servers: Servers, http: aiohttp.ClientSession) -> None:
    server = await servers.start(fault.db)
    api = Api(http, server)
    token = await customer(api)
    before = await snapshot(api, token, fault.db)

    fault.apply(server)
    try:
        await assert_writes_refused(api, token)
        # Reads go on, and nothing of the refused writes shows, in part or whole.
        assert await snapshot(api, token, fault.db) == before
        assert server.process.returncode is None, server.log_tail()
    finally:
        fault.clear(server)

    await assert_writes_resume(api, token, before)
    assert await servers.stop(server) == 0, server.log_tail()
    await assert_audit_passes(fault.db)


async def crash_while_a_task_holds_credits(servers: Servers, http: aiohttp.ClientSession,
                                           db: Path, token: str) -> int:
    """SIGKILL the server while a prediction holds credits; the id of that task."""
    # The Doubler holds credits only on its two-phase path (its one-write path never holds).
    servers.env["ML_CABINET_ONE_TRANSACTION"] = "0"
    for attempt in range(10):  # a kill almost always lands inside a hold at the first try
        server = await servers.start(db)
        api = Api(http, server)
        predictions = [asyncio.create_task(api.predict(token, [1.0], key=f"crash-{attempt}-{i}"))
                       for i in range(8)]
        await wait_for_open_hold(db)
        await servers.kill(server)
        await asyncio.gather(*predictions, return_exceptions=True)
        if held := query(db, "SELECT task_id FROM holds WHERE status = 'open'"):
            return int(held[0][0])
    raise AssertionError("no kill landed while a task held credits")


# After a crash, SQLite truncates the 32 KiB -shm index and builds it again on first open; a
# full disk gives that space back first, so the limit allows exactly that much. The WAL the
# crash left is larger, and cannot grow: every write fails.
SHM_BYTES = 32 * 1024


def no_file_growth() -> None:
    """preexec_fn: no file of the server may grow past SHM_BYTES, as on a full disk."""
    _, hard_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (SHM_BYTES, hard_limit))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG from write(), not death


def wal_bytes(db: Path) -> int:
    return Path(f"{db}-wal").stat().st_size


@pytest.mark.parametrize("fault", ["file-size-limit", "immutable-file"])
async def test_after_a_crash_a_full_or_read_only_disk_still_serves_reads_until_healed(
        tmp_path: Path, servers: Servers, http: aiohttp.ClientSession, fault: str) -> None:
    """The server dies with a task holding credits, and the disk is full or read-only when it
    starts again: it comes up for reads, refuses writes whole, and a restart once the fault
    is gone releases the hold and takes writes again."""
    if fault == "immutable-file":
        require_immutable_files(tmp_path)
    db = tmp_path / "ledger.db"
    server = await servers.start(db)
    token = await customer(Api(http, server))
    await servers.stop(server)
    task_id = await crash_while_a_task_holds_credits(servers, http, db, token)

    read_only = ImmutableFile(db)
    try:
        if fault == "immutable-file":
            chattr("+i", *read_only.files)
            server = await servers.start(db)
        else:
            assert wal_bytes(db) > SHM_BYTES, "the WAL could still grow under the limit"
            server = await servers.start(db, preexec_fn=no_file_growth)
        api = Api(http, server)
        before = await snapshot(api, token, db)
        assert before.balance["held"] >= 1, "the interrupted task's hold is gone"
        await assert_writes_refused(api, token)
        assert await snapshot(api, token, db) == before
        await servers.stop(server)
    finally:
        chattr("-i", *read_only.files)

    server = await servers.start(db)  # the fault is gone: startup releases the hold
    api = Api(http, server)
    task = await api.call("GET", f"/tasks/{task_id}", token=token)
    assert (task.status, task.body["status"]) == (200, "failed"), task
    assert query(db, "SELECT COUNT(*) FROM holds WHERE status = 'open'")[0][0] == 0
    await assert_writes_resume(api, token, before)
    assert await servers.stop(server) == 0, server.log_tail()
    await assert_audit_passes(db)
