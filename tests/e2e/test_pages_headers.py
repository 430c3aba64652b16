"""Served like a production site: every page and every static file, with the headers a
browser, a cache and a scanner see (caching, compression, security headers, no versions)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import re
import urllib.parse
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient
from cabinet_http import PASSWORD, api_signup, submit

from web.app import create_app
from web.config import Config
from web.keys import ADMIN

STATIC = Path(__file__).resolve().parents[2] / "web" / "static"
SECURITY = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
NOT_PAGES = ("/api/", "/static", "/healthz", "/readyz", "/metrics")
STATIC_URL_RE = re.compile(r'(?:href|src)="(/static/[^"?]+\?v=[^"]+)"')


def assert_security_headers(headers: Any, where: str) -> None:
    for name, value in SECURITY.items():
        assert headers.get(name) == value, (where, name, headers.get(name))
    assert "default-src 'self'" in headers["Content-Security-Policy"], where
    assert "camera=()" in headers["Permissions-Policy"], where
    assert headers["Server"] == "ML Cabinet", where  # no software name, no version


async def every_page(client: TestClient[Any, Any]) -> list[str]:
    """Each GET page of the route table, with real ids for the ones that take one."""
    user = await api_signup(client, "ada", top_up=10)
    done = await client.post("/api/v1/predict", headers=user.auth,
                             json={"model_id": 1, "data": [1]})
    signed_in = await submit(client, "/login", "/login",
                             {"username": "ada", "password": PASSWORD})
    assert signed_in.status == 303
    key = await client.post("/api/v1/keys", headers=user.auth,
                            json={"name": "k", "scope": "read"})
    assert await client.app[ADMIN].set_role("ada", True, "test")  # the /admin pages too
    ids = {"task_id": str((await done.json())["task"]["id"]),
           "key_id": str((await key.json())["id"]), "user_id": str(user.id)}
    pages = []
    for resource in client.app.router.resources():
        info = resource.get_info()
        path = info.get("path") or info.get("formatter", "")
        if path.startswith(NOT_PAGES) or not any(
                route.method == "GET" for route in resource):
            continue
        pages.append(re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path))
    return pages


async def test_every_page_is_private_to_caches_secured_and_described(
        tmp_path: Path, aiohttp_client: Any) -> None:
    client = await aiohttp_client(create_app(Config(db_path=tmp_path / "h.db",
                                                    cheap_password_hashing=True)))
    pages = await every_page(client)
    assert {"/", "/login", "/register", "/cabinet", "/docs", "/cabinet/keys"} <= set(pages)
    for page in [*pages, "/no-such-page"]:
        reply = await client.get(page, allow_redirects=False)
        assert reply.status in (200, 404), (page, reply.status)
        assert_security_headers(reply.headers, page)
        # A page may hold a CSRF token, a session cookie or a user's data: never stored.
        assert reply.headers["Cache-Control"] == "no-store", page
        html = await reply.text()
        if reply.status == 200 and page != "/cabinet/statement":
            assert re.search(r'<meta name="description" content="[^"]{40,}">', html), page
    for anonymous in ("/login", "/register"):  # the pages that set a session cookie first
        fresh = await aiohttp_client(create_app(Config(db_path=tmp_path / "h.db",
                                                       cheap_password_hashing=True)))
        reply = await fresh.get(anonymous)
        assert "mlc_session=" in reply.headers.get("Set-Cookie", "")
        assert reply.headers["Cache-Control"] == "no-store"


async def test_static_files_are_compressed_hashed_and_cached_for_a_year(
        tmp_path: Path, aiohttp_client: Any) -> None:
    client = await aiohttp_client(create_app(Config(db_path=tmp_path / "s.db",
                                                    cheap_password_hashing=True)))
    html = await (await client.get("/")).text()
    linked = STATIC_URL_RE.findall(html)
    assert any("/static/style.css?v=" in url for url in linked), linked
    raw = aiohttp.ClientSession(auto_decompress=False)
    try:
        for url in linked:
            name = url.split("?")[0].removeprefix("/static/")
            async with raw.get(client.make_url(url),
                               headers={"Accept-Encoding": "gzip, br"}) as reply:
                body = await reply.read()
                assert reply.status == 200
                assert_security_headers(reply.headers, url)
                assert reply.headers["Cache-Control"] == "public, max-age=31536000, immutable"
                assert reply.headers["Content-Encoding"] == "gzip", url
                assert reply.headers["Vary"] == "Accept-Encoding"
                assert reply.headers["ETag"].startswith('"'), "a strong ETag"
                original = (STATIC / name).read_bytes()
                assert gzip.decompress(body) == original
                assert len(body) < len(original)
            async with raw.get(client.make_url(url),
                               headers={"Accept-Encoding": "identity"}) as plain:
                assert "Content-Encoding" not in plain.headers
                assert await plain.read() == (STATIC / name).read_bytes()
        # A bare name (an old link, a curl) is revalidated, never trusted for a year.
        bare = await client.get("/static/style.css")
        assert bare.headers["Cache-Control"] == "no-cache"
        again = await client.get("/static/style.css",
                                 headers={"If-None-Match": bare.headers["ETag"]})
        assert again.status == 304
        missing = await client.get("/static/no-such.css?v=abc")
        assert missing.status == 404 and missing.headers["Cache-Control"] == "no-store"
        assert_security_headers(missing.headers, "a missing static file")
    finally:
        await raw.close()


async def test_a_static_url_names_the_files_content(tmp_path: Path,
                                                    aiohttp_client: Any) -> None:
    """So a new release, whose file differs, is a new URL that no cache has seen."""
    client = await aiohttp_client(create_app(Config(db_path=tmp_path / "r.db",
                                                    cheap_password_hashing=True)))
    html = await (await client.get("/")).text()
    for url in STATIC_URL_RE.findall(html):
        path, version = url.split("?v=")
        version = urllib.parse.unquote(version)
        content = (STATIC / path.removeprefix("/static/")).read_bytes()
        digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).decode()
        assert version == digest, url
