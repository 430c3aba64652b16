"""Many `python main.py` processes on one PostgreSQL database: they never spend a credit twice,
one key charges once whichever process it reaches, a killed process's holds are released by
the others while they keep serving, and a restart of PostgreSQL loses nothing acknowledged."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from pathlib import Path

import aiohttp
import pytest
from fault_harness import (
    PASSWORD,
    PROBLEM_JSON,
    Api,
    Reply,
    Server,
    Servers,
    pg_query,
    run_audit,
)
from pgcluster import PgCluster, fresh_database
from soak import USERS, Soak, check_log, is_pending, no_open_hold, wait_for

PRICE_PER_ITEM = 1  # model 1, "Doubler"
ITEMS = [1.0, 2.0, 3.0]
COST = PRICE_PER_ITEM * len(ITEMS)
# Short owner leases and sweeps: a dead process's holds go within a few seconds, and so do a
# live process's own holds whose result could not be written (ML_CABINET_STALE_HOLD_S).
# The Doubler takes its two-phase path here, so that kills and outages can catch holds.
LEASE_ENV = {"ML_CABINET_LEASE_S": "2", "ML_CABINET_SWEEP_S": "0.5",
             "ML_CABINET_STALE_HOLD_S": "3", "ML_CABINET_ONE_TRANSACTION": "0"}
RELEASE_POLLS = 6000  # × 5 ms: 30 s for a lease to expire and a sweep to run
ABANDONED_POLLS = 6000  # × 5 ms: 30 s, well past ML_CABINET_STALE_HOLD_S + a sweep
OUTAGE_WRITES = 20  # writes sent while PostgreSQL is down
QUICK_S = 6.0  # a 503 during an outage comes within the connect timeout (5 s), not later
RECOVERY_ATTEMPTS, RECOVERY_INTERVAL_S = 300, 0.1


async def open_holds(url: str) -> set[int]:
    return {r["task_id"] for r in await pg_query(
        url, "SELECT task_id FROM holds WHERE status = 'open'")}


@pytest.mark.slow
@pytest.mark.parametrize(("covered", "attempts"), [(1, 12), (5, 18), (9, 30)])
async def test_charges_split_across_three_processes_spend_each_credit_once(
        pg_url: str, servers: Servers, http: aiohttp.ClientSession,
        covered: int, attempts: int) -> None:
    running = [await servers.start(pg_url) for _ in range(3)]
    apis = [Api(http, server) for server in running]
    token = await apis[0].signup("shared")
    assert (await apis[1].top_up(token, covered * COST, key="funds")).status == 201

    replies = await asyncio.gather(
        *(apis[i % 3].predict(token, ITEMS, key=f"charge-{i}") for i in range(attempts)))

    statuses = sorted(r.status for r in replies)
    assert statuses == [200] * covered + [402] * (attempts - covered), statuses
    for reply in replies:
        assert reply.body["balance"]["available"] >= 0, reply
        if reply.status == 402:
            assert reply.body["code"] == "insufficient_balance", reply
    for api in apis:  # every process reads the same truth
        assert await api.balance(token) == {"balance": 0, "held": 0, "available": 0}
    history = await apis[2].call("GET", "/transactions?limit=100", token=token)
    assert [t["balance_after"] for t in reversed(history.body["data"])] == [
        covered * COST - COST * n for n in range(covered + 1)]
    for server in running:
        assert await servers.stop(server) == 0, server.log_tail()
    assert await open_holds(pg_url) == set()
    code, report = await run_audit(pg_url)
    assert code == 0, report


@pytest.mark.slow
async def test_one_key_sent_fifty_times_across_processes_charges_once(
        pg_url: str, servers: Servers, http: aiohttp.ClientSession) -> None:
    running = [await servers.start(pg_url) for _ in range(3)]
    apis = [Api(http, server) for server in running]
    token = await apis[0].signup("eager")
    assert (await apis[0].top_up(token, 100, key="funds")).status == 201

    replies = await asyncio.gather(
        *(apis[i % 3].predict(token, ITEMS, key="the-one-key") for i in range(50)))

    done = [r for r in replies if r.status == 200]
    waiting = [r for r in replies if r.status == 409]
    assert len(done) + len(waiting) == 50, [r for r in replies if r.status not in (200, 409)]
    assert done, "no request got the outcome"
    assert all(r == done[0] for r in done), "a process replied something else than the stored"
    assert all(r.code == "request_in_progress" and r.content_type == PROBLEM_JSON
               for r in waiting), waiting
    for api in apis:  # asked again afterwards, every process gives the one stored reply
        assert await api.predict(token, ITEMS, key="the-one-key") == done[0]
        assert await api.balance(token) == {"balance": 100 - COST, "held": 0,
                                             "available": 100 - COST}
    submitted = await pg_query(
        pg_url, "SELECT COUNT(*) AS n FROM events WHERE type_name IN "
                "('TaskSubmitted', 'TaskRejected', 'TaskCompletedAtOnce') "
                "AND metadata LIKE '%the-one-key%'")
    assert submitted[0]["n"] == 1
    code, report = await run_audit(pg_url)
    assert code == 0, report


async def settle_everything(soak: Soak, api: Api) -> dict[str, Reply]:
    """Send each key until it states its outcome (409 while its first request is open)."""
    final: dict[str, Reply] = {}
    for attempt in soak.attempts.values():
        for _ in range(RECOVERY_ATTEMPTS):
            reply = await attempt.send(api, soak.tokens[attempt.user])
            if not is_pending(reply) and not is_unavailable(reply):
                break
            await asyncio.sleep(RECOVERY_INTERVAL_S)  # a retry interval, bounded
        final[attempt.key] = reply
        soak.record(attempt, reply)
    return final


def is_unavailable(reply: Reply) -> bool:
    return reply.status == 503 and reply.code == "service_unavailable"


async def keyed_load(soak: Soak, api: Api, user: int, stop: asyncio.Event,
                     errors: list[str], tolerate_errors: bool) -> None:
    """One client: retries what it does not know, then new work, until `stop`. With
    `tolerate_errors`, a broken connection ends it and a 503 service_unavailable leaves the
    key unknown (retried later); without, both are errors."""
    while not stop.is_set():
        queue = [a for a in soak.attempts.values() if a.user == user and a.reply is None]
        attempt = queue[0] if queue and random.random() < 0.5 else soak.new_attempt(user)
        try:
            reply = await attempt.send(api, soak.tokens[user])
        except (aiohttp.ClientError, TimeoutError) as error:
            if not tolerate_errors:
                errors.append(f"{attempt.key}: {error!r}")
            return
        if is_unavailable(reply):
            if not tolerate_errors:
                errors.append(f"{attempt.key}: {reply}")
            continue
        soak.record(attempt, reply)


@pytest.mark.slow
async def test_a_killed_process_holds_are_released_by_the_others_while_they_serve(
        tmp_path: Path, pg_url: str) -> None:
    servers = Servers(tmp_path, env=LEASE_ENV)
    try:
        survivors = [await servers.start(pg_url) for _ in range(2)]
        soak = Soak(servers, pg_url, random.Random())
        async with aiohttp.ClientSession() as session:
            soak.tokens = [await Api(session, survivors[0]).signup(f"user{n}")
                           for n in range(USERS)]
            interrupted: set[int] = set()
            errors: list[str] = []
            for _ in range(30):  # until a kill catches the victim holding credits
                others = await lease_owners(pg_url)
                victim = await servers.start(pg_url)
                (victim.owner,) = await lease_owners(pg_url) - others
                interrupted |= await kill_under_load(soak, servers, session, victim,
                                                     survivors, errors)
                if interrupted:
                    break
            assert interrupted, "no kill caught the victim holding credits"
            assert not errors, errors[:5]
            final = await settle_everything(soak, Api(session, survivors[1]))
        for server in survivors:
            assert await servers.stop(server) == 0, server.log_tail()
    finally:
        await servers.close()
    assert not soak.problems, soak.problems[:5]
    failed = {r["id"]: r["error"] for r in await pg_query(
        pg_url, "SELECT id, error FROM tasks WHERE status = 'failed'")}
    assert interrupted <= set(failed), failed
    assert all(failed[t].startswith("interrupted") for t in interrupted), failed
    assert await pg_query(pg_url, "SELECT id FROM tasks WHERE status = 'pending'") == []
    assert await check_log(soak, final) == (0, 0, 0)  # lost, applied twice, changed outcome
    code, report = await run_audit(pg_url)
    assert code == 0, report


async def kill_under_load(soak: Soak, servers: Servers, session: aiohttp.ClientSession,
                          victim: Server, survivors: list[Server], errors: list[str]
                          ) -> set[int]:
    """Load on all three; SIGKILL `victim` while it holds credits (stopped first, so that
    the hold seen is the hold killed); the survivors' load goes on until the holds left open
    are released. Returns the victim's interrupted tasks."""
    stop, victim_stop = asyncio.Event(), asyncio.Event()
    clients = [asyncio.create_task(keyed_load(soak, Api(session, victim), u, victim_stop,
                                              errors, tolerate_errors=True))
               for u in range(USERS) for _ in range(2)]
    clients += [asyncio.create_task(keyed_load(soak, Api(session, s), u, stop, errors,
                                               tolerate_errors=False))
                for s in survivors for u in range(USERS)]
    try:
        caught = await wait_for(lambda: frozen_holding(victim, str(soak.where)), 2000)
        await servers.kill(victim)  # stopped while it held credits, if caught
        victim_stop.set()
        left = await open_holds(str(soak.where)) if caught else set()
        answered_before = sum(a.reply is not None for a in soak.attempts.values())
        assert await wait_for(lambda: no_open_hold(soak.where), RELEASE_POLLS), \
            "the holds of the killed process were never released"
        # The survivors answered all along: their clients record no error (checked by the
        # caller) and more outcomes arrived after the kill.
        assert sum(a.reply is not None for a in soak.attempts.values()) > answered_before
    finally:
        stop.set()
        victim_stop.set()
        await asyncio.gather(*clients)
    failed = {r["id"] for r in await pg_query(
        str(soak.where), "SELECT id FROM tasks WHERE status = 'failed'")}
    return left & failed


