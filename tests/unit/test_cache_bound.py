"""The credential and flag caches, when full, drop their oldest entry, not every entry: a
cache that started over missed most requests once more credentials than its bound were in
use within its TTL."""

from __future__ import annotations

import random
from collections import OrderedDict
from datetime import UTC, datetime

from ledger.credential_cache import CredentialCache, put_newest
from ledger.credentials import Credential


class FixedWord:
    """A generation word no one changes (unit test: nothing is revoked here)."""

    def current(self) -> bytes:
        return b"w"


def test_a_full_cache_drops_its_oldest_entry_and_a_put_again_is_newest() -> None:
    entries: OrderedDict[str, int] = OrderedDict()
    for key in "abc":
        put_newest(entries, key, ord(key), limit=3)
    put_newest(entries, "a", 1, limit=3)  # cached again: now the newest
    put_newest(entries, "d", 4, limit=3)
    assert entries == {"c": ord("c"), "a": 1, "d": 4}  # "b" was the oldest


def test_past_its_bound_the_cache_still_serves_most_of_what_fits() -> None:
    cache = CredentialCache(FixedWord(), monotonic=lambda: 0.0)  # type: ignore[arg-type]
    now = datetime(2026, 1, 1, tzinfo=UTC)  # no entry ages: only the bound evicts
    rng, bound, hits = random.Random(7), 50_000, 0
    users = [f"d{k}" for k in range(2 * bound)]  # twice the bound in use, at random
    for digest in rng.choices(users, k=4 * bound):
        if cache.get("token", digest, now) is not None:
            hits += 1
        else:
            cache.put("token", digest, Credential(user_id=1, kind="token"), expires_at=None,
                      word=cache.word())
    assert 0.40 < hits / (4 * bound) <= 0.5  # about bound / in use; starting over gave 0.28
