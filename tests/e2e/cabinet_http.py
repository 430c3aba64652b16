"""Helpers for driving ML Cabinet over real HTTP: accounts, tokens, forms and problems."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import unescape
from http.cookies import BaseCookie
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

PASSWORD = "correct horse battery"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}


@dataclass(frozen=True)
class ApiUser:
    id: int
    username: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def api_signup(client: TestClient[Any, Any], username: str,
                     top_up: int = 0) -> ApiUser:
    """Register, log in over the API and, when asked, add credits."""
    registered = await client.post("/api/v1/auth/register",
                                   json={"username": username, "password": PASSWORD})
    assert registered.status == 201, await registered.text()
    login = await client.post("/api/v1/auth/login",
                              json={"username": username, "password": PASSWORD})
    assert login.status == 200, await login.text()
    user = ApiUser((await registered.json())["id"], username,
                   (await login.json())["access_token"])
    if top_up:
        added = await client.post("/api/v1/balance/top-up", json={"amount": top_up},
                                  headers=user.auth)
        assert added.status == 201, await added.text()
    return user


async def expect_problem(response: ClientResponse, status: int, code: str) -> dict[str, Any]:
    """An RFC 9457 problem with this status and code; its body, for further checks."""
    text = await response.text()
    assert response.status == status, text
    assert response.content_type == "application/problem+json", response.content_type
    body: dict[str, Any] = await response.json(content_type=None)
    assert body.keys() >= PROBLEM_KEYS, body
    assert body["status"] == status
    assert body["code"] == code, body
    assert body["type"] and body["title"]
    return body


def csrf_from(html: str) -> str:
    found = CSRF_RE.search(html)
    assert found is not None, "the page has no csrf_token field"
    return unescape(found.group(1))


async def csrf_for(client: TestClient[Any, Any], page: str) -> str:
    response = await client.get(page)
    assert response.status == 200, await response.text()
    return csrf_from(await response.text())


async def submit(client: TestClient[Any, Any], page: str, action: str,
                 fields: dict[str, str]) -> ClientResponse:
    """What a person does: open the page, fill the form in, send it (redirects not followed)."""
    token = await csrf_for(client, page)
    return await client.post(action, data={**fields, "csrf_token": token},
                             allow_redirects=False)


async def page_signup(client: TestClient[Any, Any], username: str) -> None:
    """Sign up through the register form; the client's cookie jar is then signed in."""
    response = await submit(client, "/register", "/register",
                            {"username": username, "password": PASSWORD})
    assert response.status == 303, await response.text()
    assert response.headers["Location"] == "/cabinet"


def session_cookie(client: TestClient[Any, Any]) -> BaseCookie[str]:
    """The browser's copy of the session cookie, to replay later."""
    cookies = client.session.cookie_jar.filter_cookies(client.make_url("/"))
    assert "mlc_session" in cookies
    return cookies


def replace_cookies(client: TestClient[Any, Any], cookies: BaseCookie[str]) -> None:
    """Forget every cookie and put back an old one, as an attacker holding it would."""
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies(cookies, client.make_url("/"))


def stats(html: str) -> dict[str, int]:
    """The cabinet's balance figures as the page shows them."""
    found = re.findall(r"<dt>([^<]+)</dt>\s*<dd class=\"stat-value\">([\d,]+)", html)
    return {label: int(value.replace(",", "")) for label, value in found}


def error_alerts(html: str) -> list[str]:
    """The error messages a page shows at its top."""
    return [text_of(m) for m in re.findall(r'class="alert alert-error" role="alert">(.*?)</div>',
                                           html, re.S)]


def section(html: str, section_id: str) -> str:
    """The HTML of one <section id=...> of a page."""
    start = html.index(f'id="{section_id}"')
    return html[start:html.index("</section>", start)]


def text_of(html: str) -> str:
    """Visible text with tags dropped and whitespace squeezed, for plain-language asserts."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html))).strip()


# Whether the canvas holds any pixel that is not transparent: a chart, not an empty box.
INKED = """canvas => {
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let inked = 0;
  for (let i = 3; i < data.length; i += 4) { if (data[i] !== 0) inked++; }
  return inked;
}"""
