"""The cabinet page: balance, top-ups, predictions by text and CSV, history, task pages."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from cabinet_http import (
    api_signup,
    csrf_for,
    error_alerts,
    page_signup,
    section,
    stats,
    text_of,
)

from web.keys import PUBLIC_IDS
from web.public_ids import TASK

Client = TestClient[Any, Any]


async def cabinet(client: Client, query: str = "") -> str:
    response = await client.get(f"/cabinet{query}")
    assert response.status == 200
    return await response.text()


async def top_up(client: Client, amount: str, custom: str = "") -> str:
    """Press a top-up button; the cabinet page the redirect lands on."""
    token = await csrf_for(client, "/cabinet")
    response = await client.post("/cabinet/top-up", data={
        "csrf_token": token, "amount": amount, "custom_amount": custom},
        allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/cabinet"
    return await cabinet(client)


async def run_prediction(client: Client, model_id: str = "1", data: str = "",
                         csv: str | None = None) -> Any:
    form = FormData()
    form.add_field("csrf_token", await csrf_for(client, "/cabinet"))
    form.add_field("model_id", model_id)
    form.add_field("data", data)
    if csv is None:
        form.add_field("file", b"", filename="", content_type="application/octet-stream")
    else:
        form.add_field("file", csv.encode(), filename="values.csv", content_type="text/csv")
    return await client.post("/cabinet/predict", data=form, allow_redirects=False)


async def predicted(client: Client, **kwargs: Any) -> str:
    response = await run_prediction(client, **kwargs)
    assert response.status == 303, await response.text()
    return await cabinet(client)


def rows(html: str, section_id: str) -> int:
    return len(re.findall(r"<tr>\s*<(?:td|th scope=\"row\")", section(html, section_id)))


async def test_a_new_cabinet_shows_zero_balance_held_and_available(client: Client) -> None:
    await page_signup(client, "alice")

    html = await cabinet(client)

    assert stats(html) == {"Balance": 0, "On hold": 0, "Available": 0}
    assert "No predictions yet" in html
    assert "No credit movements yet" in html


async def test_a_preset_top_up_adds_credits(client: Client) -> None:
    await page_signup(client, "alice")

    html = await top_up(client, "50")

    assert "Added 50 credits." in html
    assert stats(html) == {"Balance": 50, "On hold": 0, "Available": 50}
    assert rows(html, "transactions") == 1


async def test_a_custom_top_up_adds_the_typed_amount(client: Client) -> None:
    await page_signup(client, "alice")

    html = await top_up(client, "custom", " 1234 ")

    assert "Added 1,234 credits." in html
    assert stats(html)["Balance"] == 1234


@pytest.mark.parametrize("typed", ["", "abc", "12.5", "-5", "0", "1000001", "1e3",
                                   "99999999999"])
async def test_an_invalid_custom_amount_is_explained_and_adds_nothing(
        client: Client, typed: str) -> None:
    await page_signup(client, "alice")

    html = await top_up(client, "custom", typed)

    [message] = error_alerts(html)
    assert "whole number of credits from 1 to 1,000,000" in message
    assert stats(html)["Balance"] == 0


async def test_a_pasted_prediction_shows_its_result_and_the_skipped_items(
        client: Client) -> None:
    await page_signup(client, "alice")
    await top_up(client, "10")

    html = await predicted(client, data="1, 2.5\nx")

    text = text_of(html)
    assert "Predicted 2 items for 2 credits. 1 invalid item was skipped." in text
    result = text_of(section(html, "result"))
    assert "Item #3 x not a number" in result
    assert "#1 1.0 2.0" in result
    assert "#2 2.5 5.0" in result
    assert stats(html)["Balance"] == 8


async def test_a_csv_upload_is_predicted_and_its_bad_cells_shown_escaped(
        client: Client) -> None:
    await page_signup(client, "alice")
    await top_up(client, "10")

    html = await predicted(client, model_id="2",
                           csv="value\n3\n<script>alert(1)</script>\n4\n")

    result = section(html, "result")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in result
    assert "<script>alert" not in html
    assert "not a number" in result
    assert "#1 3.0 10.0" in text_of(result)
    assert stats(html)["Balance"] == 6


async def test_no_valid_item_is_explained_and_nothing_is_charged(client: Client) -> None:
    await page_signup(client, "alice")
    await top_up(client, "10")

    response = await run_prediction(client, data="x y")

    assert response.status == 422
    html = await response.text()
    assert "No item is a valid number; nothing was charged." in html
    assert text_of(section(html, "result")).count("not a number") == 2
    assert stats(html)["Balance"] == 10
    assert "No predictions yet" in html


async def test_too_few_credits_is_explained_and_nothing_is_charged(client: Client) -> None:
    await page_signup(client, "alice")
    await top_up(client, "10")

    response = await run_prediction(client, model_id="2", data="1 2 3 4 5 6")

    assert response.status == 402
    html = await response.text()
    assert ">1 2 3 4 5 6</textarea>" in html
    assert ("Not enough credits: this prediction costs 12 and 10 are available. "
            "Nothing was charged.") in text_of(html)
    assert stats(html)["Balance"] == 10
    assert rows(html, "transactions") == 1


async def test_an_empty_or_unknown_model_request_is_explained(client: Client) -> None:
    await page_signup(client, "alice")
    await top_up(client, "10")

    empty = await run_prediction(client, data="")
    unknown = await run_prediction(client, data="1", model_id="99")

    assert empty.status == 422
    assert error_alerts(await empty.text()) == ["Send at least one item. Nothing was charged."]
    assert unknown.status == 404
    html = await unknown.text()
    assert error_alerts(html) == ["There is no model 99. Nothing was charged."]
    assert stats(html)["Balance"] == 10


async def test_credit_history_shows_10_a_page(client: Client) -> None:
    await page_signup(client, "alice")
    for amount in range(1, 13):
        await top_up(client, str(amount) if amount in (10, 50) else "custom", str(amount))

    first = await cabinet(client)
    second = await cabinet(client, "?tx_page=2")

    assert rows(first, "transactions") == 10
    assert 'href="?tx_page=2&amp;tasks_page=1#transactions"' in first
    assert rows(second, "transactions") == 2
    assert "Page 2" in text_of(section(second, "transactions"))
    assert stats(second)["Balance"] == sum(range(1, 13))
    amounts = re.findall(r"plus </span><span aria-hidden=\"true\">\+</span>(\d+)",
                         section(second, "transactions"))
    assert amounts == ["2", "1"]


async def test_prediction_history_shows_10_a_page(client: Client) -> None:
    await page_signup(client, "alice")
    await top_up(client, "100")
    for n in range(11):
        await predicted(client, data=str(n))

    first = await cabinet(client)
    second = await cabinet(client, "?tasks_page=2")

    assert rows(first, "tasks") == 10
    assert rows(second, "tasks") == 1
    assert rows(first, "transactions") == 10
    assert stats(second)["Balance"] == 89


async def test_a_task_page_shows_inputs_predictions_and_skipped_items(
        client: Client) -> None:
    await page_signup(client, "alice")
    await top_up(client, "10")
    html = await predicted(client, data="4 <b>bold</b>")
    task_id = re.search(r'href="/cabinet/tasks/(tsk_[0-9a-z]{13})"', html)
    assert task_id is not None

    response = await client.get(f"/cabinet/tasks/{task_id.group(1)}")

    assert response.status == 200
    page = await response.text()
    text = text_of(page)
    assert f"Task {task_id.group(1)}" in text
    assert "#1 4.0 8.0" in text
    assert "&lt;b&gt;bold&lt;/b&gt;" in page
    assert "<b>bold" not in page
    # A link saved before ids were opaque (the plain number) shows the same task.
    plain = client.server.app[PUBLIC_IDS].parse(TASK, task_id.group(1))
    old_link = await client.get(f"/cabinet/tasks/{plain}")
    assert old_link.status == 200
    assert f"Task {task_id.group(1)}" in text_of(await old_link.text())
    assert f"Task #{plain}" not in text_of(page)


async def test_another_users_task_page_is_not_found(client: Client) -> None:
    bob = await api_signup(client, "bob", top_up=10)
    bobs_task = await client.post("/api/v1/predict", json={"model_id": 1, "data": [1]},
                                  headers=bob.auth)
    task_id = (await bobs_task.json())["task"]["id"]
    await page_signup(client, "alice")

    plain = client.server.app[PUBLIC_IDS].parse(TASK, task_id)
    for path in (f"/cabinet/tasks/{task_id}", f"/cabinet/tasks/{plain}", "/cabinet/tasks/999",
                 "/cabinet/tasks/x", "/cabinet/tasks/tsk_zzzzzzzzzzzzz"):
        response = await client.get(path)
        assert response.status == 404, path
        assert response.content_type == "text/html"
        assert "There is no such task in your history." in await response.text()
