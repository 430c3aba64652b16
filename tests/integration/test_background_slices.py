"""The background work of a serving process (the verifier's walk, a checkpoint's seal) hashes
on the event loop that serves requests: it must give the loop back often, and a seal must not
hold the store's writer while it hashes. A request waits at most one slice, not the whole
batch (the p99 of BENCHMARKS.md, round 12). On both stores.

The measure is rows hashed between two turns of another task on the loop: a count, so the
test does not depend on the machine's speed. A request needs several turns, spread over its
I/O; paced, the slices are at least a pause apart on the loop's clock (a lower bound that
asyncio keeps however slow the machine), so such a request meets one slice, not several."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # ships no type hints
import pytest

from events import Event, SqlEventStore, SqlSession, merkle
from events.merkle import leaf_hash, root_of
from events.rows import StoredRow
from ledger import checkpoints, head_tree, ledger_store_at, merkle_nodes
from ledger import verifier as verifier_module
from ledger.audit import audit
from ledger.checkpoints import Checkpointer, Signer
from ledger.verifier import LogVerifier

pytestmark = pytest.mark.parametrize("ledger_at", ["sqlite", "postgres"], indirect=True)

SLICE_ROWS = 256  # the most rows hashed without a turn for the loop's other tasks


@dataclass(frozen=True, kw_only=True)
class Noted(Event, type_name="TestNoted"):
    """An event no projector reads: the log grows fast, one transaction a thousand."""

    n: int


@asynccontextmanager
async def log_of(where: str | Path, events: int) -> AsyncIterator[SqlEventStore]:
    store = ledger_store_at(where)
    store.codec.register(Noted)
    await store.open()
    try:
        for start in range(0, events, 1000):
            async def work(session: SqlSession, start: int = start) -> None:
                for n in range(start, min(events, start + 1000)):
                    await session.append(f"account-{n % 50}", n // 50, [Noted(n=n)])
            await store.transact(work)
        yield store
    finally:
        await store.close()


@asynccontextmanager
async def longest_run(counted: Callable[[], int]) -> AsyncIterator[list[int]]:
    """The most `counted()` grew between two turns of a task that takes every turn it can
    get on the loop (a request would wait as long)."""
    found, stop = [0], asyncio.Event()

    async def spin() -> None:
        last = counted()
        while not stop.is_set():
            await asyncio.sleep(0)
            now = counted()
            found[0] = max(found[0], now - last)
            last = now

    spinner = asyncio.create_task(spin())
    try:
        yield found
    finally:
        stop.set()
        await spinner


def largest_burst(times: list[float], pause_s: float) -> int:
    """The most calls made with no pause of `pause_s` between any two of them (times on the
    loop's clock, which a paced sleep moves on by at least its length)."""
    largest = burst = 0
    for before, after in zip([float("-inf"), *times], times, strict=False):
        burst = burst + 1 if after - before < pause_s else 1
        largest = max(largest, burst)
    return largest


def count_calls(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str,
                times: list[float] | None = None,
                weight: Callable[..., int] = lambda *args: 1) -> Callable[[], int]:
    """Count the calls of `owner.name`, each as `weight(*args)` (and note each one's time on
    the loop's clock)."""
    calls, real = [0], getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += weight(*args)
        if times is not None:
            times.append(asyncio.get_running_loop().time())
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return lambda: calls[0]


def count_seal_hashes(monkeypatch: pytest.MonkeyPatch, times: list[float] | None = None
                      ) -> tuple[Callable[[], int], Callable[[], int]]:
    """(leaves, all hashes) a seal makes: event and account leaves, the nodes above them,
    and each whole block's (a perfect subtree of n leaves is n - 1 hashes)."""
    leaves = [count_calls(monkeypatch, module, "leaf_hash", times)
              for module in (checkpoints, merkle_nodes, head_tree)]
    nodes = [count_calls(monkeypatch, merkle, "node_hash", times),
             count_calls(monkeypatch, merkle_nodes, "perfect_root", times,
                         weight=lambda block: len(block) - 1)]

    def leaves_made() -> int:
        return sum(count() for count in leaves)

    def hashes_made() -> int:
        return leaves_made() + sum(count() for count in nodes)

    return leaves_made, hashes_made


async def test_the_verifier_walks_in_slices(ledger_at: str | Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    async with log_of(ledger_at, 3000) as store:
        hashed = count_calls(monkeypatch, StoredRow, "expected_hash")
        verifier = LogVerifier(store, rate_per_s=5000)
        async with longest_run(hashed) as longest:
            # The tail (2,000 of 3,000 a tick), then the pass up to it: 4,000 rows.
            assert await verifier.step() == 4000
        assert verifier.broken is None
        assert verifier.state.mark_position == 2000
        assert verifier.state.last_full_pass_at is not None
        assert hashed() == 4000
        assert 0 < longest[0] <= SLICE_ROWS


async def test_a_break_in_the_tail_stops_the_mark_at_the_last_slice_that_chains(
        ledger_at: str | Path) -> None:
    async with log_of(ledger_at, 1000) as store:
        await edit_event(ledger_at, 450)
        verifier = LogVerifier(store, rate_per_s=5000)
        await verifier.step()
        assert verifier.broken is not None and verifier.broken.position == 450
        assert verifier.state.mark_position == 400  # slices of 200: 1-200, 201-400 chain


async def test_the_verifier_pauses_only_between_slices_and_within_the_spread(
        ledger_at: str | Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pauses: list[float] = []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)
        await real_sleep(0)

    real_sleep = asyncio.sleep
    monkeypatch.setattr(verifier_module, "asyncio", SimpleNamespace(sleep=sleep))
    async with log_of(ledger_at, 3000) as store:
        assert await LogVerifier(store, rate_per_s=5000).step(spread_s=1.0) == 4000
        assert len(pauses) == 19  # 20 slices
        assert sum(pauses) <= 1.0
        pauses.clear()
        slow = LogVerifier(store, rate_per_s=50)  # a slice a tick: nothing to spread
        assert await slow.step(spread_s=1.0) == 50
        assert pauses == []
        assert await slow.step(rows=0, spread_s=1.0) == 0


async def test_a_step_taken_while_another_pauses_is_not_undone_by_it(
        ledger_at: str | Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The background step pauses between its slices; a step called meanwhile (an operator's,
    a test's) must not have its result set back when the paused one ends."""
    paused = asyncio.Event()

    async def sleep(seconds: float) -> None:
        paused.set()
        await real_sleep(seconds)  # the pace itself: the step called meanwhile runs in it

    real_sleep = asyncio.sleep
    monkeypatch.setattr(verifier_module, "asyncio", SimpleNamespace(sleep=sleep))
    async with log_of(ledger_at, 0) as store:
        verifier = LogVerifier(store, rate_per_s=5000)
        verifier.min_pass_interval_s = 0  # a pass at every step
        # Two slices of budget (the tail, then the pass): one pause of 0.3 s between them.
        background = asyncio.create_task(verifier.step(rows=400, spread_s=0.6))
        await paused.wait()  # it read an empty log and waits to start its pass

        async def append(session: SqlSession) -> None:
            for n in range(300):
                await session.append(f"account-{n % 50}", n // 50, [Noted(n=n)])
        await store.transact(append)
        assert await verifier.step(rows=1000) == 600  # the tail and a whole pass
        await background
        assert verifier.state.mark_position == 300
        assert verifier.state.last_full_pass_at is not None
        assert (await verifier_module.load_state(store.read_db())).mark_position == 300


async def edit_event(ledger_at: str | Path, position: int) -> None:
    """As someone with database access does it: the guard trigger dropped, a row edited."""
    edit = f"UPDATE events SET data = '{{\"n\": -1}}' WHERE position = {position}"
    if isinstance(ledger_at, Path):
        with closing(sqlite3.connect(ledger_at)) as db:
            db.execute("DROP TRIGGER events_no_update")
            db.execute(edit)
            db.commit()
        return
    admin = await asyncpg.connect(ledger_at)
    try:
        await admin.execute("DROP TRIGGER events_no_update ON events")
        assert await admin.execute(edit) == "UPDATE 1"
    finally:
        await admin.close()


async def test_the_verifier_spreads_its_slices_over_the_tick(
        ledger_at: str | Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with log_of(ledger_at, 3000) as store:
        times: list[float] = []
        count_calls(monkeypatch, StoredRow, "expected_hash", times)
        verifier = LogVerifier(store, rate_per_s=5000)
        # 5,000 rows a tick in slices of 200: spread over 0.25 s, 10 ms apart.
        assert await verifier.step(spread_s=0.25) == 4000
        assert len(times) == 4000
        assert 0 < largest_burst(times, pause_s=0.01) <= SLICE_ROWS


async def test_a_seal_hashes_in_slices_and_outside_the_write(
        ledger_at: str | Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While a seal hashes its events, requests are served and other writes commit: its
    own transaction only writes rows."""
    async with log_of(ledger_at, 3000) as store:
        leaves, hashed = count_seal_hashes(monkeypatch)
        inside, commit = [0], store._commit

        async def watched(batch: Any) -> None:
            before = hashed()
            try:
                await commit(batch)
            finally:
                inside[0] += hashed() - before

        monkeypatch.setattr(store, "_commit", watched)
        signer = Signer.from_file(tmp_path / "signing-key")
        sealer = Checkpointer(store, signer)
        async with longest_run(hashed) as longest:
            sealed = await sealer.seal()
        assert sealed is not None and sealed.position == 3000 and sealed.accounts == 50
        assert leaves() == 3000 + 50  # each event's leaf once (the nodes share them), accounts
        assert inside[0] == 0
        # A slice: 256 leaves and the frontier's nodes over them (one a leaf, and a few
        # where its subtrees join), or one block's 255 nodes.
        assert 0 < longest[0] <= 2 * SLICE_ROWS + 32
        rows = await store.read_db().fetchall("SELECT hash FROM events ORDER BY position")
        assert sealed.merkle_root == root_of(
            [leaf_hash(bytes.fromhex(r["hash"])) for r in rows]).hex()
    # The audit holds the checkpoint and the stored nodes to the log (its replay cannot
    # fold the test's events, which no projector knows: that part is not asked of it).
    report = await audit(ledger_at, show_progress=False, checkpoints=True,
                         public_keys=[signer.public_key_pem])
    assert report.checkpoints_verified == 1, report
    assert report.merkle_nodes.checked > 0 and report.merkle_nodes.problem is None, report


async def test_a_paced_seal_spreads_its_slices(
        ledger_at: str | Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with log_of(ledger_at, 3000) as store:
        times: list[float] = []
        leaves, _ = count_seal_hashes(monkeypatch, times)
        sealer = Checkpointer(store, Signer.from_file(tmp_path / "signing-key"),
                              pause_s=0.01)
        sealed = await sealer.seal()
        assert sealed is not None and sealed.position == 3000
        assert leaves() == 3050
        # Calls, not hashes: a slice's leaves and the frontier's nodes over them.
        assert 0 < largest_burst(times, pause_s=0.01) <= 2 * SLICE_ROWS + 32


async def test_a_seal_whose_rows_stop_chaining_while_read_is_made_again(
        ledger_at: str | Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A seal reads its events a slice a query: should the log be restored or rewritten
    between two of them, the rows read no longer chain onto each other, and the seal is
    made again, from one log."""
    async with log_of(ledger_at, 1000) as store:
        sealer = Checkpointer(store, Signer.from_file(tmp_path / "signing-key"))
        background, reads = store.background_db(), [0]

        class Restored:  # the second slice's rows come from another log
            edit = "hash"  # its first row's hash differs, or (None) the row is gone

            async def fetchone(self, query: str, params: Any = ()) -> Any:
                return await background.fetchone(query, params)

            async def fetchall(self, query: str, params: Any = ()) -> list[dict[str, Any]]:
                rows = await background.fetchall(query, params)
                if "position >= ?" in query:
                    reads[0] += 1
                    if reads[0] == 2 and self.edit is None:
                        del rows[0]
                    elif reads[0] == 2:
                        rows[0] = {**rows[0], "hash": "ab" * 32}
                return rows

        for edit in ("hash", None):  # a row edited, a row deleted (review finding)
            Restored.edit, reads[0] = edit, 0
            with pytest.raises(checkpoints.LogChanged):
                await sealer._prepare(Restored())  # type: ignore[arg-type]
        monkeypatch.setattr(store, "background_db", lambda: Restored())
        reads[0] = 0
        sealed = await sealer.seal()  # the first try meets the change; the second is whole
        assert sealed is not None and sealed.position == 1000
        assert reads[0] > 4
        rows = await store.read_db().fetchall("SELECT hash FROM events ORDER BY position")
        assert sealed.merkle_root == root_of(
            [leaf_hash(bytes.fromhex(r["hash"])) for r in rows]).hex()


async def test_a_large_accounts_tree_is_made_while_the_loop_serves(
        ledger_at: str | Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tree of many accounts, made whole or moved past a new account, hashes every block
    after the new leaf at once (131 ms at 100,000 accounts): it is made in a worker thread,
    so the loop runs meanwhile. The rebuild below waits, in its thread, for the loop to
    run a probe: on the loop's own thread it could never see it run (it fails, at the
    bound). A tree that only moves a leaf stays on the loop (a thread's hop costs more)."""
    accounts = checkpoints.OFF_LOOP_ACCOUNTS + 4
    store = ledger_store_at(ledger_at)
    store.codec.register(Noted)
    await store.open()
    try:
        async def opened(session: SqlSession, names: list[str]) -> None:
            for name in names:
                await session.append(name, 0, [Noted(n=0)])

        names = [f"account-{k}" for k in range(1, accounts + 1)]
        for start in range(0, accounts, 1000):
            await store.transact(lambda s, chunk=names[start:start + 1000]: opened(s, chunk))
        loop, served, rebuilt = asyncio.get_running_loop(), [0], []
        real = merkle.LeafLevels.rebuild_from

        async def probe() -> None:
            served[0] += 1

        def rebuild_from(levels: merkle.LeafLevels, first: int) -> None:
            if len(levels) >= checkpoints.OFF_LOOP_ACCOUNTS:
                on_loop = threading.get_ident() == loop_thread
                rebuilt.append(on_loop)
                if not on_loop:  # the loop must be free to run this, meanwhile
                    asyncio.run_coroutine_threadsafe(probe(), loop).result(timeout=60)
            real(levels, first)

        loop_thread = threading.get_ident()
        monkeypatch.setattr(merkle.LeafLevels, "rebuild_from", rebuild_from)
        signer = Signer.from_file(tmp_path / "signing-key")
        sealer = Checkpointer(store, signer)
        first = await sealer.seal()  # the whole tree, made from every head
        await store.transact(lambda s: opened(s, ["account-0"]))  # sorts first: all shift
        second = await sealer.seal()  # the kept tree moved past the new account
        assert first is not None and first.accounts == accounts
        assert second is not None and second.accounts == accounts + 1
        await store.transact(lambda s: s.append("account-7", 1, [Noted(n=1)]))
        third = await sealer.seal()  # one leaf moved: a hash a level, on the loop
        assert third is not None and third.accounts == accounts + 1
        assert rebuilt == [False, False, True] and served == [2]
        statement_tree = await sealer.tree_for(store.read_db(), third)
        assert statement_tree is not None and statement_tree.root().hex() == (
            third.accounts_root)
        # Another process's first statement: the tree made from every stored head.
        fresh = await Checkpointer(store, signer).tree_for(store.read_db(), third)
        assert fresh is not None and fresh.root().hex() == third.accounts_root
        assert rebuilt[3:] == [False] and served == [3]
    finally:
        await store.close()
    report = await audit(ledger_at, show_progress=False, checkpoints=True,
                         public_keys=[signer.public_key_pem])
    assert report.checkpoints_verified == 3, report