async def lease_owners(url: str) -> set[str]:
    """The owners (one a process) that have taken a lease on the database so far."""
    return {r["owner"] for r in await pg_query(url, "SELECT owner FROM owner_leases")}


async def frozen_holding(victim: Server, url: str) -> bool:
    """Stop `victim` (SIGSTOP) and look: True, left stopped, when it holds credits; else it
    goes on (SIGCONT). A hold seen while it is stopped is still open when it is killed."""
    victim.process.send_signal(signal.SIGSTOP)
    held = await pg_query(url, "SELECT task_id FROM holds WHERE status = 'open' AND "
                          "owner = $1", victim.owner)
    if held:
        return True
    victim.process.send_signal(signal.SIGCONT)
    return False


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_a_postgresql_restart_under_load_loses_nothing_and_the_processes_recover(
        tmp_path: Path, pg_durable_cluster: PgCluster, mode: str) -> None:
    servers = Servers(tmp_path, env=LEASE_ENV)
    try:
        async with fresh_database(pg_durable_cluster) as url:
            running = [await servers.start(url) for _ in range(2)]
            soak = Soak(servers, url, random.Random())
            async with aiohttp.ClientSession() as session:
                apis = [Api(session, s) for s in running]
                soak.tokens = [await apis[n % 2].signup(f"restart{n}") for n in range(USERS)]
                await restart_under_load(soak, apis, pg_durable_cluster, mode)
                assert not soak.problems, soak.problems[:5]  # e.g. a 500 during the outage
                # A prediction that held credits and could not record its result while the
                # server was down keeps its hold until its own process gives it up as
                # abandoned (ML_CABINET_STALE_HOLD_S); then its key states its outcome.
                assert await wait_for(lambda: no_open_hold(url), ABANDONED_POLLS), \
                    await pg_query(url, "SELECT task_id, owner FROM holds WHERE status = 'open'")
                final = await settle_everything(soak, apis[1])
            for server in running:
                assert await servers.stop(server) == 0, server.log_tail()
            assert not soak.problems, soak.problems[:5]
            assert await check_log(soak, final) == (0, 0, 0)
            code, report = await run_audit(url)
            assert code == 0, report
    finally:
        await servers.close()


