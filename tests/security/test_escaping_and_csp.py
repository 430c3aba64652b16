"""Whatever a user typed comes back escaped, and the Content-Security-Policy (no inline script,
scripts from this origin only) is on every response: pages, error pages of every status,
the API, and static files."""

from __future__ import annotations

import io
from html.parser import HTMLParser
from typing import Any

import pytest
from aiohttp import ClientResponse, FormData, web
from security_http import Client, MakeClient, app_config, csrf_from, new_account, page_login

from web.app import create_app

SCRIPT = "<script>alert(1)</script>"
TOKENS = [SCRIPT, '"><img/src/onerror=alert(2)>', "</textarea><svg/onload=alert(3)>",
          "{{7*7}}"]  # a template expression must not be evaluated either


class Page(HTMLParser):
    """The elements and the decoded text (attribute values included) of an HTML page."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.texts: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        self.texts.extend(value for _, value in attrs if value)

    def handle_data(self, data: str) -> None:
        self.texts.append(data)


def no_markup_of_the_users(html: str) -> Page:
    """No element or attribute a browser would run, other than the site's own script file."""
    page = Page(html)
    for tag, attrs in page.elements:
        assert not [name for name in attrs if name.startswith("on")], (tag, attrs)
        assert tag not in ("svg", "iframe", "object", "embed"), tag
        if tag == "script" and attrs.get("type") == "application/json" and "src" not in attrs:
            continue  # a data block the site's script reads (tojson-escaped); never executed
        if tag in ("script", "img"):
            assert str(attrs.get("src", "")).startswith("/static/"), (tag, attrs)
    return page


def shown_as_text(html: str, typed: str) -> None:
    """`typed` is on the page as the characters the user typed, not as markup."""
    assert any(typed in text for text in no_markup_of_the_users(html).texts), typed


async def test_a_username_typed_at_login_comes_back_escaped(client: Client) -> None:
    token = await csrf_from(client, "/login")

    response = await client.post("/login", data={
        "csrf_token": token, "username": SCRIPT, "password": "whatever it is"})

    assert response.status == 401
    shown_as_text(await response.text(), SCRIPT)


async def test_a_username_typed_at_sign_up_comes_back_escaped(client: Client) -> None:
    token = await csrf_from(client, "/register")

    response = await client.post("/register", data={
        "csrf_token": token, "username": SCRIPT, "password": "long enough password"})

    assert response.status == 422
    shown_as_text(await response.text(), SCRIPT)


async def predict_on_the_page(client: Client, data: str) -> ClientResponse:
    token = await csrf_from(client, "/cabinet")
    form = FormData({"csrf_token": token, "model_id": "1", "data": data},
                    default_to_multipart=True)
    return await client.post("/cabinet/predict", data=form)


async def test_invalid_items_typed_in_the_cabinet_come_back_escaped(client: Client) -> None:
    await new_account(client, "alice", credits=100)
    await page_login(client, "alice")

    response = await predict_on_the_page(client, "\n".join(TOKENS))

    assert response.status == 422  # no valid item: the form is shown again with the reasons
    page = await response.text()
    for typed in TOKENS:
        shown_as_text(page, typed)


async def test_invalid_items_stored_with_a_task_are_shown_escaped(client: Client) -> None:
    alice = await new_account(client, "alice", credits=100)
    await page_login(client, "alice")
    stored = await client.post("/api/v1/predict", json={"model_id": 1, "data": [1, *TOKENS]},
                               headers=alice.auth)
    assert stored.status == 200
    task_id = (await stored.json())["task"]["id"]

    page = await (await client.get(f"/cabinet/tasks/{task_id}")).text()
    for typed in TOKENS:
        shown_as_text(page, typed)
    no_markup_of_the_users(await (await client.get("/cabinet")).text())


# -- the CSP on every kind of response -------------------------------------------------------

def policy(response: ClientResponse) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy", "")
    assert "unsafe-inline" not in header and "unsafe-eval" not in header, header
    return {name: values for name, *values in (part.split() for part in header.split(";")
                                               if part.strip())}


def assert_locked_down(response: ClientResponse) -> None:
    directives = policy(response)
    assert directives["script-src"] == ["'self'"], response.url
    assert directives["default-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["base-uri"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["form-action"] == ["'self'"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"


async def boom(request: web.Request) -> web.Response:
    raise RuntimeError("internal detail that must not leak")


@pytest.fixture
async def site(make_client: MakeClient, db_path: Any) -> Client:
    """The app with one extra page and one API route that fail, for the 500 answers."""
    app = create_app(app_config(db_path))
    app.router.add_get("/boom", boom)
    app.router.add_get("/api/v1/boom", boom)
    client = await make_client(app=app)
    await new_account(client, "alice", credits=10)
    return client


REQUESTS = {
    "home": ("GET", "/", 200), "login": ("GET", "/login", 200),
    "sign up": ("GET", "/register", 200), "docs": ("GET", "/docs", 200),
    "cabinet": ("GET", "/cabinet", 200), "404 page": ("GET", "/no/such/page", 404),
    "404 task": ("GET", "/cabinet/tasks/999", 404),
    "403 form without CSRF": ("POST", "/cabinet/top-up", 403),
    "405 page": ("GET", "/logout", 405), "500 page": ("GET", "/boom", 500),
    "413 page": ("POST", "/login", 413),
    "stylesheet": ("GET", "/static/style.css", 200), "script": ("GET", "/static/docs.js", 200),
    "icon": ("GET", "/static/favicon.svg", 200),
    "missing static": ("GET", "/static/nope.css", 404),
    "traversal": ("GET", "/static/%2e%2e/app.py", 404),
    "API 401": ("GET", "/api/v1/me", 401), "API 404": ("GET", "/api/v1/nope", 404),
    "API 405": ("PUT", "/api/v1/predict", 405), "API 500": ("GET", "/api/v1/boom", 500),
    "OpenAPI": ("GET", "/api/openapi.json", 200), "health": ("GET", "/healthz", 200),
}


@pytest.mark.parametrize(("method", "path", "status"), REQUESTS.values(), ids=REQUESTS.keys())
async def test_every_response_carries_the_locked_down_policy(
        site: Client, method: str, path: str, status: int) -> None:
    await page_login(site, "alice")
    body = io.BytesIO(b"x=" + b"x" * (3 * 1024 * 1024)) if status == 413 else None
    form = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}

    response = await site.request(method, path, data=body, headers=form, allow_redirects=False)

    assert response.status == status
    assert_locked_down(response)
    text = await response.text()
    assert "internal detail" not in text
    if response.content_type == "text/html":  # nothing a browser would run inline
        no_markup_of_the_users(text)
