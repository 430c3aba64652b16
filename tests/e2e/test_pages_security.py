"""Forms only from our own pages, and security headers on every answer."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from cabinet_http import PASSWORD, api_signup, csrf_for, page_signup, stats

Client = TestClient[Any, Any]

FORMS = {
    "/register": {"username": "mallory", "password": PASSWORD},
    "/login": {"username": "alice", "password": PASSWORD},
    "/logout": {},
    "/cabinet/top-up": {"amount": "500"},
    "/cabinet/predict": {"model_id": "1", "data": "1 2 3"},
    "/cabinet/keys": {"name": "stolen", "scope": "predict"},
    "/cabinet/password": {"current_password": PASSWORD, "new_password": "mallory's choice"},
    "/cabinet/logout-all": {},
}


async def send_form(client: Client, action: str, token: str | None) -> Any:
    fields = dict(FORMS[action])
    if token is not None:
        fields["csrf_token"] = token
    if action == "/cabinet/predict":
        form = FormData()
        for name, value in fields.items():
            form.add_field(name, value)
        form.add_field("file", b"", filename="", content_type="application/octet-stream")
        return await client.post(action, data=form, allow_redirects=False)
    return await client.post(action, data=fields, allow_redirects=False)


@pytest.mark.parametrize("action", list(FORMS))
@pytest.mark.parametrize("token", [None, "", "forged-token"])
async def test_a_form_without_this_sessions_csrf_token_is_refused(
        client: Client, action: str, token: str | None) -> None:
    await page_signup(client, "alice")
    await client.post("/cabinet/top-up", data={"csrf_token": await csrf_for(client, "/cabinet"),
                                               "amount": "10"})

    response = await send_form(client, action, token)

    assert response.status == 403
    assert "The form has expired or did not come from this site." in await response.text()
    page = await client.get("/cabinet", allow_redirects=False)
    assert page.status == 200, "the refused logout must not sign the user out"
    assert stats(await page.text())["Balance"] == 10, "the refused form changed nothing"
    missing = await client.post("/api/v1/auth/login",
                                json={"username": "mallory", "password": PASSWORD})
    assert missing.status == 401, "the refused sign-up created no account"


async def test_a_csrf_token_from_another_session_is_refused(client: Client) -> None:
    await client.get("/login")
    others = await csrf_for(client, "/login")
    client.session.cookie_jar.clear()
    await client.get("/login")

    response = await client.post("/login", data={"username": "alice", "password": PASSWORD,
                                                 "csrf_token": others})

    assert response.status == 403


async def responses_of_every_kind(client: Client) -> dict[str, Any]:
    alice = await api_signup(client, "alice")
    return {
        "home": await client.get("/"),
        "register": await client.get("/register"),
        "login": await client.get("/login"),
        "docs": await client.get("/docs"),
        "redirect": await client.get("/cabinet", allow_redirects=False),
        "not found page": await client.get("/no-such-page"),
        "csrf refusal": await client.post("/login", data={}),
        "stylesheet": await client.get("/static/style.css"),
        "script": await client.get("/static/docs.js"),
        "api": await client.get("/api/v1/me", headers=alice.auth),
        "api error": await client.get("/api/v1/me"),
        "openapi": await client.get("/api/openapi.json"),
        "health": await client.get("/healthz"),
    }


async def test_every_response_has_the_security_headers(client: Client) -> None:
    for kind, response in (await responses_of_every_kind(client)).items():
        csp = response.headers.get("Content-Security-Policy", "")
        assert "frame-ancestors 'none'" in csp, kind
        assert "default-src 'self'" in csp, kind
        assert "unsafe-inline" not in csp, kind
        assert "unsafe-eval" not in csp, kind
        assert response.headers.get("X-Content-Type-Options") == "nosniff", kind
        assert response.headers.get("Referrer-Policy") in ("same-origin", "no-referrer",
                                                           "strict-origin-when-cross-origin")


async def test_pages_carry_no_inline_script_or_style(client: Client) -> None:
    await page_signup(client, "alice")
    for path in ("/", "/register", "/docs", "/cabinet"):
        html = await (await client.get(path)).text()
        assert "<script>" not in html, path
        assert "style=" not in html, path
        assert " on" + "click=" not in html, path