async def restart_under_load(soak: Soak, apis: list[Api], cluster: PgCluster,
                             mode: str) -> None:
    """Keyed load on both processes; PostgreSQL stops (`mode`); writes meanwhile answer 503
    problem+json at once; it starts again; both processes write again by themselves."""
    stop = asyncio.Event()
    errors: list[str] = []
    clients = [asyncio.create_task(keyed_load(soak, api, u, stop, errors, False))
               for api in apis for u in range(USERS)]
    try:
        await wait_for(lambda: answered_at_least(soak, 20), 2000)
        stop.set()
        await asyncio.gather(*clients)
        assert not errors, errors[:5]
        stop.clear()
        clients = [asyncio.create_task(keyed_load(soak, api, u, stop, [], True))
                   for api in apis for u in range(USERS)]
        await asyncio.to_thread(cluster.stop, mode)  # under load: some writes are mid-way
        stop.set()
        await asyncio.gather(*clients)

        for n in range(OUTAGE_WRITES):  # down: each write is refused at once, cleanly
            attempt = soak.new_attempt(n % USERS)
            started = time.monotonic()
            reply = await attempt.send(apis[n % 2], soak.tokens[attempt.user])
            assert time.monotonic() - started < QUICK_S, reply
            assert (reply.status, reply.code, reply.content_type) == (
                503, "service_unavailable", PROBLEM_JSON), reply

        await asyncio.to_thread(cluster.start_server)
        for api in apis:  # back: each process writes again without being restarted
            attempt = soak.new_attempt(0)
            for _ in range(RECOVERY_ATTEMPTS):
                reply = await attempt.send(api, soak.tokens[0])
                if reply.status != 503 or attempt.is_outcome(reply):
                    break
                await asyncio.sleep(RECOVERY_INTERVAL_S)  # a retry interval, bounded
            assert attempt.is_outcome(reply), reply
            soak.record(attempt, reply)
    finally:
        stop.set()
        await asyncio.gather(*clients)


