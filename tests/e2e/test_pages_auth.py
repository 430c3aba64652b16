"""The pages for people: home, sign up, log in, log out, and what the session cookie allows."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient
from cabinet_http import (
    PASSWORD,
    page_signup,
    replace_cookies,
    session_cookie,
    submit,
    text_of,
)

Client = TestClient[Any, Any]


async def log_in(client: Client, username: str, password: str = PASSWORD) -> Any:
    return await submit(client, "/login", "/login",
                        {"username": username, "password": password})


async def log_out(client: Client) -> Any:
    return await submit(client, "/cabinet", "/logout", {})


async def opens_cabinet(client: Client) -> bool:
    response = await client.get("/cabinet", allow_redirects=False)
    assert response.status in (200, 303)
    if response.status == 303:
        assert response.headers["Location"] == "/login"
    return response.status == 200


async def test_home_lists_models_with_prices_and_the_ways_in(client: Client) -> None:
    response = await client.get("/")

    assert response.status == 200
    html = await response.text()
    text = text_of(html)
    assert "Doubler" in text
    assert "1 credit per item" in text
    assert "Linear trend" in text
    assert "2 credits per item" in text
    for link in ("/register", "/login", "/docs"):
        assert f'href="{link}"' in html


async def test_signing_up_opens_the_cabinet_with_a_welcome(client: Client) -> None:
    await page_signup(client, "alice")

    response = await client.get("/cabinet")

    assert response.status == 200
    text = text_of(await response.text())
    assert "Welcome, alice!" in text
    assert "Signed in as alice" in text


async def test_a_refused_sign_up_shows_the_form_again_with_reasons(client: Client) -> None:
    response = await submit(client, "/register", "/register",
                            {"username": "a<b", "password": "short"})

    assert response.status == 422
    html = await response.text()
    assert "Please correct the fields below." in html
    assert 'id="username-errors"' in html
    assert 'id="password-errors"' in html
    assert 'value="a&lt;b"' in html
    assert "a<b" not in html
    assert not await opens_cabinet(client)


async def test_a_taken_username_is_explained_on_the_form(client: Client) -> None:
    await page_signup(client, "alice")
    await log_out(client)

    response = await submit(client, "/register", "/register",
                            {"username": "Alice", "password": PASSWORD})

    assert response.status == 409
    assert "This username is taken." in await response.text()


async def test_an_empty_sign_up_form_is_explained_not_crashed(client: Client) -> None:
    response = await submit(client, "/register", "/register", {})
    assert response.status == 422
    assert "Please correct the fields below." in await response.text()


async def test_logging_in_opens_the_cabinet(client: Client) -> None:
    await page_signup(client, "alice")
    await log_out(client)

    response = await log_in(client, "alice")

    assert response.status == 303
    assert response.headers["Location"] == "/cabinet"
    assert await opens_cabinet(client)


async def test_a_wrong_password_or_unknown_user_shows_one_message(client: Client) -> None:
    await page_signup(client, "alice")
    await log_out(client)

    wrong = await log_in(client, "alice", "not the password")
    unknown = await log_in(client, "nobody")
    empty = await log_in(client, "", "")

    for response in (wrong, unknown, empty):
        assert response.status == 401
        assert "Wrong username or password." in await response.text()
    assert 'value="alice"' in await wrong.text()
    assert not await opens_cabinet(client)


async def test_repeated_wrong_passwords_slow_down_with_a_message(client: Client) -> None:
    await page_signup(client, "alice")
    await log_out(client)

    statuses = [(await log_in(client, "alice", "guess-guess")).status for _ in range(7)]

    assert statuses[:5] == [401] * 5
    assert statuses[-1] == 429
    locked = await log_in(client, "alice")
    assert locked.status == 429
    assert re.search(r"Too many attempts\. Try again in \d+ seconds\.", await locked.text())


async def test_login_sets_a_new_httponly_samesite_session_cookie(client: Client) -> None:
    await page_signup(client, "alice")
    await log_out(client)
    await client.get("/login")
    before = session_cookie(client)

    response = await log_in(client, "alice")

    # The session, and the device cookie that tells the login throttle this browser is known.
    set_cookie = sorted(response.headers.getall("Set-Cookie"))
    assert [c.split("=")[0] for c in set_cookie] == ["mlc_device", "mlc_session"]
    assert all("HttpOnly" in c and "SameSite=Lax" in c for c in set_cookie)
    assert session_cookie(client)["mlc_session"].value != before["mlc_session"].value


async def test_a_session_planted_before_login_stays_anonymous(client: Client) -> None:
    await page_signup(client, "alice")
    await log_out(client)
    await client.get("/login")
    planted = session_cookie(client)

    await log_in(client, "alice")
    assert await opens_cabinet(client)

    replace_cookies(client, planted)
    assert not await opens_cabinet(client)


async def test_logout_ends_the_session_even_for_a_copied_cookie(client: Client) -> None:
    await page_signup(client, "alice")
    copied = session_cookie(client)

    response = await log_out(client)

    assert response.status == 303
    assert response.headers["Location"] == "/"
    assert not await opens_cabinet(client)
    replace_cookies(client, copied)
    assert not await opens_cabinet(client)


async def test_anonymous_visitors_are_sent_to_log_in(client: Client) -> None:
    for path in ("/cabinet", "/cabinet/tasks/1"):
        response = await client.get(path, allow_redirects=False)
        assert response.status == 303
        assert response.headers["Location"] == "/login"
