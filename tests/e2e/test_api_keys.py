"""API keys over HTTP, on both stores: made, used, listed masked, revoked; scopes; the
password change and "log out everywhere"; the security log."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from cabinet_http import PASSWORD, ApiUser, api_signup, expect_problem

from web.keys import STORE
from web.throttle import PAIR

Client = TestClient[Any, Any]
NEW_PASSWORD = "a much better passphrase"


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def make_key(client: Client, user: ApiUser, **fields: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/keys", json={"name": "batch", "scope": "predict",
                                                       **fields}, headers=user.auth)
    assert response.status == 201, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def rows(client: Client, table: str) -> int:
    found = await client.app[STORE].read_db().fetchone(f"SELECT COUNT(*) AS n FROM {table}")
    assert found is not None
    return int(found["n"])


async def test_a_key_is_made_used_listed_masked_and_revoked(client: Client) -> None:
    ada = await api_signup(client, "ada", top_up=50)
    made = await make_key(client, ada, name="nightly", monthly_limit_credits=300)
    secret = made["key"]
    assert secret.startswith("mlc_") and len(secret) >= 4 + 43  # 256 bits, base64url
    assert made["prefix"] == secret[:8] and made["last4"] == secret[-4:]
    assert (made["name"], made["scope"], made["monthly_limit_credits"]) == ("nightly",
                                                                             "predict", 300)
    assert made["expires_at"] is None and made["revoked_at"] is None

    seen: list[ClientResponse] = []
    balance = await client.get("/api/v1/balance", headers=bearer(secret))
    assert (await balance.json())["balance"] == 50
    predicted = await client.post("/api/v1/predict", json={"model_id": 1, "data": [1, 2]},
                                  headers=bearer(secret))
    assert predicted.status == 200, await predicted.text()
    listed = await client.get("/api/v1/keys", headers=ada.auth)
    seen += [balance, predicted, listed]
    [shown] = (await listed.json())["data"]
    assert shown["id"] == made["id"] and "key" not in shown
    assert shown["last_used_at"] is not None and len(shown["last_used_at"]) == len(
        "2026-12-01T20:45+00:00")

    revoked = await client.delete(f"/api/v1/keys/{made['id']}", headers=ada.auth)
    assert revoked.status == 204
    await expect_problem(await client.get("/api/v1/balance", headers=bearer(secret)),
                         401, "unauthorized")
    listed_again = await client.get("/api/v1/keys", headers=ada.auth)
    assert (await listed_again.json())["data"][0]["revoked_at"] is not None
    seen += [revoked, listed_again]
    for response in seen:  # the secret is in the reply that made it, and nowhere else
        assert secret not in await response.text()
        assert secret[4:] not in json.dumps(dict(response.headers))


async def test_a_read_key_reads_but_cannot_predict_or_top_up(client: Client) -> None:
    ada = await api_signup(client, "ada", top_up=20)
    read = (await make_key(client, ada, scope="read"))["key"]
    for path in ("/api/v1/balance", "/api/v1/me", "/api/v1/transactions", "/api/v1/tasks"):
        response = await client.get(path, headers=bearer(read))
        assert response.status == 200, (path, await response.text())
    await expect_problem(await client.post("/api/v1/predict", json={
        "model_id": 1, "data": [1]}, headers=bearer(read)), 403, "insufficient_scope")
    await expect_problem(await client.post("/api/v1/balance/top-up", json={"amount": 5},
                                           headers=bearer(read)), 403, "insufficient_scope")
    balance = await (await client.get("/api/v1/balance", headers=ada.auth)).json()
    assert balance["balance"] == 20, "nothing was charged or added"


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/api/v1/keys", {"name": "x", "scope": "predict"}),
    ("GET", "/api/v1/keys", None),
    ("POST", "/api/v1/auth/password", {"current_password": PASSWORD,
                                       "new_password": NEW_PASSWORD}),
    ("POST", "/api/v1/auth/logout-all", None),
    ("POST", "/api/v1/auth/logout", None),
    ("GET", "/api/v1/security-events", None),
])
async def test_a_key_cannot_manage_keys_or_the_account(
        client: Client, method: str, path: str, body: Any) -> None:
    ada = await api_signup(client, "ada")
    key = await make_key(client, ada)
    response = await client.request(method, path, json=body, headers=bearer(key["key"]))
    await expect_problem(response, 403, "login_required")
    assert await rows(client, "api_keys") == 1
    me = await client.get("/api/v1/me", headers=ada.auth)
    assert me.status == 200, "the login token still works: nothing was changed"


async def test_a_key_cannot_revoke_itself_or_another(client: Client) -> None:
    ada = await api_signup(client, "ada")
    key = await make_key(client, ada)
    response = await client.delete(f"/api/v1/keys/{key['id']}", headers=bearer(key["key"]))
    await expect_problem(response, 403, "login_required")
    assert (await client.get("/api/v1/balance", headers=bearer(key["key"]))).status == 200


async def test_an_expired_key_is_refused(client: Client) -> None:
    ada = await api_signup(client, "ada")
    key = await make_key(client, ada, expires_in_days=1)
    assert (await client.get("/api/v1/balance", headers=bearer(key["key"]))).status == 200
    store = client.app[STORE]
    now = store.clock()
    store.clock = lambda: now + timedelta(days=1, seconds=1)
    await expect_problem(await client.get("/api/v1/balance", headers=bearer(key["key"])),
                         401, "unauthorized")


async def test_another_users_key_is_not_found_and_stays_live(client: Client) -> None:
    ada, bob = await api_signup(client, "ada"), await api_signup(client, "bob")
    key = await make_key(client, ada)
    for method in ("DELETE",):
        response = await client.request(method, f"/api/v1/keys/{key['id']}", headers=bob.auth)
        await expect_problem(response, 404, "key_not_found")
    assert (await (await client.get("/api/v1/keys", headers=bob.auth)).json())["data"] == []
    assert (await client.get("/api/v1/balance", headers=bearer(key["key"]))).status == 200
    await expect_problem(await client.delete("/api/v1/keys/nonsense", headers=ada.auth),
                         404, "key_not_found")


@pytest.mark.parametrize("body", [
    {"scope": "predict"}, {"name": "x"}, {"name": "", "scope": "predict"},
    {"name": "   ", "scope": "predict"}, {"name": "a" * 65, "scope": "predict"},
    {"name": "tab\there", "scope": "predict"}, {"name": "nl\n", "scope": "predict"},
    {"name": 5, "scope": "predict"}, {"name": "x", "scope": "admin"},
    {"name": "x", "scope": ["read"]}, {"name": "x", "scope": "READ"},
    {"name": "x", "scope": "read", "expires_in_days": 0},
    {"name": "x", "scope": "read", "expires_in_days": -1},
    {"name": "x", "scope": "read", "expires_in_days": 3651},
    {"name": "x", "scope": "read", "expires_in_days": 1.5},
    {"name": "x", "scope": "read", "expires_in_days": "7"},
    {"name": "x", "scope": "read", "expires_in_days": True},
    {"name": "x", "scope": "read", "monthly_limit_credits": -1},
    {"name": "x", "scope": "read", "monthly_limit_credits": 10**13},
    {"name": "x", "scope": "read", "monthly_limit_credits": 1e3},
    {"name": "x", "scope": "read", "monthly_limit_credits": False},
    {"name": "x", "scope": "read", "owner": 2},
])
async def test_hostile_key_fields_are_422_and_nothing_is_written(
        client: Client, body: dict[str, Any]) -> None:
    ada = await api_signup(client, "ada")
    events_before = await rows(client, "events")
    response = await client.post("/api/v1/keys", json=body, headers=ada.auth)
    await expect_problem(response, 422, "validation_error")
    assert await rows(client, "api_keys") == 0
    assert await rows(client, "api_key_secrets") == 0
    assert await rows(client, "events") == events_before


async def test_live_keys_are_bounded_per_user(client: Client) -> None:
    ada = await api_signup(client, "ada")
    from ledger.keys import MAX_LIVE_KEYS
    made = [await make_key(client, ada, name=f"k{n}") for n in range(MAX_LIVE_KEYS)]
    response = await client.post("/api/v1/keys", json={"name": "one more", "scope": "read"},
                                 headers=ada.auth)
    await expect_problem(response, 409, "too_many_keys")
    await client.delete(f"/api/v1/keys/{made[0]['id']}", headers=ada.auth)
    await make_key(client, ada, name="after a revocation")


async def test_a_password_change_ends_every_other_session_and_token_but_not_keys(
        client: Client) -> None:
    ada = await api_signup(client, "ada")
    other = await client.post("/api/v1/auth/login",
                              json={"username": "ada", "password": PASSWORD})
    other_auth = bearer((await other.json())["access_token"])
    key = await make_key(client, ada)

    wrong = await client.post("/api/v1/auth/password", json={
        "current_password": "not my password", "new_password": NEW_PASSWORD},
        headers=ada.auth)
    await expect_problem(wrong, 422, "validation_error")
    assert (await client.get("/api/v1/me", headers=other_auth)).status == 200

    changed = await client.post("/api/v1/auth/password", json={
        "current_password": PASSWORD, "new_password": NEW_PASSWORD}, headers=ada.auth)
    assert changed.status == 204, await changed.text()
    await expect_problem(await client.get("/api/v1/me", headers=other_auth), 401,
                         "unauthorized")
    assert (await client.get("/api/v1/me", headers=ada.auth)).status == 200, "this one stays"
    assert (await client.get("/api/v1/me", headers=bearer(key["key"]))).status == 200
    old = await client.post("/api/v1/auth/login", json={"username": "ada", "password": PASSWORD})
    await expect_problem(old, 401, "invalid_credentials")
    new = await client.post("/api/v1/auth/login",
                            json={"username": "ada", "password": NEW_PASSWORD})
    assert new.status == 200

    log = await (await client.get("/api/v1/security-events", headers=ada.auth)).json()
    kinds = [entry["kind"] for entry in log["data"]]
    assert kinds == ["login", "password_changed", "key_created", "login", "login"]
    assert all(entry["client_address"] for entry in log["data"])
    assert "1 other" in log["data"][1]["detail"]


async def test_a_short_new_password_is_refused_and_nothing_changes(client: Client) -> None:
    ada = await api_signup(client, "ada")
    response = await client.post("/api/v1/auth/password", json={
        "current_password": PASSWORD, "new_password": "short"}, headers=ada.auth)
    body = await expect_problem(response, 422, "validation_error")
    assert set(body["errors"]) == {"new_password"}
    login = await client.post("/api/v1/auth/login", json={"username": "ada",
                                                          "password": PASSWORD})
    assert login.status == 200


async def test_log_out_everywhere_ends_every_login_token_this_one_too(client: Client) -> None:
    ada = await api_signup(client, "ada")
    key = await make_key(client, ada)
    response = await client.post("/api/v1/auth/logout-all", headers=ada.auth)
    assert response.status == 204
    await expect_problem(await client.get("/api/v1/me", headers=ada.auth), 401, "unauthorized")
    assert (await client.get("/api/v1/me", headers=bearer(key["key"]))).status == 200


async def test_the_security_log_pages_newest_first(client: Client) -> None:
    ada = await api_signup(client, "ada")
    for n in range(3):
        await make_key(client, ada, name=f"k{n}")
    first = await (await client.get("/api/v1/security-events?limit=2",
                                    headers=ada.auth)).json()
    assert first["has_more"] is True
    after = first["data"][-1]["id"]
    rest = await (await client.get(f"/api/v1/security-events?limit=2&starting_after={after}",
                                   headers=ada.auth)).json()
    ids = [e["id"] for e in first["data"] + rest["data"]]
    assert ids == sorted(ids, reverse=True) and len(ids) == 4 and rest["has_more"] is False
    bob = await api_signup(client, "bob")
    theirs = await (await client.get("/api/v1/security-events", headers=bob.auth)).json()
    assert [e["kind"] for e in theirs["data"]] == ["login"]


async def test_the_auditor_sees_keys_made_and_revoked_and_the_replay_agrees(
        client: Client, config: Any) -> None:
    from ledger.audit import audit

    ada = await api_signup(client, "ada")
    kept, gone = await make_key(client, ada, name="kept"), await make_key(client, ada)
    await client.delete(f"/api/v1/keys/{gone['id']}", headers=ada.auth)
    log = client.app[STORE].read_db()
    types = [r["type_name"] for r in await log.fetchall(
        "SELECT type_name FROM events WHERE stream_id = ? ORDER BY version",
        (f"account-{ada.id}",))]
    assert types == ["AccountOpened", "KeyCreated", "KeyCreated", "KeyRevoked"]
    stored = await log.fetchall("SELECT data FROM events")
    for row in stored:  # the log never holds a secret, nor its hash
        assert kept["key"][8:-4] not in row["data"] and gone["key"][8:-4] not in row["data"]
    report = await audit(config.database_url or config.db_path, show_progress=False)
    assert report.ok, report.render()


async def test_last_use_is_kept_to_the_minute_and_written_once_a_minute(client: Client) -> None:
    ada = await api_signup(client, "ada")
    key = await make_key(client, ada)
    store = client.app[STORE]
    start = store.clock().replace(second=10, microsecond=0) + timedelta(minutes=5)

    async def last_used_after_a_request_at(moment: Any) -> str:
        store.clock = lambda: moment
        assert (await client.get("/api/v1/balance", headers=bearer(key["key"]))).status == 200
        row = await store.read_db().fetchone("SELECT last_used_at FROM api_key_secrets")
        assert row is not None
        return str(row["last_used_at"])

    first = await last_used_after_a_request_at(start)
    assert first == start.replace(second=0).isoformat(timespec="minutes")
    assert await last_used_after_a_request_at(start + timedelta(seconds=40)) == first
    later = await last_used_after_a_request_at(start + timedelta(seconds=55))
    assert later > first, "a new minute: written again"


async def test_wrong_current_passwords_are_throttled_like_failed_logins(client: Client) -> None:
    ada = await api_signup(client, "ada")
    wrong = {"current_password": "a wrong guess", "new_password": NEW_PASSWORD}
    statuses = [(await client.post("/api/v1/auth/password", json=wrong,
                                   headers=ada.auth)).status for _ in range(PAIR.failures + 2)]
    assert statuses[:PAIR.failures] == [422] * PAIR.failures and statuses[-1] == 429
    right = await client.post("/api/v1/auth/password", headers=ada.auth, json={
        "current_password": PASSWORD, "new_password": NEW_PASSWORD})
    await expect_problem(right, 429, "too_many_attempts")
    login = await client.post("/api/v1/auth/login", json={"username": "ada",
                                                          "password": PASSWORD})
    assert login.status == 429, "the same counter as the login's"
