"""What only PostgreSQL can show: many writers on one database, a role that is not a superuser,
a server that goes away and comes back, and an attacker who drops the triggers."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from pgcluster import PgCluster, fresh_database

from events import EventCodec, SqlSession, StoreUnavailable
from events.postgres import PostgresEventStore
from events.verify import verify_chain
from ledger import BalanceView, InsufficientCredits, LedgerService, postgres_ledger_store
from ledger.audit import audit
from ml import MLModelManager, MLService, default_models

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PRICE = 3  # three items on the Doubler


@pytest.fixture
async def url(pg_cluster: PgCluster) -> AsyncIterator[str]:
    async with fresh_database(pg_cluster) as fresh:
        yield fresh


async def test_two_stores_on_one_database_charge_exactly_what_the_balance_covers(
        url: str) -> None:
    """Two store instances are what two app processes are: two writers, two pools."""
    first, second = postgres_ledger_store(url), postgres_ledger_store(url)
    await first.open()
    await second.open()
    try:
        ledgers = [LedgerService(first, owner="a"), LedgerService(second, owner="b")]
        ml = [MLService(ledger, MLModelManager(default_models())) for ledger in ledgers]
        user_id = (await ledgers[0].open_account("alice", "not-a-hash")).id
        requests, covered = 40, 13
        await ledgers[1].top_up(user_id, covered * PRICE + 1)

        async def withdraw(ledger: LedgerService) -> bool:
            try:
                await ledger.withdraw(user_id, PRICE, "Charge")
            except InsufficientCredits:
                return False
            return True

        async def predict(service: MLService, i: int) -> bool:
            result = await service.process_task(user_id, 1, [i, i + 1, i + 2])
            return bool(result.status == "completed")

        outcomes = await asyncio.gather(*(
            predict(ml[i % 2], i) if i % 3 else withdraw(ledgers[i % 2])
            for i in range(requests)))
        assert outcomes.count(True) == covered
        assert await ledgers[0].get_balance(user_id) == BalanceView(balance_credits=1,
                                                                    held_credits=0)
        chain = await verify_chain(first.read_rows())
        assert chain.ok and chain.events == await second.head_position()
    finally:
        await first.close()
        await second.close()
    report = await audit(url, show_progress=False)
    assert report.ok, report.render()


async def test_new_accounts_from_two_stores_at_once_get_distinct_ids(url: str) -> None:
    first, second = postgres_ledger_store(url), postgres_ledger_store(url)
    await first.open()
    await second.open()
    try:
        ledgers = [LedgerService(first), LedgerService(second)]
        opened = await asyncio.gather(*(ledgers[i % 2].open_account(f"user{i}", "h")
                                        for i in range(20)))
        assert sorted(o.id for o in opened) == list(range(1, 21))
    finally:
        await first.close()
        await second.close()


async def test_one_top_up_retried_through_two_stores_at_once_is_deposited_once(
        url: str) -> None:
    first, second = postgres_ledger_store(url), postgres_ledger_store(url)
    await first.open()
    await second.open()
    try:
        ledgers = [LedgerService(first), LedgerService(second)]
        user_id = (await ledgers[0].open_account("alice", "h")).id
        outcomes = await asyncio.gather(*(ledgers[i % 2].top_up(user_id, 70, "op-1")
                                          for i in range(50)))
        assert all(outcome == outcomes[0] for outcome in outcomes)
        assert (await ledgers[1].get_balance(user_id)).balance_credits == 70
        row = await first.read_db().fetchone(
            "SELECT COUNT(*) AS n FROM events WHERE type_name = 'CreditsDeposited'")
        assert row == {"n": 1}
    finally:
        await first.close()
        await second.close()


async def test_the_log_refuses_update_delete_and_truncate_even_from_its_owner(
        pg_cluster: PgCluster, url: str) -> None:
    name = url.split("/")[3].split("?")[0]
    admin = await asyncpg.connect(pg_cluster.url())
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_roles WHERE rolname = 'app'"):
            await admin.execute("CREATE ROLE app LOGIN NOSUPERUSER")
        await admin.execute(f'ALTER DATABASE "{name}" OWNER TO app')
    finally:
        await admin.close()
    app_url = pg_cluster.url(name, user="app")
    store = PostgresEventStore(app_url, EventCodec())
    await store.open()  # the app's role creates, and so owns, the events table
    try:
        async def work(session: SqlSession) -> None:
            await session.db.execute(
                "INSERT INTO events VALUES (1, 's', 1, 'Noted', 1, '{}', '{}', 'now', 'h')")

        await store.transact(work)
        raw = await asyncpg.connect(app_url)
        try:
            for statement in ("UPDATE events SET data = '{\"x\":1}'", "DELETE FROM events",
                              "TRUNCATE events"):
                with pytest.raises(asyncpg.RaiseError, match="append-only"):
                    await raw.execute(statement)
            assert await raw.fetchval("SELECT COUNT(*) FROM events") == 1
        finally:
            await raw.close()
    finally:
        await store.close()


async def test_a_job_that_takes_its_transaction_down_fails_alone(pg_cluster: PgCluster,
                                                                 url: str) -> None:
    store = PostgresEventStore(url, EventCodec(), statement_timeout_ms=100)
    await store.open()
    try:
        async def note(n: int) -> int:
            async def work(session: SqlSession) -> int:
                await session.db.execute(
                    "CREATE TABLE IF NOT EXISTS notes (n BIGINT PRIMARY KEY)")
                await session.db.execute("INSERT INTO notes VALUES (?)", (n,))
                return n
            return await store.transact(work)

        async def too_slow(session: SqlSession) -> None:
            await session.db.execute("SELECT pg_sleep(2)")  # cancelled by statement_timeout

        results = await asyncio.gather(note(1), store.transact(too_slow), note(2),
                                       return_exceptions=True)
        assert results[0] == 1 and results[2] == 2
        assert isinstance(results[1], StoreUnavailable)
        rows = await store.read_db().fetchall("SELECT n FROM notes ORDER BY n")
        assert rows == [{"n": 1}, {"n": 2}]
    finally:
        await store.close()


async def test_writes_fail_fast_while_the_server_is_down_and_recover_after(
        pg_durable_cluster: PgCluster) -> None:
    url = await pg_durable_cluster.create_database()
    store = postgres_ledger_store(url, connect_timeout_s=2.0)
    await store.open()
    try:
        ledger = LedgerService(store)
        user_id = (await ledger.open_account("alice", "h")).id
        await ledger.top_up(user_id, 10)
        pg_durable_cluster.stop("immediate")
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(ledger.top_up(user_id, 5), timeout=10)
        pg_durable_cluster.start_server()
        # The writer opens a fresh connection at its next batch; the pool drops dead ones.
        await ledger.top_up(user_id, 7)
        assert (await ledger.get_balance(user_id)).balance_credits == 17
        chain = await verify_chain(store.read_rows())
        assert chain.ok and chain.events == 3
    finally:
        await store.close()
    assert (await audit(url, show_progress=False)).ok


async def test_a_store_that_cannot_reach_its_server_says_so(tmp_path: Path) -> None:
    store = PostgresEventStore(f"postgresql://postgres@/x?host={tmp_path}&port=5432",
                               EventCodec(), connect_timeout_s=2.0)
    with pytest.raises(StoreUnavailable):
        await store.open()
    with pytest.raises(StoreUnavailable):
        await store.append("a", 0, [])


def run_audit(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ledger", "audit", *args], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=120, check=False, env=env)


@pytest.mark.parametrize("jobs", ["1", "2"])
async def test_the_audit_of_a_database_names_the_row_a_superuser_edited(
        pg_cluster: PgCluster, url: str, jobs: str) -> None:
    store = postgres_ledger_store(url)
    await store.open()
    try:
        ledger = LedgerService(store)
        alice = (await ledger.open_account("alice", "h")).id
        await ledger.top_up(alice, 100)
        await ledger.withdraw(alice, 30, "Charge")
        deposit = await store.read_db().fetchone(
            "SELECT position FROM events WHERE type_name = 'CreditsDeposited'")
        assert deposit is not None
    finally:
        await store.close()
    honest = run_audit("--database-url", url, "--quiet", "--jobs", jobs)
    assert honest.returncode == 0, honest.stdout + honest.stderr
    assert "AUDIT PASSED" in honest.stdout
    admin = await asyncpg.connect(url)  # the superuser: it may drop the triggers
    try:
        await admin.execute("DROP TRIGGER events_no_update ON events")
        await admin.execute("UPDATE events SET data = replace(data, '100', '900') "
                            "WHERE position = $1", deposit["position"])
    finally:
        await admin.close()
    tampered = run_audit("--quiet", "--jobs", jobs, env={"ML_CABINET_DATABASE_URL": url,
                                         "PATH": "/usr/bin:/bin"})
    assert tampered.returncode == 1, tampered.stdout + tampered.stderr
    assert f"BROKEN at position {deposit['position']}" in tampered.stdout


async def test_an_audit_while_the_service_writes_sees_one_consistent_snapshot(
        url: str) -> None:
    store = postgres_ledger_store(url)
    await store.open()
    try:
        ledger = LedgerService(store)
        ml = MLService(ledger, MLModelManager(default_models()))
        user_id = (await ledger.open_account("alice", "h")).id
        await ledger.top_up(user_id, 1_000)

        async def load() -> None:
            for i in range(60):
                await ml.process_task(user_id, 1, [i, i + 1])
                await ledger.top_up(user_id, 5)

        writing = asyncio.create_task(load())
        reports = []
        while not writing.done() or not reports:
            reports.append(await audit(url, show_progress=False))
        await writing
    finally:
        await store.close()
    assert all(report.ok for report in reports), [r.render() for r in reports if not r.ok]
    assert reports[-1].events > 0


def test_init_db_creates_the_schema_on_a_database_once_and_rebuilds_it(url: str) -> None:
    def init_db(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "init_db.py", *args], cwd=PROJECT_ROOT,
                              capture_output=True, text=True, timeout=120, check=False)

    first, again = init_db("--database-url", url), init_db("--database-url", url)
    assert first.returncode == again.returncode == 0, first.stderr + again.stderr
    assert "schema ready" in again.stdout
    rebuilt = init_db("--database-url", url, "--rebuild-projections")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "rebuilt the projections from 0 events" in rebuilt.stdout
    refused = init_db("--database-url", "mysql://nope")
    assert refused.returncode == 2 and "postgresql://" in refused.stderr
