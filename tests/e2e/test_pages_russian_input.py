"""Russian-style input through the cabinet's form: pasted decimal commas predicted and charged
for the values meant, an ambiguous comma refused with a message that says how to write it
(nothing charged, the text kept in the form), and a Windows-1251 CSV file read."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from cabinet_http import csrf_for, error_alerts, page_signup, stats, text_of

from ml import MLModelManager, catalogue
from web.app import create_app
from web.config import DEFAULT_MODELS_DIR, Config

Client = TestClient[Any, Any]


@pytest.fixture
async def client(aiohttp_client: Any, config: Config) -> Client:
    client: Client = await aiohttp_client(
        create_app(config, MLModelManager(catalogue(DEFAULT_MODELS_DIR))))
    await page_signup(client, "alice")
    response = await client.post("/cabinet/top-up", data={
        "csrf_token": await csrf_for(client, "/cabinet"), "amount": "custom",
        "custom_amount": "10"}, allow_redirects=False)
    assert response.status == 303
    return client


async def send(client: Client, model_id: str, data: str = "",
               file: bytes | None = None) -> tuple[int, str]:
    form = FormData()
    form.add_field("csrf_token", await csrf_for(client, "/cabinet"))
    form.add_field("model_id", model_id)
    form.add_field("data", data)
    form.add_field("file", file or b"", filename="данные.csv" if file else "",
                   content_type="text/csv" if file else "application/octet-stream")
    response = await client.post("/cabinet/predict", data=form)
    return response.status, await response.text()


async def test_pasted_decimal_commas_are_predicted_as_three_items(client: Client) -> None:
    status, html = await send(client, "1", "1,5; 2,25; 3")

    assert status == 200
    assert "Predicted 3 items for 3 credits." in text_of(html)
    assert stats(html)["Balance"] == 7


async def test_an_ambiguous_comma_is_refused_with_how_to_write_it(client: Client) -> None:
    status, html = await send(client, "1", "1,5,2")

    assert status == 422
    [message] = error_alerts(html)
    assert "1,5,2" in message and "“;”" in message and "dot" in message
    assert "Nothing was charged." in message
    assert "ambiguous_decimal_comma" not in html  # never a raw code in front of a person
    assert stats(html)["Balance"] == 10
    assert ">1,5,2</textarea>" in html  # the text is kept to be corrected


async def test_a_windows_1251_csv_is_read_by_the_form(client: Client) -> None:
    content = ("sepal_length;sepal_width;petal_length;petal_width\r\n"
               "5,1;3,5;1,4;0,2\r\n5,9;нет;5,1;1,8\r\n").encode("cp1251")

    status, html = await send(client, "4", file=content)

    assert status == 200
    page = text_of(html)
    assert "Predicted 1 row for 1 credit. 1 invalid row was skipped." in page
    assert "нет" in page  # the invalid cell, shown as written
    assert stats(html)["Balance"] == 9


async def test_in_russian_the_refusal_reads_as_a_russian_sentence(client: Client) -> None:
    assert (await client.get("/cabinet?lang=ru")).status == 200  # remembered in a cookie

    status, html = await send(client, "1", "1,5 2")

    assert status == 422
    [message] = error_alerts(html)
    assert message == ("Запятая в «1,5 2» может быть и десятичной, и разделителем значений. "
                       "Разделяйте значения точкой с запятой или переводом строки (1,5; 2) "
                       "либо пишите дробную часть через точку (1.5, 2). Кредиты не списаны.")
