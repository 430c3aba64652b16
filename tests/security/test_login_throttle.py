"""Login throttling per (account, client), per client and per account, on a clock the test
moves: a guesser is slowed down hard, and the real user is never kept out for long."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientResponse
from pgcluster import fresh_database
from security_http import (
    PASSWORD,
    Client,
    MakeClient,
    app_config,
    csrf_from,
    expect_problem,
    register,
)

from ledger import postgres_ledger_store
from ledger.shared import LoginAttempts
from web.app import create_app
from web.keys import THROTTLE
from web.throttle import ACCOUNT, CLIENT, PAIR, LoginThrottle, Throttle
from web.throttle_db import SharedLoginThrottle

ATTACKER, USER = "203.0.113.66", "198.51.100.7"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", "postgres"])
async def throttle(request: pytest.FixtureRequest, clock: FakeClock) -> AsyncIterator[Throttle]:
    """The same rules whether one process counts in memory or all count in PostgreSQL."""
    if request.param == "memory":
        yield LoginThrottle(clock=clock)
        return
    async with fresh_database(request.getfixturevalue("pg_cluster")) as url:
        store = postgres_ledger_store(url)
        await store.open()
        try:
            yield SharedLoginThrottle(LoginAttempts(store.read_db), clock=clock)
        finally:
            await store.close()


async def fail(throttle: Throttle, times: int, username: str = "alice",
         client: str = ATTACKER) -> None:
    for _ in range(times):
        assert await throttle.retry_after(username, client) == 0, "a locked attempt is not heard"
        await throttle.failed(username, client)


# -- the throttle on its own -----------------------------------------------------------------

async def test_one_client_guessing_one_account_is_locked_after_five_failures(
        throttle: Throttle) -> None:
    await fail(throttle, PAIR.failures)
    assert await throttle.retry_after("alice", ATTACKER) == 0

    await fail(throttle, 1)

    assert await throttle.retry_after("alice", ATTACKER) == PAIR.lock_s
    assert await throttle.retry_after("alice", USER) == 0  # the real user, elsewhere, is not locked


async def heard_over(processes: list[LoginThrottle]) -> int:
    """Attempts a guesser gets heard, spreading them round-robin over the processes."""
    heard = 0
    for attempt in range(20 * PAIR.failures):
        process = processes[attempt % len(processes)]
        if await process.retry_after("alice", ATTACKER) == 0:
            heard += 1
            await process.failed("alice", ATTACKER)
    return heard


@pytest.mark.parametrize("workers", [2, 3, 4, 8])
async def test_workers_on_one_sqlite_file_together_hear_at_most_n_minus_1_more(
        clock: FakeClock, workers: int) -> None:
    """`--workers N` on SQLite: each process counts in memory and any connection can land on
    any of them, so each allows its share of a rule; a guesser spreading attempts over all
    of them is heard at most N - 1 times more than by one process, not N times as often."""
    alone = await heard_over([LoginThrottle(clock=clock)])
    assert alone == PAIR.failures + 1  # five failures, and the sixth that locks
    apart = await heard_over([LoginThrottle(clock=clock) for _ in range(workers)])
    assert apart == workers * alone  # what sharing fixes
    processes = [LoginThrottle(clock=clock, share=workers) for _ in range(workers)]
    assert workers <= await heard_over(processes) <= alone + workers - 1
    for process in processes:  # every process has the pair locked, the real user is free
        assert await process.retry_after("alice", ATTACKER) > 0
        assert await process.retry_after("alice", USER) == 0


async def test_each_further_failure_doubles_the_lock(
        throttle: Throttle, clock: FakeClock) -> None:
    await fail(throttle, PAIR.failures)
    locks = []
    for _ in range(5):
        await fail(throttle, 1)
        locks.append(wait := await throttle.retry_after("alice", ATTACKER))
        clock.advance(wait)

    assert locks == [30, 60, 120, 240, 480]


async def test_a_guesser_from_one_address_gets_about_ten_guesses_a_quarter_hour(
        throttle: Throttle, clock: FakeClock) -> None:
    heard, start = 0, clock.now
    while clock.now - start < 3600:  # an hour of guessing as fast as the throttle lets
        if wait := await throttle.retry_after("alice", ATTACKER):
            clock.advance(wait)
        else:
            await throttle.failed("alice", ATTACKER)
            heard += 1

    assert heard <= 4 * 12


async def test_the_case_of_the_username_does_not_escape_the_lock(throttle: Throttle) -> None:
    for name in ["alice", "Alice", "ALICE", "aLiCe", "alicE", "ALIce"]:
        await fail(throttle, 1, username=name)

    assert await throttle.retry_after("alice", ATTACKER) == PAIR.lock_s


async def test_a_client_spraying_usernames_is_locked_for_every_username(
        throttle: Throttle) -> None:
    for n in range(CLIENT.failures + 1):
        await fail(throttle, 1, username=f"user{n}")

    assert await throttle.retry_after("someone-new", ATTACKER) == CLIENT.lock_s
    assert await throttle.retry_after("someone-new", USER) == 0


async def test_an_account_attacked_from_many_addresses_is_locked_only_briefly_for_its_owner(
        throttle: Throttle, clock: FakeClock) -> None:
    addresses = iter(f"10.0.{n // 250}.{n % 250}" for n in range(10_000))
    for _ in range(ACCOUNT.failures + 1):
        await fail(throttle, 1, client=next(addresses))
    assert await throttle.retry_after("alice", USER) == ACCOUNT.lock_s

    longest = 0
    for _ in range(50):  # the attack goes on from fresh addresses as soon as each lock ends
        clock.advance(await throttle.retry_after("alice", USER))
        await fail(throttle, 1, client=next(addresses))
        longest = max(longest, await throttle.retry_after("alice", USER))

    assert longest == ACCOUNT.max_lock_s == 60
    clock.advance(longest)
    assert await throttle.retry_after("alice", USER) == 0


async def test_a_right_password_clears_the_pairs_failures(throttle: Throttle) -> None:
    await fail(throttle, PAIR.failures - 1)
    await throttle.succeeded("alice", ATTACKER)

    await fail(throttle, PAIR.failures)

    assert await throttle.retry_after("alice", ATTACKER) == 0


async def test_failures_older_than_the_window_are_forgotten(
        throttle: Throttle, clock: FakeClock) -> None:
    await fail(throttle, PAIR.failures)
    clock.advance(PAIR.window_s + 1)

    await fail(throttle, PAIR.failures)

    assert await throttle.retry_after("alice", ATTACKER) == 0


# -- over HTTP -------------------------------------------------------------------------------

@pytest.fixture
async def locked_out(make_client: MakeClient, db_path: Path, clock: FakeClock) -> Client:
    """An app whose throttle runs on the test's clock, with alice registered."""
    app = create_app(app_config(db_path))
    app[THROTTLE] = LoginThrottle(clock=clock)  # before the app starts: its state is then frozen
    client = await make_client(app=app)
    await register(client, "alice")
    return client


