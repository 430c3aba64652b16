"""The cabinet's Usage page without JavaScript: the table per day, the models, month to date,
the range picker refusing a bad range, the chart's data for the script, the strict CSP, and
the page in Russian."""

from __future__ import annotations

import json
import re
from datetime import date
from html import unescape
from typing import Any

from aiohttp import FormData
from aiohttp.test_utils import TestClient
from cabinet_http import csrf_for, error_alerts, page_signup, submit, text_of

Client = TestClient[Any, Any]


async def predict(client: Client, model_id: str, data: str) -> None:
    form = FormData()
    form.add_field("csrf_token", await csrf_for(client, "/cabinet"))
    form.add_field("model_id", model_id)
    form.add_field("data", data)
    form.add_field("file", b"", filename="", content_type="application/octet-stream")
    response = await client.post("/cabinet/predict", data=form, allow_redirects=False)
    assert response.status == 303, await response.text()


def rows(html: str, table_id: str) -> list[list[str]]:
    start = html.index(f'id="{table_id}"')
    body = html[html.index("<tbody>", start):html.index("</tbody>", start)]
    return [[text_of(cell) for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)]


async def signed_in_with_charges(client: Client) -> None:
    await page_signup(client, "ada")
    response = await submit(client, "/cabinet", "/cabinet/top-up", {"amount": "100"})
    assert response.status == 303
    await predict(client, "1", "1 2 3")
    await predict(client, "2", "4")


async def test_the_usage_page_shows_today_models_and_month_without_javascript(
        client: Client) -> None:
    await signed_in_with_charges(client)
    cabinet = await (await client.get("/cabinet")).text()
    assert 'href="/cabinet/usage"' in cabinet  # linked from the cabinet

    response = await client.get("/cabinet/usage")
    assert response.status == 200 and response.headers["Cache-Control"] == "no-store"
    html = await response.text()
    days = rows(html, "usage-days")
    today = date.fromisoformat(re.findall(r'<time datetime="([0-9-]+)">', html)[-1])
    assert len(days) == today.day  # this month, every day, zeros included
    assert days[-1] == [str(today), "2", "4", "5"]
    assert all(row[1:] == ["0", "0", "0"] for row in days[:-1])
    assert rows(html, "usage-models") == [["Doubler", "1", "3", "3"],
                                          ["Linear trend", "1", "1", "2"]]
    assert re.search(r'id="month-credits">5<', html)

    chart = json.loads(unescape(re.search(
        r'<script type="application/json" id="usage-chart-data">(.*?)</script>', html,
        re.S).group(1)))  # type: ignore[union-attr]
    assert chart["credits"][-1] == 5 and len(chart["dates"]) == today.day
    scripts = re.findall(r"<script([^>]*)>", html)
    assert all("src=" in s or 'type="application/json"' in s for s in scripts)  # none inline
    assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]
    assert "style=" not in html


async def test_a_range_is_picked_and_a_bad_one_is_refused_with_reasons(client: Client) -> None:
    await signed_in_with_charges(client)
    html = await (await client.get("/cabinet/usage?from=2024-02-27&to=2024-03-01")).text()
    assert [row[0] for row in rows(html, "usage-days")] == [
        "2024-02-27", "2024-02-28", "2024-02-29", "2024-03-01"]
    assert "Nothing was charged in this range." in html

    response = await client.get("/cabinet/usage?from=2026-12-05&to=2026-12-01")
    assert response.status == 422
    html = await response.text()
    assert error_alerts(html) == ["Please correct the dates below; this month is shown "
                                  "meanwhile."]
    assert "The first day must not be after the last day." in html
    assert 'value="2026-12-05"' in html  # the form keeps what was typed

    response = await client.get("/cabinet/usage?from=2020-01-01&to=2026-01-01")
    assert response.status == 422
    assert "A range is at most 366 days long." in await response.text()


async def test_the_usage_page_in_russian(client: Client) -> None:
    await signed_in_with_charges(client)
    response = await client.get("/cabinet/usage?lang=ru&from=2026-12-01&to=2026-12-02")
    html = await response.text()
    assert "<h1>Расходы</h1>" in html
    assert "1 декабря 2026 г." in html and "Итого за период" in html
    response = await client.get("/cabinet/usage?from=2020-01-01&to=2026-01-01")
    assert "Период — не длиннее 366 дней." in await response.text()


async def test_the_usage_page_needs_a_login(client: Client) -> None:
    response = await client.get("/cabinet/usage", allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (303, "/login")
