"""Two server processes on one SQLite file check tokens and keys from their own caches, and a
revocation made through either one is refused by the other at once."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from fault_harness import Api, Servers


@pytest.mark.slow
async def test_a_logout_and_a_revoked_key_in_one_process_are_refused_by_the_other_at_once(
        tmp_path: Path, servers: Servers, http: aiohttp.ClientSession) -> None:
    db = tmp_path / "ledger.db"
    first, second = await servers.start(db), await servers.start(db)
    a, b = Api(http, first), Api(http, second)
    token = await a.signup("shared")
    created = await a.call("POST", "/keys", json={"name": "ci", "scope": "read"}, token=token)
    assert created.status == 201, created
    key = created.body["key"]
    for _ in range(3):  # B has read both, and serves them from its cache now
        assert (await b.call("GET", "/balance", token=token)).status == 200
        assert (await b.call("GET", "/balance", token=key)).status == 200

    revoked = await a.call("DELETE", f"/keys/{created.body['id']}", token=token)
    assert revoked.status == 204, revoked
    assert (await b.call("GET", "/balance", token=key)).status == 401
    assert (await b.call("GET", "/balance", token=token)).status == 200  # only the key ended

    assert (await a.call("POST", "/auth/logout", token=token)).status == 204
    assert (await b.call("GET", "/balance", token=token)).status == 401
    for server in (first, second):
        assert await servers.stop(server) == 0, server.log_tail()
