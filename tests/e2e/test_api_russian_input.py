"""Russian-style input over the API: decimal commas in pasted data and `;` CSV files charged
for the values meant, never for the pieces of a split number; a comma that could be either
refused with 422 ambiguous_decimal_comma and nothing charged or recorded; CSV files saved in
Windows-1251 (real cp1251 bytes) read, declared or not, with Cyrillic text intact."""

from __future__ import annotations

import io
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from cabinet_http import ApiUser, api_signup, expect_problem

from ml import MLModelManager, catalogue
from web.app import create_app
from web.config import DEFAULT_MODELS_DIR, Config

Client = TestClient[Any, Any]
DOUBLER, IRIS = 1, 4
IRIS_HEADER = "sepal_length;sepal_width;petal_length;petal_width"


@pytest.fixture
async def client(aiohttp_client: Any, config: Config) -> Client:
    return await aiohttp_client(create_app(config, MLModelManager(catalogue(DEFAULT_MODELS_DIR))))


async def send(client: Client, user: ApiUser, model_id: int, *, data: str | None = None,
               file: bytes | None = None, content_type: str = "text/csv",
               charset: str | None = None) -> Any:
    form = FormData(default_to_multipart=True)
    form.add_field("model_id", str(model_id))
    if data is not None:
        form.add_field("data", data)
    if charset is not None:
        form.add_field("charset", charset)
    if file is not None:
        form.add_field("file", io.BytesIO(file), filename="выгрузка.csv",
                       content_type=content_type)
    return await client.post("/api/v1/predict", data=form, headers=user.auth)


async def money_and_tasks(client: Client, user: ApiUser) -> tuple[int, int]:
    balance = await (await client.get("/api/v1/balance", headers=user.auth)).json()
    tasks = await (await client.get("/api/v1/tasks?limit=100", headers=user.auth)).json()
    return int(balance["balance"]), len(tasks["data"])


async def test_pasted_decimal_commas_are_three_items_not_five(client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=100)

    response = await send(client, alice, DOUBLER, data="1,5; 2,25; 3")

    assert response.status == 200, await response.text()
    body = await response.json()
    assert [(p["input"], p["output"]) for p in body["predictions"]] == [
        (1.5, 3.0), (2.25, 4.5), (3.0, 6.0)]
    assert body["cost"] == 3
    assert await money_and_tasks(client, alice) == (97, 1)


@pytest.mark.parametrize("data", ["1,5,2", "1,5 2", "1,5"])
async def test_a_comma_that_could_be_either_is_refused_and_nothing_is_charged(
        client: Client, data: str) -> None:
    alice = await api_signup(client, "alice", top_up=100)

    problem = await expect_problem(await send(client, alice, DOUBLER, data=data), 422,
                                   "ambiguous_decimal_comma")

    assert "“;”" in problem["detail"] and "dot" in problem["detail"]
    assert problem["fragment"] == data
    assert await money_and_tasks(client, alice) == (100, 0)  # not even a rejected task


async def test_the_refusal_speaks_the_asked_language_with_the_same_code(
        client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=100)
    form = FormData(default_to_multipart=True)
    form.add_fields(("model_id", "1"), ("data", "1,5,2"))

    response = await client.post("/api/v1/predict", data=form,
                                  headers={**alice.auth, "Accept-Language": "ru-RU,ru;q=0.9"})

    problem = await expect_problem(response, 422, "ambiguous_decimal_comma")
    assert problem["title"] == "Запятая может быть и десятичной, и разделителем"
    assert problem["detail"].startswith("запятая в «1,5,2» может быть и десятичной")
    assert problem["fragment"] == "1,5,2"


async def test_iris_rows_pasted_from_a_russian_spreadsheet_are_predicted(
        client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=100)

    response = await send(client, alice, IRIS, data="5,1\t3,5\t1,4\t0,2\n7,7;3;6,1;2,3\n")

    assert response.status == 200, await response.text()
    body = await response.json()
    assert [p["input"]["sepal_length"] for p in body["predictions"]] == [5.1, 7.7]
    assert [p["output"]["label"] for p in body["predictions"]] == ["setosa", "virginica"]
    assert body["cost"] == 2


def russian_excel_csv(*rows: str) -> bytes:
    """What a Russian Excel's "CSV (разделители — точка с запятой)" writes: cp1251, `;`."""
    return "\r\n".join([IRIS_HEADER, *rows, ""]).encode("cp1251")


@pytest.mark.parametrize(("content_type", "charset"), [
    ("text/csv", None),                            # detected: the bytes are not UTF-8
    ("text/csv", "windows-1251"),                  # declared in a form field
    ("text/csv; charset=windows-1251", None),      # declared in the file's Content-Type
])
async def test_a_windows_1251_csv_with_decimal_commas_is_read_and_cyrillic_survives(
        client: Client, content_type: str, charset: str | None) -> None:
    alice = await api_signup(client, "alice", top_up=100)
    content = russian_excel_csv("5,1;3,5;1,4;0,2", "6,3;2,9;5,6;1,8", "5,9;нет данных;5,1;1,8")
    assert b"\xed\xe5\xf2" in content  # "нет" in cp1251: not UTF-8

    response = await send(client, alice, IRIS, file=content, content_type=content_type,
                          charset=charset)

    assert response.status == 200, await response.text()
    body = await response.json()
    assert [p["input"]["petal_length"] for p in body["predictions"]] == [1.4, 5.6]
    [invalid] = body["invalid"]
    assert invalid["value"]["sepal_width"] == "нет данных"
    assert invalid["line"] == 4
    assert body["cost"] == 2


async def test_a_cyrillic_header_in_windows_1251_is_named_in_the_refusal(
        client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=100)
    content = "длина;ширина\r\n5,1;3,5\r\n".encode("cp1251")

    problem = await expect_problem(await send(client, alice, IRIS, file=content), 422,
                                   "bad_csv_header")

    assert "длина, ширина" in problem["detail"]
    assert await money_and_tasks(client, alice) == (100, 0)


async def test_a_declared_charset_the_bytes_do_not_fit_or_an_unknown_one_is_refused(
        client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=100)
    content = russian_excel_csv("5,1;3,5;1,4;0,2", "5,9;нет;5,1;1,8")

    wrong = await expect_problem(await send(client, alice, IRIS, file=content,
                                            charset="utf-8"), 422, "validation_error")
    unknown = await expect_problem(await send(client, alice, IRIS, file=content,
                                              charset="koi8-r"), 422, "validation_error")

    assert "file" in wrong["errors"] and "charset" in unknown["errors"]
    assert await money_and_tasks(client, alice) == (100, 0)
