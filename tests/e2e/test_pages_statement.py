"""The cabinet's exports and the printable statement ("выписка"): links from each history that
download with the page's session, the statement's figures, its range form, both languages."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from cabinet_http import csrf_for, error_alerts, page_signup, submit, text_of

from web import statement_pages

Client = TestClient[Any, Any]


async def top_up(client: Client, amount: str) -> None:
    response = await submit(client, "/cabinet", "/cabinet/top-up", {"amount": amount})
    assert response.status == 303


async def predict(client: Client, data: str) -> None:
    form = FormData()
    form.add_field("csrf_token", await csrf_for(client, "/cabinet"))
    form.add_field("model_id", "1")
    form.add_field("data", data)
    form.add_field("file", b"", filename="", content_type="application/octet-stream")
    assert (await client.post("/cabinet/predict", data=form, allow_redirects=False)).status == 303


def figures(html: str) -> dict[str, str]:
    found = re.findall(r"<dt>([^<]+)</dt><dd class=\"stat-value\">([^<]+)</dd>", html)
    return {label: value for label, value in found}


async def test_the_cabinet_links_each_history_to_its_export_and_the_session_downloads_it(
        client: Client) -> None:
    await page_signup(client, "ada")
    await top_up(client, "100")
    await predict(client, "1 2 3")
    html = await (await client.get("/cabinet")).text()
    links = re.findall(r'<a href="(/api/v1/[a-z]+/export\?format=[a-z]+)" download>', html)
    assert links == ["/api/v1/tasks/export?format=csv", "/api/v1/tasks/export?format=json",
                     "/api/v1/transactions/export?format=csv",
                     "/api/v1/transactions/export?format=json"]
    assert 'href="/cabinet/statement/print"' in html

    response = await client.get("/api/v1/transactions/export?format=csv")  # the cookie alone
    assert response.status == 200, await response.text()
    rows = list(csv.DictReader(io.StringIO(await response.text(), newline="")))
    assert [(r["kind"], r["amount"], r["balance_after"]) for r in rows] == [
        ("top_up", "100", "100"), ("charge", "-3", "97")]
    tasks = await (await client.get("/api/v1/tasks/export?format=json")).json()
    assert [(t["status"], t["cost"], t["input_data"]) for t in tasks] == [
        ("completed", 3, [1, 2, 3])]


async def test_the_statement_page_shows_the_month_with_its_totals(client: Client) -> None:
    await page_signup(client, "ada")
    await top_up(client, "100")
    await predict(client, "1 2 3")
    response = await client.get("/cabinet/statement/print")
    assert response.status == 200
    html = await response.text()
    assert figures(html) == {"Opening balance": "0", "Credits in": "100", "Credits out": "3",
                             "Closing balance": "97"}
    shown = text_of(html)
    assert "Statement of the account ada." in shown
    today = datetime.now(UTC).date()
    assert f'value="{today.replace(day=1)}"' in html and f'value="{today}"' in html
    assert "Top-up of the balance" in shown and "Charge to the balance" in shown
    assert "<style" not in html and "onclick" not in html and 'style="' not in html
    assert re.findall(r"<script[^>]*>", html) == [
        '<script src="/static/statement.js" defer>']
    assert f"/api/v1/transactions/export?from={today.replace(day=1)}&amp;to={today}" in html
    assert (await client.get("/static/statement.css")).status == 200


async def test_a_range_before_the_first_movement_opens_and_closes_at_zero(
        client: Client) -> None:
    await page_signup(client, "ada")
    await top_up(client, "100")
    html = await (await client.get("/cabinet/statement/print?from=2020-01-01&to=2020-01-31")
                  ).text()
    assert figures(html)["Closing balance"] == "0"
    assert "No credits moved on these days." in text_of(html)


async def test_a_bad_range_says_how_to_write_it(client: Client) -> None:
    await page_signup(client, "ada")
    response = await client.get("/cabinet/statement/print?from=2026-12-09&to=2026-12-01")
    assert response.status == 422
    assert error_alerts(await response.text()) == [
        "Enter the days as YYYY-MM-DD, the first no later than the last. The statement below "
        "is for this month to date."]
    assert (await client.get("/cabinet/statement/print?from=&to=")).status == 200


async def test_the_statement_speaks_russian(client: Client) -> None:
    await page_signup(client, "ada")
    await top_up(client, "1500")
    html = await (await client.get("/cabinet/statement/print?lang=ru&from=2026-01-01")).text()
    shown = text_of(html)
    assert '<html lang="ru">' in html
    assert "Выписка по счёту пользователя ada." in shown
    assert figures(html)["Исходящий остаток"] == "1\xa0500"
    assert "Пополнение баланса" in shown and "С 1 января 2026 г. по" in shown
    cabinet = text_of(await (await client.get("/cabinet")).text())
    assert "Скачать всю историю кредитов в CSV" in cabinet


async def test_the_statement_page_needs_a_sign_in(client: Client) -> None:
    response = await client.get("/cabinet/statement/print", allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (303, "/login")


async def test_past_the_rows_it_shows_the_totals_still_count_every_movement(
        client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(statement_pages, "MAX_SHOWN", 2)  # 2,000 in service
    await page_signup(client, "ada")
    for amount in ("10", "50", "100"):
        await top_up(client, amount)
    html = await (await client.get("/cabinet/statement/print")).text()
    assert html.count("Top-up of the balance") == 2
    assert figures(html)["Closing balance"] == "160"
    assert ("1 more movement of this range is not shown here; the totals count it."
            in text_of(html))
