"""Read your own writes: once a write is acknowledged, every later read sees it, however
many other reads are in flight on the shared reader connection."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import Services


async def test_a_fresh_token_works_at_once_under_concurrent_reads(services: Services) -> None:
    users = services.users
    user = int((await users.register("ada", "correct horse")).id)
    await services.ledger.top_up(user, 1000)

    async def login_then_use() -> int | None:
        token = (await users.issue_token(user, "api")).access_token
        return await users.user_for_token(token, "api")

    async def browse() -> None:
        for _ in range(20):
            await services.ledger.get_balance(user)

    # Fewer logins than MAX_LIVE_TOKENS, so every token issued here is still live.
    results = await asyncio.gather(*(login_then_use() for _ in range(40)),
                                   *(browse() for _ in range(60)))
    assert results[:40] == [user] * 40


async def test_a_balance_read_after_a_top_up_shows_it(services: Services) -> None:
    user = int((await services.users.register("bob", "correct horse")).id)

    async def top_up_then_read(n: int) -> bool:
        outcome = await services.ledger.top_up(user, 1, f"op-{n}")
        seen = await services.ledger.get_balance(user)
        return seen.balance_credits >= outcome.balance.balance_credits

    assert all(await asyncio.gather(*(top_up_then_read(n) for n in range(150))))


async def test_the_one_write_paths_balance_check_sees_every_acknowledged_write(
        services: Services) -> None:
    """quick_balance reads on the event loop's thread (SQLite's point reader): a top-up
    acknowledged a moment ago is there, with another user's predictions committing alongside."""
    user = int((await services.users.register("cyd", "correct horse")).id)
    other = int((await services.users.register("dee", "correct horse")).id)
    await services.ledger.top_up(other, 1_000)

    async def top_up_then_check(n: int) -> bool:
        outcome = await services.ledger.top_up(user, 1, f"quick-{n}")
        seen = await services.ledger.quick_balance(user)
        return seen.balance_credits >= outcome.balance.balance_credits

    async def predict() -> None:
        for _ in range(5):
            await services.ml.process_task(other, 1, [1.0, 2.0])

    results = await asyncio.gather(*(top_up_then_check(n) for n in range(100)),
                                   *(predict() for _ in range(10)))
    assert all(results[:100])
    assert await services.ledger.quick_balance(user) == await services.ledger.get_balance(user)
