"""The language switch: ?lang= is remembered, the browser's preference is heard, the API
listens to Accept-Language only."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

Client = TestClient[Any, Any]


def html_lang(body: str) -> str:
    found = re.search(r'<html lang="([a-z]+)"', body)
    assert found, "the page names its language"
    return found.group(1)


async def test_a_chosen_language_is_remembered_across_pages(client: Client) -> None:
    first = await client.get("/login?lang=ru")
    assert first.status == 200
    assert html_lang(await first.text()) == "ru"
    assert first.cookies["mlc_lang"].value == "ru"
    later = await client.get("/register")  # the cookie jar carries the choice
    assert html_lang(await later.text()) == "ru"
    assert later.headers["Content-Language"] == "ru"
    back = await client.get("/register?lang=en")
    assert html_lang(await back.text()) == "en"


async def test_the_browser_preference_decides_when_nothing_was_chosen(client: Client) -> None:
    page = await client.get("/login", headers={"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.5"})
    assert html_lang(await page.text()) == "ru"
    page = await client.get("/login", headers={"Accept-Language": "de-DE"})
    assert html_lang(await page.text()) == "en"


async def test_the_switcher_links_to_both_languages(client: Client) -> None:
    body = await (await client.get("/login")).text()
    assert 'href="/login?lang=ru"' in body and ">Русский<" in body
    assert 'href="/login?lang=en"' in body and ">English<" in body