async def api_login(client: Client, password: str) -> ClientResponse:
    return await client.post("/api/v1/auth/login",
                             json={"username": "alice", "password": password})


async def page_login(client: Client, password: str) -> tuple[int, str]:
    token = await csrf_from(client, "/login")
    response = await client.post("/login", allow_redirects=False, data={
        "csrf_token": token, "username": "alice", "password": password})
    return response.status, await response.text()


async def test_the_api_answers_429_with_retry_after_until_the_lock_expires(
        locked_out: Client, clock: FakeClock) -> None:
    for _ in range(PAIR.failures + 1):
        await expect_problem(await api_login(locked_out, "not the password"), 401,
                             "invalid_credentials")

    locked = await api_login(locked_out, PASSWORD)  # even the right password is not heard

    await expect_problem(locked, 429, "too_many_attempts")
    assert locked.headers["Retry-After"] == str(PAIR.lock_s)
    clock.advance(PAIR.lock_s + 1)
    assert (await api_login(locked_out, PASSWORD)).status == 200


async def test_the_login_page_says_how_long_to_wait_until_the_lock_expires(
        locked_out: Client, clock: FakeClock) -> None:
    for _ in range(PAIR.failures + 1):
        assert (await page_login(locked_out, "not the password"))[0] == 401

    status, page = await page_login(locked_out, PASSWORD)

    assert status == 429
    assert f"Too many attempts. Try again in {PAIR.lock_s} seconds." in page
    clock.advance(PAIR.lock_s + 1)
    assert (await page_login(locked_out, PASSWORD))[0] == 303


