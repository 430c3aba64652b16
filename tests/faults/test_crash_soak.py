"""The crash soak, CI-sized: SIGKILLs under keyed load on two app processes sharing one ledger,
on each store; nothing acknowledged is lost, nothing is applied twice, the audit passes.
`bench/crash_soak.py` runs the same soak with 100+ kills for SECURITY.md."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from fault_harness import Servers
from pgcluster import PgCluster, fresh_database
from soak import SoakFigures, run_soak

KILLS = 10
SOAK_SECONDS = 240.0
# pg-web's owner lease and sweep, short: a killed process's holds go within a few seconds.
LEASE_ENV = {"ML_CABINET_LEASE_S": "2", "ML_CABINET_SWEEP_S": "0.5"}


def assert_clean(figures: SoakFigures, seed: int) -> None:
    assert figures.clean, f"seed {seed}: {figures}"
    assert figures.kills == KILLS, f"seed {seed}: {figures}"
    assert figures.kills_holding_credits > 0, f"seed {seed}: {figures}"


@pytest.mark.slow
async def test_sigkills_on_sqlite_lose_nothing_acknowledged_and_apply_no_key_twice(
        tmp_path: Path, servers: Servers) -> None:
    seed = random.randrange(2**32)
    figures = await run_soak(servers, tmp_path / "ledger.db", processes=2, kills=KILLS,
                             seconds=SOAK_SECONDS, seed=seed)
    assert_clean(figures, seed)


@pytest.mark.slow
async def test_sigkills_on_postgresql_lose_nothing_acknowledged_and_apply_no_key_twice(
        tmp_path: Path, pg_durable_cluster: PgCluster) -> None:
    seed = random.randrange(2**32)
    servers = Servers(tmp_path, env=LEASE_ENV)
    try:
        async with fresh_database(pg_durable_cluster) as url:
            figures = await run_soak(servers, url, processes=2, kills=KILLS,
                                     seconds=SOAK_SECONDS, seed=seed)
    finally:
        await servers.close()
    assert_clean(figures, seed)
