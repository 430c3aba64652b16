"""The cabinet's Keys page: make a key (its secret shown once), revoke it after a
confirmation, change the password, log out everywhere, and read the security log."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestClient
from cabinet_http import (
    PASSWORD,
    csrf_for,
    error_alerts,
    page_signup,
    section,
    submit,
    text_of,
)

Client = TestClient[Any, Any]
SECRET_RE = re.compile(r"mlc_[A-Za-z0-9_\-]{43}")


async def make_key_on_the_page(client: Client, **fields: str) -> tuple[str, str]:
    """The reply's HTML and the secret it shows."""
    response = await submit(client, "/cabinet/keys", "/cabinet/keys",
                            {"name": "nightly", "scope": "predict", **fields})
    html = await response.text()
    assert response.status == 201, html
    assert response.headers["Cache-Control"] == "no-store"
    secrets = set(SECRET_RE.findall(html))
    assert len(secrets) == 1, "the new key's secret is on the page, once"
    return html, secrets.pop()


async def every_page(client: Client, key_id: str) -> list[str]:
    paths = ["/cabinet", "/cabinet/keys", f"/cabinet/keys/{key_id}/revoke", "/docs", "/"]
    return [await (await client.get(path)).text() for path in paths]


async def test_a_key_made_on_the_page_is_shown_once_and_works(client: Client) -> None:
    await page_signup(client, "ada")
    html, secret = await make_key_on_the_page(client, monthly_limit_credits="200")
    assert "shown this once" in text_of(html)
    async with ClientSession() as program:  # a program elsewhere, with only the key
        reply = await program.get(client.make_url("/api/v1/balance"),
                                  headers={"Authorization": f"Bearer {secret}"})
        assert reply.status == 200
    listing = await client.get("/cabinet/keys")
    table = section(await listing.text(), "keys")
    assert f"{secret[:8]}…{secret[-4:]}" in text_of(table)
    assert "200 credits" in text_of(table)
    key_id = re.findall(r'data-key-id="(key_[0-9a-f]{16})"', table)[0]
    for page in await every_page(client, key_id):
        assert secret not in page and secret[8:-4] not in page


async def test_a_key_is_revoked_only_after_the_confirmation(client: Client) -> None:
    await page_signup(client, "ada")
    _, secret = await make_key_on_the_page(client)
    listing = await (await client.get("/cabinet/keys")).text()
    key_id = re.findall(r'data-key-id="(key_[0-9a-f]{16})"', listing)[0]
    confirm = await client.get(f"/cabinet/keys/{key_id}/revoke")
    assert "Revoke the key “nightly”?" in text_of(await confirm.text())
    auth = {"Authorization": f"Bearer {secret}"}
    assert (await client.get("/api/v1/balance", headers=auth)).status == 200, "not yet"

    done = await submit(client, f"/cabinet/keys/{key_id}/revoke",
                        f"/cabinet/keys/{key_id}/revoke", {})
    assert done.status == 303 and done.headers["Location"] == "/cabinet/keys"
    assert (await client.get("/api/v1/balance", headers=auth)).status == 401
    after = await (await client.get("/cabinet/keys")).text()
    assert "is revoked" in text_of(after) and "Revoked" in text_of(section(after, "keys"))
    log = text_of(section(after, "security-log"))
    assert "key revoked" in log and "key created" in log and "login" in log


async def test_a_revoke_without_the_csrf_token_is_refused(client: Client) -> None:
    await page_signup(client, "ada")
    _, secret = await make_key_on_the_page(client)
    key_id = re.findall(r'data-key-id="(key_[0-9a-f]{16})"',
                        await (await client.get("/cabinet/keys")).text())[0]
    forged = await client.post(f"/cabinet/keys/{key_id}/revoke", data={"csrf_token": "x"},
                               allow_redirects=False)
    assert forged.status == 403
    auth = {"Authorization": f"Bearer {secret}"}
    assert (await client.get("/api/v1/balance", headers=auth)).status == 200


@pytest.mark.parametrize(("fields", "bad"), [
    ({"name": ""}, "name"), ({"name": "a" * 65}, "name"), ({"scope": "admin"}, "scope"),
    ({"expires_in_days": "0"}, "expires_in_days"), ({"expires_in_days": "x"}, "expires_in_days"),
    ({"monthly_limit_credits": "-5"}, "monthly_limit_credits"),
    ({"name": "   "}, "name"),
])
async def test_a_bad_key_form_says_which_field_and_makes_nothing(
        client: Client, fields: dict[str, str], bad: str) -> None:
    await page_signup(client, "ada")
    response = await submit(client, "/cabinet/keys", "/cabinet/keys",
                            {"name": "nightly", "scope": "predict", **fields})
    html = await response.text()
    assert response.status == 422, html
    assert error_alerts(html) == ["Please correct the fields below."]
    assert f'id="{bad}-errors"' in html
    assert not SECRET_RE.search(html) and "No keys yet." in html


async def test_another_users_key_has_no_revoke_page(client: Client, aiohttp_client: Any
                                                    ) -> None:
    await page_signup(client, "ada")
    await make_key_on_the_page(client)
    key_id = re.findall(r'data-key-id="(key_[0-9a-f]{16})"',
                        await (await client.get("/cabinet/keys")).text())[0]
    bob = await aiohttp_client(client.server)
    await page_signup(bob, "bob")
    assert (await bob.get(f"/cabinet/keys/{key_id}/revoke")).status == 404
    token = await csrf_for(bob, "/cabinet/keys")
    revoke = await bob.post(f"/cabinet/keys/{key_id}/revoke", data={"csrf_token": token},
                            allow_redirects=False)
    assert revoke.status == 404


async def test_the_password_form_signs_out_other_browsers_and_says_keys_stay(
        client: Client, aiohttp_client: Any) -> None:
    await page_signup(client, "ada")
    other = await aiohttp_client(client.server)
    login = await submit(other, "/login", "/login", {"username": "ada", "password": PASSWORD})
    assert login.status == 303
    _, secret = await make_key_on_the_page(client)

    wrong = await submit(client, "/cabinet/keys", "/cabinet/password",
                         {"current_password": "not it at all", "new_password": "x" * 12})
    assert wrong.status == 422 and 'id="current_password-errors"' in await wrong.text()
    assert (await other.get("/cabinet", allow_redirects=False)).status == 200

    changed = await submit(client, "/cabinet/keys", "/cabinet/password",
                           {"current_password": PASSWORD, "new_password": "x" * 12})
    assert changed.status == 303
    page = text_of(await (await client.get("/cabinet/keys")).text())
    assert "API keys are separate credentials and keep working" in page
    assert "password changed" in page
    assert (await other.get("/cabinet", allow_redirects=False)).status == 303, "signed out"
    assert (await client.get("/cabinet", allow_redirects=False)).status == 200, "not this one"
    auth = {"Authorization": f"Bearer {secret}"}
    assert (await client.get("/api/v1/balance", headers=auth)).status == 200


async def test_log_out_everywhere_signs_this_browser_out_too(client: Client) -> None:
    await page_signup(client, "ada")
    response = await submit(client, "/cabinet/keys", "/cabinet/logout-all", {})
    assert response.status == 303 and response.headers["Location"] == "/login"
    assert (await client.get("/cabinet/keys", allow_redirects=False)).status == 303


async def test_the_keys_page_needs_a_signed_in_browser(client: Client) -> None:
    response = await client.get("/cabinet/keys", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/login"
