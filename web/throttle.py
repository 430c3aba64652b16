"""Login throttling per client, per account and per (account, client) pair.

An attacker who guesses one account from one address is slowed down hard; past the account's
threshold every *unknown* client is slowed down too, but a browser that signed in to the
account before (its device cookie, web/devices.py) is judged only by its own failures, so a
stranger cannot lock the owner out. This one counts in memory, for one process (or its
share of a rule for each of `--workers N` on one SQLite file); web/throttle_db.py counts in
PostgreSQL, for all of them.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ledger.usernames import username_key


@dataclass(frozen=True)
class Rule:
    failures: int        # failures allowed in the window
    window_s: float      # the window, in seconds
    lock_s: float        # the first lock; it doubles with each failure past the limit
    max_lock_s: float


PAIR = Rule(failures=5, window_s=900, lock_s=30, max_lock_s=900)
CLIENT = Rule(failures=30, window_s=600, lock_s=60, max_lock_s=600)
ACCOUNT = Rule(failures=50, window_s=600, lock_s=15, max_lock_s=60)
MAX_TRACKED = 100_000  # bounded memory under a spray of usernames


def throttle_keys(username: str, client: str,
                  device: str | None = None) -> list[tuple[str, Rule]]:
    """The records one attempt counts against: the pair first, then the client, the account.
    A known device (`device`, from its cookie) has one record of its own, under the pair's
    rule: neither the address it shares nor the account's failures elsewhere lock it."""
    account = username_key(username)[:64]
    if device is not None:
        return [(f"device:{account}:{device}", PAIR)]
    return [(f"pair:{account}:{client}", PAIR), (f"client:{client}", CLIENT),
            (f"account:{account}", ACCOUNT)]


class Throttle(Protocol):
    async def retry_after(self, username: str, client: str, device: str | None = None) -> int:
        """Seconds to wait before the next attempt is heard; 0 when it may go ahead."""
        ...

    async def failed(self, username: str, client: str, device: str | None = None) -> None: ...

    async def succeeded(self, username: str, client: str, device: str | None = None) -> None:
        """A right password clears this pair's record; the account and client ones stay."""
        ...


@dataclass
class _Bucket:
    failures: int
    window_start: float
    locked_until: float


class LoginThrottle:
    """`share`: how many processes count apart (`--workers N` on SQLite, where connections
    go to any of them). Each allows its share of a rule's failures, rounded down, so all of
    them together hear at most N - 1 attempts more than one process would (N past a rule's
    failures: each locks at its first failure)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, share: int = 1) -> None:
        assert share >= 1
        self.clock = clock
        self.share = share
        self._buckets: dict[str, _Bucket] = {}

    async def retry_after(self, username: str, client: str, device: str | None = None) -> int:
        now = self.clock()
        waits = [bucket.locked_until - now for key, _ in throttle_keys(username, client, device)
                 if (bucket := self._buckets.get(key)) is not None]
        return max(0, math.ceil(max(waits, default=0)))

    async def failed(self, username: str, client: str, device: str | None = None) -> None:
        now = self.clock()
        if len(self._buckets) > MAX_TRACKED:
            self._forget_expired(now)
        for key, rule in throttle_keys(username, client, device):
            bucket = self._buckets.get(key)
            if bucket is None or now - bucket.window_start > rule.window_s:
                bucket = self._buckets[key] = _Bucket(0, now, 0.0)
            bucket.failures += 1
            over = bucket.failures - rule.failures // self.share
            if over > 0:
                lock = min(rule.lock_s * 2 ** min(over - 1, 20), rule.max_lock_s)
                bucket.locked_until = now + lock

    async def succeeded(self, username: str, client: str, device: str | None = None) -> None:
        self._buckets.pop(throttle_keys(username, client, device)[0][0], None)

    def _forget_expired(self, now: float) -> None:
        """Drop what no rule needs any more, then, under a spray, the oldest records, down to
        90% of the bound, so the scan runs once per tenth of the bound, not per failure."""
        for key in [k for k, b in self._buckets.items()
                    if b.locked_until < now and now - b.window_start > PAIR.window_s]:
            del self._buckets[key]
        excess = len(self._buckets) - MAX_TRACKED * 9 // 10
        for key in list(itertools.islice(self._buckets, max(excess, 0))):
            del self._buckets[key]
