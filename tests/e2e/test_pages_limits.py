"""The cabinet's spend limits: set on the Limits page, shown on the cabinet with what is spent
and left, a warning past 80 %, a refusal that says which limit, and bad values refused."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from cabinet_http import csrf_for, error_alerts, page_signup, section, submit, text_of

Client = TestClient[Any, Any]


async def set_limits(client: Client, daily: str, monthly: str = "") -> Any:
    return await submit(client, "/cabinet/limits", "/cabinet/limits",
                        {"daily_credits": daily, "monthly_credits": monthly})


async def top_up(client: Client, amount: str) -> None:
    response = await submit(client, "/cabinet", "/cabinet/top-up", {"amount": amount})
    assert response.status == 303


async def predict(client: Client, data: str) -> Any:
    form = FormData()
    form.add_field("csrf_token", await csrf_for(client, "/cabinet"))
    form.add_field("model_id", "1")
    form.add_field("data", data)
    form.add_field("file", b"", filename="", content_type="application/octet-stream")
    return await client.post("/cabinet/predict", data=form, allow_redirects=False)


async def test_limits_set_on_the_page_show_on_the_cabinet_with_spent_and_left(
        client: Client) -> None:
    await page_signup(client, "ada")
    await top_up(client, "100")
    response = await set_limits(client, "10", "1000")
    assert (response.status, response.headers["Location"]) == (303, "/cabinet/limits")
    assert (await predict(client, "1 2 3")).status == 303

    html = await (await client.get("/cabinet")).text()
    shown = text_of(section(html, "limits"))
    assert "7 of 10 left" in shown and "997 of 1,000 left" in shown
    assert "limit-warning" not in html


async def test_past_80_percent_the_cabinet_warns(client: Client) -> None:
    await page_signup(client, "ada")
    await top_up(client, "100")
    await set_limits(client, "10")
    assert (await predict(client, "1 2 3 4 5 6 7 8 9")).status == 303
    html = await (await client.get("/cabinet")).text()
    assert "You have spent 90 % of your daily limit: 1 of 10 credits left" in text_of(html)


async def test_a_prediction_past_the_limit_is_refused_with_the_limit_named(
        client: Client) -> None:
    await page_signup(client, "ada")
    await top_up(client, "100")
    await set_limits(client, "2")
    response = await predict(client, "1 2 3")
    assert response.status == 402
    [alert] = error_alerts(await response.text())
    assert alert.startswith("Spend limit reached: this prediction costs 3 and your daily "
                            "limit has 2 left until")
    assert alert.endswith("Nothing was charged.")


async def test_the_time_zone_is_set_on_the_page(client: Client) -> None:
    await page_signup(client, "ada")
    response = await submit(client, "/cabinet/limits", "/cabinet/time-zone",
                            {"time_zone": "Asia/Kolkata"})
    assert response.status == 303
    html = await (await client.get("/cabinet/limits")).text()
    assert "Time zone set to Asia/Kolkata." in text_of(html)
    # Times are shown in the account's zone (issue 10): the period ends at Kolkata's midnight.
    assert "00:00:00 Asia/Kolkata" in text_of(html)


@pytest.mark.parametrize("daily", ["-1", "1.5", "abc", "1e3", "99999999999999"])
async def test_a_bad_limit_is_refused_on_the_page_and_nothing_changes(
        client: Client, daily: str) -> None:
    await page_signup(client, "ada")
    response = await set_limits(client, daily)
    assert response.status == 422
    assert "Please correct the fields below." in error_alerts(await response.text())
    html = await (await client.get("/cabinet/limits")).text()
    assert 'id="daily_credits" name="daily_credits" type="number" min="0" step="1" ' \
           'inputmode="numeric" value=""' in html


@pytest.mark.parametrize("zone", ["Mars/Olympus", "<script>", "../etc/passwd"])
async def test_a_bad_time_zone_is_refused_on_the_page(client: Client, zone: str) -> None:
    await page_signup(client, "ada")
    response = await submit(client, "/cabinet/limits", "/cabinet/time-zone",
                            {"time_zone": zone})
    assert response.status == 422
    assert "<script>" not in await response.text()


async def test_the_forms_need_the_csrf_token(client: Client) -> None:
    await page_signup(client, "ada")
    response = await client.post("/cabinet/limits", data={"daily_credits": "1"},
                                 allow_redirects=False)
    assert response.status == 403
    response = await client.post("/cabinet/time-zone", data={"time_zone": "UTC"},
                                 allow_redirects=False)
    assert response.status == 403