async def answered_at_least(soak: Soak, count: int) -> bool:
    return sum(a.reply is not None for a in soak.attempts.values()) >= count



@pytest.mark.slow
async def test_a_logout_is_refused_at_once_by_every_process_even_one_that_was_stopped(
        pg_url: str, servers: Servers, http: aiohttp.ClientSession) -> None:
    """Each process checks tokens from its own cache; a logout through one process is
    refused by the others from their next request, and a process frozen meanwhile (SIGSTOP:
    it hears nothing, acknowledges nothing) neither holds the logout up for longer than its
    lease nor serves the old token when it wakes."""
    a, b, c = [await servers.start(pg_url) for _ in range(3)]
    api_a, api_b, api_c = (Api(http, server) for server in (a, b, c))
    password = {"username": "ada", "password": PASSWORD}
    for frozen in (False, True):
        token = (await api_a.signup("ada") if not frozen else
                 str((await api_a.call("POST", "/auth/login", json=password)).body[
                     "access_token"]))
        for api in (api_b, api_c):  # each caches it
            assert (await api.call("GET", "/balance", token=token)).status == 200
        if frozen:
            c.process.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            logout = await api_a.call("POST", "/auth/logout", token=token)
            assert logout.status in (200, 204), logout
            # A bound, not a timing: the frozen process is waited for one lease (3 s), not
            # for the client's 60 s or forever.
            assert time.monotonic() - started < 15, "the logout waited past the lease"
        finally:
            if frozen:
                c.process.send_signal(signal.SIGCONT)
        for api in (api_b, api_c):
            refused = await api.call("GET", "/balance", token=token)
            assert refused.status == 401, (frozen, refused)
    for server in (a, b, c):
        assert await servers.stop(server) == 0, server.log_tail()
    code, report = await run_audit(pg_url)
    assert code == 0, report