async def test_a_spray_of_addresses_cannot_grow_the_throttle_without_bound(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("web.throttle.MAX_TRACKED", 300)
    throttle = LoginThrottle(clock)
    for n in range(1_000):
        await throttle.failed(f"user{n}", f"10.0.{n // 250}.{n % 250}")
    # Three records a failure, yet never more than the bound plus one failure's worth.
    assert len(throttle._buckets) <= 300 + 3
    # The newest failures are still remembered, so a fresh guesser is still counted.
    assert "pair:user999:10.0.3.249" in throttle._buckets


async def test_a_spray_cannot_grow_the_shared_throttle_table_without_bound(
    pg_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("web.throttle.MAX_TRACKED", 300)
    monkeypatch.setattr("web.throttle_db.PRUNE_EVERY", 10)
    store = postgres_ledger_store(pg_url)
    await store.open()
    try:
        attempts = LoginAttempts(store.read_db)
        throttle = SharedLoginThrottle(attempts, clock=clock)
        most = 0
        for n in range(600):
            clock.advance(0.001)
            await throttle.failed(f"user{n}", f"10.0.{n // 250}.{n % 250}")
            most = max(most, await attempts.count())
        # Three rows a failure, pruned every tenth: never more than the bound plus ten
        # failures' worth, and the newest failures are still counted.
        assert most <= 300 + 3 * 10
        assert await attempts.count() <= 300 + 3 * 10
        row = await store.read_db().fetchone(
            "SELECT failures FROM login_attempts WHERE key = ?", ("pair:user599:10.0.2.99",))
        assert row is not None and row["failures"] == 1
    finally:
        await store.close()


async def test_expired_records_are_pruned_from_the_shared_table(
    pg_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("web.throttle_db.PRUNE_EVERY", 5)
    store = postgres_ledger_store(pg_url)
    await store.open()
    try:
        attempts = LoginAttempts(store.read_db)
        throttle = SharedLoginThrottle(attempts, clock=clock)
        for n in range(4):
            await throttle.failed(f"old{n}", ATTACKER)
        clock.advance(PAIR.window_s + 1)  # nothing needs those four any more
        await throttle.failed("new", USER)  # the fifth failure prunes
        keys = {r["key"] for r in await store.read_db().fetchall(
            "SELECT key FROM login_attempts")}
        assert keys == {f"pair:new:{USER}", f"client:{USER}", "account:new"}
    finally:
        await store.close()


# -- a stranger cannot lock the owner's known browser out --------------------------------------

DEVICE = "0123456789abcdef"  # the id in a device cookie the account issued before


async def test_a_strangers_failures_from_many_addresses_do_not_lock_the_owners_known_browser(
        throttle: Throttle) -> None:
    addresses = iter(f"10.1.{n // 250}.{n % 250}" for n in range(1_000))
    for _ in range(ACCOUNT.failures + 1):
        await fail(throttle, 1, client=next(addresses))

    assert await throttle.retry_after("alice", USER) == ACCOUNT.lock_s  # unknown: slowed
    assert await throttle.retry_after("alice", USER, DEVICE) == 0  # the owner's browser: not


async def test_a_known_browser_behind_the_attackers_address_still_gets_in(
        throttle: Throttle) -> None:
    await fail(throttle, PAIR.failures + 1)  # alice's pair at this address is locked
    for n in range(CLIENT.failures):  # and then the address for every account
        await throttle.failed(f"user{n}", ATTACKER)
    assert await throttle.retry_after("alice", ATTACKER) > 0
    assert await throttle.retry_after("someone-new", ATTACKER) > 0

    assert await throttle.retry_after("alice", ATTACKER, DEVICE) == 0


async def test_a_known_browser_guessing_is_still_locked_by_its_own_failures(
        throttle: Throttle) -> None:
    for _ in range(PAIR.failures + 1):
        await throttle.failed("alice", USER, DEVICE)

    assert await throttle.retry_after("alice", USER, DEVICE) == PAIR.lock_s
    assert await throttle.retry_after("alice", USER, "fedcba9876543210") == 0
    assert await throttle.retry_after("bob", USER, DEVICE) == 0  # the mark is per account


async def test_over_http_the_owners_browser_signs_in_while_strangers_are_turned_away(
        locked_out: Client) -> None:
    status, _ = await page_login(locked_out, PASSWORD)  # the owner signs in once: a known device
    assert status == 303
    jar = locked_out.session.cookie_jar
    device = jar.filter_cookies(locked_out.make_url("/"))["mlc_device"]
    await locked_out.post("/logout", data={"csrf_token": await csrf_from(locked_out,
                                                                         "/cabinet")})
    throttle = locked_out.app[THROTTLE]
    for n in range(ACCOUNT.failures + 1):  # a stranger, from everywhere, including here
        await throttle.failed("alice", f"10.2.0.{n % 250}")
    jar.clear()
    for _ in range(PAIR.failures + 1):
        assert (await page_login(locked_out, "not the password"))[0] in (401, 429)
    assert (await page_login(locked_out, PASSWORD))[0] == 429  # a browser nobody knows
    await expect_problem(await api_login(locked_out, PASSWORD), 429, "too_many_attempts")

    jar.clear()
    jar.update_cookies({"mlc_device": device.value}, locked_out.make_url("/"))
    assert (await page_login(locked_out, PASSWORD))[0] == 303  # the owner's browser


async def test_a_forged_or_foreign_device_cookie_counts_as_unknown(locked_out: Client) -> None:
    throttle = locked_out.app[THROTTLE]
    for n in range(ACCOUNT.failures + 1):
        await throttle.failed("alice", f"10.3.0.{n % 250}")
    jar = locked_out.session.cookie_jar
    for forged in ["0123456789abcdef." + "0" * 32, "x" * 49, "", "a.b"]:
        jar.update_cookies({"mlc_device": forged}, locked_out.make_url("/"))
        assert (await page_login(locked_out, PASSWORD))[0] == 429
