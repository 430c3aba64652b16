"""The PostgreSQL store while its server shuts down under load: every failed write is a
StoreUnavailable (the web layer's 503), never a raw driver error (a 500), and the store
writes again by itself once the server is back."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from pgcluster import PgCluster, fresh_database

from events import Event, EventCodec, PostgresEventStore, StoreUnavailable

APPENDERS = 16
APPENDS_EACH = 400  # bounds each appender; the outage ends them much sooner
RECOVERY_ATTEMPTS, RECOVERY_INTERVAL_S = 300, 0.1


@dataclass(frozen=True, kw_only=True)
class Noted(Event, type_name="OutageNoted"):
    n: int


def codec() -> EventCodec:
    registry = EventCodec()
    registry.register(Noted)
    return registry


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_writes_failing_in_a_shutdown_fail_as_unavailable_and_resume_after(
        pg_durable_cluster: PgCluster, mode: str) -> None:
    async with fresh_database(pg_durable_cluster) as url:
        store = PostgresEventStore(url, codec())
        await store.open()
        try:
            errors: list[BaseException] = []
            written = 0
            under_load = asyncio.Event()  # set once 50 writes went through

            async def appender(k: int) -> None:
                nonlocal written
                for n in range(APPENDS_EACH):
                    try:
                        await store.append(f"outage-{k}", n, [Noted(n=n)])
                    except Exception as error:
                        errors.append(error)
                        return
                    written += 1
                    if written >= 50:
                        under_load.set()

            tasks = [asyncio.create_task(appender(k)) for k in range(APPENDERS)]
            async with asyncio.timeout(60):
                await under_load.wait()
            await asyncio.to_thread(pg_durable_cluster.stop, mode)
            await asyncio.gather(*tasks)
            await asyncio.to_thread(pg_durable_cluster.start_server)
            assert errors, "the outage failed no write"
            raw = [e for e in errors if not isinstance(e, StoreUnavailable)]
            assert not raw, [f"{type(e).__module__}.{type(e).__name__}: {e}" for e in raw]

            for _ in range(RECOVERY_ATTEMPTS):
                try:
                    await store.append("after-the-outage", 0, [Noted(n=0)])
                    break
                except StoreUnavailable:
                    await asyncio.sleep(RECOVERY_INTERVAL_S)  # a retry interval, bounded
            assert await store.head_position() >= written + 1
        finally:
            await store.close()
