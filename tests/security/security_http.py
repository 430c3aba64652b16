"""Helpers for the security tests: users registered and logged in through the public API,
CSRF tokens read from pages, and rows counted straight from the SQLite file, so a test can
prove that a refused request left no trace in the ledger.
"""

from __future__ import annotations

import functools
import json
import re
import sqlite3
from collections.abc import Awaitable, Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import schemathesis
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient

from web.config import Config
from web.openapi import build_openapi

PASSWORD = "correct horse battery"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    password: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def app_config(db_path: Path, **overrides: Any) -> Config:
    return Config(db_path=db_path, **{"cheap_password_hashing": True, **overrides})


def scalar(db_path: Path, query: str, params: tuple[Any, ...] = ()) -> Any:
    """One value read from the file through a connection of its own, as an auditor would."""
    with closing(sqlite3.connect(db_path)) as conn:
        row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]


def count_rows(db_path: Path, table: str = "events") -> int:
    return int(scalar(db_path, f"SELECT COUNT(*) FROM {table}"))


async def register(client: Client, username: str, password: str = PASSWORD) -> int:
    response = await client.post("/api/v1/auth/register",
                                 json={"username": username, "password": password})
    assert response.status == 201, await response.text()
    return int((await response.json())["id"])


async def login(client: Client, username: str, password: str = PASSWORD) -> str:
    response = await client.post("/api/v1/auth/login",
                                 json={"username": username, "password": password})
    assert response.status == 200, await response.text()
    return str((await response.json())["access_token"])


async def new_account(client: Client, username: str, credits: int = 0) -> Account:
    """A registered, logged-in user with `credits` on the balance."""
    user_id = await register(client, username)
    account = Account(user_id, username, PASSWORD, await login(client, username))
    if credits:
        response = await client.post("/api/v1/balance/top-up", json={"amount": credits},
                                     headers=account.auth)
        assert response.status == 201, await response.text()
    return account


async def balance(client: Client, account: Account) -> dict[str, int]:
    response = await client.get("/api/v1/balance", headers=account.auth)
    assert response.status == 200
    return dict(await response.json())


async def csrf_from(client: Client, path: str) -> str:
    """The CSRF token a page's forms carry for the client's current session."""
    response = await client.get(path)
    assert response.status == 200, path
    found = CSRF_RE.search(await response.text())
    assert found is not None, f"no CSRF token on {path}"
    return found.group(1)


async def page_login(client: Client, username: str, password: str = PASSWORD) -> None:
    """Log in through the HTML form, as a browser would; the client keeps the cookie."""
    token = await csrf_from(client, "/login")
    response = await client.post("/login", allow_redirects=False, data={
        "csrf_token": token, "username": username, "password": password})
    assert response.status == 303, await response.text()


async def expect_problem(response: ClientResponse, status: int, *codes: str) -> dict[str, Any]:
    """An RFC 9457 problem with this status and (one of) these codes, as the OpenAPI document
    describes it for the operation; returns its body."""
    text = await response.text()
    assert response.status == status, text[:500]
    assert response.content_type == "application/problem+json", response.content_type
    await expect_documented(response)
    body: dict[str, Any] = json.loads(text)
    assert body["status"] == status
    if codes:
        assert body["code"] in codes, body
    return body


@functools.cache
def openapi_document() -> dict[str, Any]:
    return build_openapi()


@functools.cache
def api_schema() -> Any:
    """The OpenAPI document the app serves, loaded by schemathesis to validate replies."""
    return schemathesis.openapi.from_dict(openapi_document())


def _template(path: str) -> str | None:
    template: str
    for template in openapi_document()["paths"]:
        if re.fullmatch(re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)), path):
            return template
    return None


async def expect_documented(response: ClientResponse) -> None:
    """The status, content type and body are the ones documented for this operation.

    A reply to a path the document does not list (a page, a static file) is not checked."""
    method, template = response.method.lower(), _template(response.url.path)
    if template is None:
        return
    operation = openapi_document()["paths"][template].get(method)
    assert operation is not None, f"{method.upper()} {template} is not documented"
    documented = operation["responses"].get(str(response.status))
    assert documented is not None, (
        f"{response.status} is not documented for {method.upper()} {template}")
    content = await response.read()
    if "content" not in documented:
        assert content == b"", f"{response.status} is documented without a body"
        return
    assert response.content_type in documented["content"], response.content_type
    request = requests.Request(response.method, str(response.url)).prepare()
    api_schema()[template][method].validate_response(schemathesis.Response(
        status_code=response.status, content=content, request=request, elapsed=0.0,
        verify=True, headers={k.lower(): response.headers.getall(k) for k in response.headers}))
