"""Sessions and tokens: a new session at login, logout and revocation at once, token kinds kept
apart, CSRF on every form, and password hashes upgraded when the parameters change."""

from __future__ import annotations

from pathlib import Path

import argon2
import pytest
from aiohttp import FormData
from security_http import (
    PASSWORD,
    Client,
    count_rows,
    csrf_from,
    expect_documented,
    expect_problem,
    login,
    new_account,
    page_login,
    register,
    scalar,
)

from ledger import Passwords, UserService
from web.keys import LEDGER, USERS

COOKIE = "mlc_session"


def session_cookie(client: Client) -> str:
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/")).get(COOKIE)
    assert cookie is not None, "no session cookie"
    return cookie.value


def use_cookie(client: Client, value: str) -> None:
    """Replace the client's cookies with a copied session cookie, as a thief would."""
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies({COOKIE: value}, client.make_url("/"))


async def opens_cabinet(client: Client) -> bool:
    response = await client.get("/cabinet", allow_redirects=False)
    assert response.status in (200, 303)
    return response.status == 200


async def test_login_starts_a_new_session_and_the_one_from_before_stays_anonymous(
        client: Client) -> None:
    await register(client, "alice")
    pre_login_csrf = await csrf_from(client, "/login")
    planted = session_cookie(client)  # e.g. set by an attacker before the victim logs in

    await page_login(client, "alice")
    logged_in = session_cookie(client)

    assert logged_in != planted
    assert await opens_cabinet(client)
    stale_form = await client.post("/cabinet/top-up", allow_redirects=False, data={
        "csrf_token": pre_login_csrf, "amount": "10"})
    assert stale_form.status == 403  # the CSRF token was renewed with the session
    use_cookie(client, planted)
    assert not await opens_cabinet(client)


async def test_logout_ends_the_session_at_once_even_for_a_copied_cookie(
        client: Client, db_path: Path) -> None:
    await register(client, "alice")
    await page_login(client, "alice")
    copied = session_cookie(client)
    token = await csrf_from(client, "/cabinet")

    response = await client.post("/logout", data={"csrf_token": token}, allow_redirects=False)

    assert response.status == 303
    assert not await opens_cabinet(client)
    use_cookie(client, copied)  # the cookie is still well formed; its server token is revoked
    assert not await opens_cabinet(client)
    assert scalar(db_path, "SELECT COUNT(*) FROM tokens WHERE kind = 'session' "
                           "AND revoked_at IS NULL") == 0


async def test_api_logout_revokes_that_token_at_once_and_only_that_token(client: Client) -> None:
    alice = await new_account(client, "alice")
    other_device = await login(client, "alice")

    logout = await client.post("/api/v1/auth/logout", headers=alice.auth)

    assert logout.status == 204
    await expect_documented(logout)
    await expect_problem(await client.get("/api/v1/me", headers=alice.auth), 401, "unauthorized")
    await expect_problem(await client.post("/api/v1/auth/logout", headers=alice.auth), 401,
                         "unauthorized")
    still = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {other_device}"})
    assert still.status == 200


async def test_a_session_token_does_not_open_the_api(client: Client) -> None:
    user_id = await register(client, "alice")
    assert client.app is not None
    session = await client.app[USERS].issue_token(user_id, "session")

    response = await client.get("/api/v1/me",
                                headers={"Authorization": f"Bearer {session.access_token}"})

    await expect_problem(response, 401, "unauthorized")


async def test_an_api_token_does_not_open_the_pages(client: Client) -> None:
    alice = await new_account(client, "alice")

    response = await client.get("/cabinet", headers=alice.auth, allow_redirects=False)

    assert response.status == 303
    assert response.headers["Location"] == "/login"


@pytest.mark.parametrize("authorization", [
    "Bearer", "Bearer ", "Basic YWxpY2U6cGFzc3dvcmQ=", "bearer x", "Bearer " + "a" * 201,
    "Token abc", "Bearer abc def"])
async def test_a_malformed_or_unknown_bearer_token_is_401(
        client: Client, authorization: str) -> None:
    await new_account(client, "alice")

    response = await client.get("/api/v1/me", headers={"Authorization": authorization})

    problem = await expect_problem(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert problem["detail"]


FORMS = {"/cabinet/top-up": {"amount": "10"}, "/cabinet/predict": {"model_id": "1", "data": "1"},
         "/logout": {}}


@pytest.mark.parametrize("action", FORMS)
@pytest.mark.parametrize("token", [None, "", "forged"])
async def test_a_form_posted_from_another_site_is_refused_and_writes_nothing(
        client: Client, db_path: Path, action: str, token: str | None) -> None:
    await new_account(client, "alice", credits=100)
    await page_login(client, "alice")
    events = count_rows(db_path)
    fields = {**FORMS[action], **({"csrf_token": token} if token is not None else {})}
    form = FormData(fields, default_to_multipart=True)  # as the cabinet's forms are sent

    response = await client.post(action, data=form, allow_redirects=False,
                                 headers={"Origin": "https://evil.example"})

    assert response.status == 403
    assert count_rows(db_path) == events
    assert await opens_cabinet(client)  # not even logged out


async def test_login_upgrades_the_password_hash_when_the_parameters_change(
        client: Client, db_path: Path) -> None:
    user_id = await register(client, "alice")  # hashed with the cheap test parameters
    query = "SELECT password_hash FROM credentials WHERE user_id = ?"
    cheap_hash = scalar(db_path, query, (user_id,))
    stronger = argon2.PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)
    assert client.app is not None
    users = UserService(client.app[LEDGER], Passwords(stronger))

    with pytest.raises(Exception, match="wrong username or password"):
        await users.login("alice", "not the password")
    assert scalar(db_path, query, (user_id,)) == cheap_hash  # a failed login changes nothing

    await users.login("alice", PASSWORD)

    upgraded = scalar(db_path, query, (user_id,))
    assert upgraded != cheap_hash
    assert "m=16,t=2,p=1" in upgraded
    assert stronger.verify(upgraded, PASSWORD)
    assert not stronger.check_needs_rehash(upgraded)
    assert await login(client, "alice")  # and the service still lets alice in
