"""The API speaks the caller's Accept-Language in problem titles, details, field messages and
item reasons, while `type`, `code`, `status`, field names and numbers stay the same: a program
that reads codes works whatever language its user reads."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from tests.e2e.cabinet_http import ApiUser, api_signup, expect_problem

Client = TestClient[Any, Any]
RU = {"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.5"}
EN = {"Accept-Language": "en-GB,en;q=0.9"}
CYRILLIC = re.compile(r"[а-яё]", re.I)

Call = Callable[[Client, ApiUser, dict[str, str]], Awaitable[ClientResponse]]


async def _no_credits(client: Client, user: ApiUser, lang: dict[str, str]) -> ClientResponse:
    return await client.post("/api/v1/predict", json={"model_id": 1, "data": [1, 2, 3]},
                             headers={**user.auth, **lang})


async def _bad_amount(client: Client, user: ApiUser, lang: dict[str, str]) -> ClientResponse:
    return await client.post("/api/v1/balance/top-up", json={"amount": "x"},
                             headers={**user.auth, **lang})


async def _no_token(client: Client, user: ApiUser, lang: dict[str, str]) -> ClientResponse:
    return await client.get("/api/v1/balance", headers=lang)


async def _no_task(client: Client, user: ApiUser, lang: dict[str, str]) -> ClientResponse:
    return await client.get("/api/v1/tasks/tsk_nothere", headers={**user.auth, **lang})


async def _no_route(client: Client, user: ApiUser, lang: dict[str, str]) -> ClientResponse:
    return await client.get("/api/v1/no-such-thing", headers={**user.auth, **lang})


async def _no_valid_item(client: Client, user: ApiUser, lang: dict[str, str]
                         ) -> ClientResponse:
    return await client.post("/api/v1/predict", json={"model_id": 1, "data": ["x", None]},
                             headers={**user.auth, **lang})


@pytest.mark.parametrize(("call", "status", "code"), [
    (_no_credits, 402, "insufficient_balance"),
    (_bad_amount, 422, "validation_error"),
    (_no_token, 401, "unauthorized"),
    (_no_task, 404, "task_not_found"),
    (_no_route, 404, "not_found"),
    (_no_valid_item, 422, "no_valid_data"),
], ids=["402", "422", "401", "404", "404-route", "422-items"])
async def test_a_problem_keeps_its_code_in_both_languages(client: Client, call: Call,
                                                          status: int, code: str) -> None:
    user = await api_signup(client, "ada")
    english = await expect_problem(await call(client, user, EN), status, code)
    russian = await expect_problem(await call(client, user, RU), status, code)
    plain = await expect_problem(await call(client, user, {}), status, code)
    def without_task(body: dict[str, Any]) -> dict[str, Any]:  # each refusal is a new task
        return {k: v for k, v in body.items() if k != "task"}

    assert without_task(plain) == without_task(english), "English, as a caller always got"
    assert russian.keys() == english.keys()
    for same in ("type", "code", "status", "cost", "available"):
        assert russian.get(same) == english.get(same), same
    assert russian["title"] != english["title"] and CYRILLIC.search(russian["title"])
    assert CYRILLIC.search(russian["detail"]), russian["detail"]
    assert not CYRILLIC.search(english["title"] + english["detail"])
    if "errors" in english:
        assert russian["errors"].keys() == english["errors"].keys()
    if "invalid" in english:
        assert [(i["index"], i["value"]) for i in russian["invalid"]] == [
            (i["index"], i["value"]) for i in english["invalid"]]


async def test_russian_words_in_known_problems(client: Client) -> None:
    user = await api_signup(client, "ada")
    body = await expect_problem(await _bad_amount(client, user, RU), 422, "validation_error")
    assert body["title"] == "Запрос некорректен"
    assert body["errors"] == {"amount": ["Это не целое число."]}
    assert body["detail"] == "amount: Это не целое число."
    body = await expect_problem(await _no_credits(client, user, RU), 402, "insufficient_balance")
    assert body["title"] == "Недостаточно кредитов"
    assert body["detail"] == ("стоимость предсказания в кредитах: 3, доступно: 0; "
                              "ничего не списано")
    body = await expect_problem(await _no_valid_item(client, user, RU), 422, "no_valid_data")
    assert [i["error"] for i in body["invalid"]] == ["не число", "null — не число"]


async def test_item_reasons_of_a_prediction_follow_the_language(client: Client) -> None:
    user = await api_signup(client, "ada", top_up=10)
    answers = {}
    for name, lang in (("en", EN), ("ru", RU)):
        response = await client.post("/api/v1/predict",
                                     json={"model_id": 1, "data": [1, "x", True]},
                                     headers={**user.auth, **lang, "Idempotency-Key": name})
        assert response.status == 200, await response.text()
        answers[name] = await response.json()
    assert [i["error"] for i in answers["en"]["invalid"]] == [
        "not a number", "a boolean is not a number"]
    assert [i["error"] for i in answers["ru"]["invalid"]] == [
        "не число", "логическое значение — не число"]
    assert answers["ru"]["cost"] == answers["en"]["cost"] == 1
    task_id = answers["ru"]["task"]["id"]
    shown = await (await client.get(f"/api/v1/tasks/{task_id}",
                                    headers={**user.auth, **RU})).json()
    assert [i["error"] for i in shown["invalid"]] == ["не число", "логическое значение — не число"]
