"""The login throttle of web/throttle.py, counted in PostgreSQL: an attacker who spreads
guesses over every app process is locked as soon as if they all went to one."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from ledger.shared import LoginAttempts
from web import throttle
from web.throttle import throttle_keys

# Every this many failures seen by one process, it prunes the table (for all of them).
PRUNE_EVERY = 100


class SharedLoginThrottle:
    """Same rules and answers as LoginThrottle; the records live in `login_attempts`. The
    clock is wall time, not monotonic: it is compared across processes and machines."""

    def __init__(self, attempts: LoginAttempts,
                 clock: Callable[[], float] = time.time) -> None:
        self.attempts = attempts
        self.clock = clock
        self._failures_seen = 0

    async def retry_after(self, username: str, client: str, device: str | None = None) -> int:
        keys = [key for key, _ in throttle_keys(username, client, device)]
        wait = await self.attempts.locked_until(keys) - self.clock()
        return max(0, math.ceil(wait))

    async def failed(self, username: str, client: str, device: str | None = None) -> None:
        now = self.clock()
        await self.attempts.failed(throttle_keys(username, client, device), now)
        self._failures_seen += 1
        if self._failures_seen % PRUNE_EVERY == 0:
            horizon_s = max(rule.window_s for rule in (throttle.PAIR, throttle.CLIENT,
                                                       throttle.ACCOUNT))
            await self.attempts.prune(now, horizon_s, throttle.MAX_TRACKED)

    async def succeeded(self, username: str, client: str, device: str | None = None) -> None:
        await self.attempts.forget(throttle_keys(username, client, device)[0][0])
