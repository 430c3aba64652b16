"""The background work of a serving process (the verifier's walk, a checkpoint's seal) hashes
on the event loop that serves requests: it must give the loop back often, and a seal must not
hold the store's writer while it hashes. A request waits at most one slice, not the whole
batch (the p99 of BENCHMARKS.md, round 12). On both stores.

The measure is rows hashed between two turns of another task on the loop: a count, so the
test does not depend on the machine's speed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from events import Event, SqlEventStore, SqlSession
from events.merkle import leaf_hash, root_of
from events.rows import StoredRow
from ledger import checkpoints, head_tree, ledger_store_at, merkle_nodes
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


def count_calls(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> Callable[[], int]:
    calls, real = [0], getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return lambda: calls[0]


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


async def test_a_seal_hashes_in_slices_and_outside_the_write(
        ledger_at: str | Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While a seal hashes its events, requests are served and other writes commit: its
    own transaction only writes rows."""
    async with log_of(ledger_at, 3000) as store:
        counts = [count_calls(monkeypatch, module, "leaf_hash")
                  for module in (checkpoints, merkle_nodes, head_tree)]
        hashed = lambda: sum(count() for count in counts)  # noqa: E731
        writing, inside = [False], [0]
        commit = store._commit

        async def watched(batch: Any) -> None:
            writing[0], before = True, hashed()
            try:
                await commit(batch)
            finally:
                writing[0] = False
                inside[0] += hashed() - before

        monkeypatch.setattr(store, "_commit", watched)
        signer = Signer.from_file(tmp_path / "signing-key")
        sealer = Checkpointer(store, signer)
        async with longest_run(hashed) as longest:
            sealed = await sealer.seal()
        assert sealed is not None and sealed.position == 3000 and sealed.accounts == 50
        assert hashed() >= 3000  # every event's leaf, once (the stored nodes share them)
        assert inside[0] == 0
        assert 0 < longest[0] <= SLICE_ROWS
        rows = await store.read_db().fetchall("SELECT hash FROM events ORDER BY position")
        assert sealed.merkle_root == root_of(
            [leaf_hash(bytes.fromhex(r["hash"])) for r in rows]).hex()
    # The audit holds the checkpoint and the stored nodes to the log (its replay cannot
    # fold the test's events, which no projector knows: that part is not asked of it).
    report = await audit(ledger_at, show_progress=False, checkpoints=True,
                         public_keys=[signer.public_key_pem])
    assert report.checkpoints_verified == 1, report
    assert report.merkle_nodes.checked > 0 and report.merkle_nodes.problem is None, report
