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
