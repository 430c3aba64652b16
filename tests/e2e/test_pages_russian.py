"""The pages a person uses, in Russian and in English: key sentences of each language, Russian
plural forms on the page, dates in the account's zone, and no English left on a Russian page."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient

from tests.e2e.cabinet_http import (
    PASSWORD,
    api_signup,
    csrf_for,
    error_alerts,
    section,
    submit,
    text_of,
)
from web.keys import ADMIN

Client = TestClient[Any, Any]

# Words of the English pages that must not show on a Russian one (whole words, case-sensitive).
ENGLISH = ("Balance", "credits", "credit", "Top up", "Log in", "Log out", "Sign up",
           "Password", "Username", "Prediction", "Predictions", "Model", "Status", "Charged",
           "History", "Keys", "Limit", "limit", "Today", "Back", "Page", "Created", "Invalid",
           "Task", "Welcome", "Added", "Nothing", "row", "rows", "item", "items", "Not Found",
           "Summary", "Home", "none", "never", "Revoke", "Save", "Time zone", "the", "and",
           "of", "is", "was", "were", "spent", "left", "Line", "Item", "Row", "Top-up",
           "Charge", "insufficient_balance", "validation_error")
# What stays in any language: the brand, names people and models chose, code and formats.
NAMES = ("ML Cabinet", "English", "Doubler", "Linear trend", "Diabetes progression",
         "Iris species", "setosa", "versicolor", "virginica", "Europe/Moscow", "UTC",
         "OpenAPI", "REST API", "API", "JSON", "CSV")


def visible_words(html: str) -> str:
    """The page's text and its read-aloud attributes, without code samples and names."""
    body = html[html.index("<body"):]
    body = re.sub(r"<code[^>]*>.*?</code>|<pre.*?</pre>|<textarea.*?</textarea>", " ", body,
                  flags=re.S)
    said = re.findall(r'(?:aria-label|title|placeholder|data-label)="([^"]*)"', body)
    text = text_of(body) + " " + " ".join(said)
    for name in NAMES:
        text = text.replace(name, " ")
    return text


def english_left(html: str, *allowed: str) -> list[str]:
    text = visible_words(html)
    for word in allowed:
        text = text.replace(word, " ")
    return [w for w in ENGLISH if re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", text)]


async def page(client: Client, path: str) -> str:
    response = await client.get(path)
    assert response.status == 200, await response.text()
    return await response.text()


async def sign_up(client: Client, lang: str, username: str = "ada") -> str:
    await client.get(f"/register?lang={lang}")  # the choice is remembered in a cookie
    response = await submit(client, "/register", "/register",
                            {"username": username, "password": PASSWORD})
    assert response.status == 303
    return await page(client, "/cabinet")


async def predict(client: Client, data: str, model_id: str = "1") -> Any:
    form = FormData()
    form.add_field("csrf_token", await csrf_for(client, "/cabinet"))
    form.add_field("model_id", model_id)
    form.add_field("data", data)
    form.add_field("file", b"", filename="", content_type="application/octet-stream")
    return await client.post("/cabinet/predict", data=form, allow_redirects=False)


def status_message(html: str) -> str:
    found = re.search(r'class="alert alert-success" role="status">(.*?)</div>', html, re.S)
    assert found, "the page shows a notice"
    return text_of(found.group(1))


SAID = {
    "ru": {"welcome": "Добро пожаловать, ada! Пополните баланс, чтобы запустить первое "
                      "предсказание.",
           "balance": "21 кредит", "added": "Зачислен 21 кредит.",
           "predicted": "Предсказаны 2 элемента за 2 кредита. 1 некорректный элемент пропущен.",
           "history": ("История операций", "Пополнение", "Списание", "Личный кабинет",
                       "Предсказание №1: Doubler, 2 × 1 кредит", "Выйти", "Пополнить баланс"),
           "charged": "2 кредита", "reason": "не число", "where": "Элемент №2",
           "counted": ("Предсказано 2 элемента", "1 элемент пропущен и не оплачен")},
    "en": {"welcome": "Welcome, ada! Top up to run your first prediction.",
           "balance": "21 credits", "added": "Added 21 credits.",
           "predicted": "Predicted 2 items for 2 credits. 1 invalid item was skipped.",
           "history": ("Credit history", "Top-up", "Charge", "Cabinet",
                       "Prediction #1: Doubler, 2 × 1 credits", "Log out", "Top up"),  # as stored
           "charged": "2 credits", "reason": "not a number", "where": "Item #2",
           "counted": ("Predicted 2 items", "1 item was skipped and not charged")},
}


@pytest.mark.parametrize("lang", ["ru", "en"])
async def test_the_cabinet_with_balance_history_and_a_prediction(client: Client,
                                                                  lang: str) -> None:
    said = SAID[lang]
    html = await sign_up(client, lang)
    assert status_message(html) == said["welcome"]
    done = await submit(client, "/cabinet", "/cabinet/top-up",
                        {"amount": "custom", "custom_amount": "21"})
    assert done.status == 303
    html = await page(client, "/cabinet")
    assert status_message(html) == said["added"]
    balance = re.search(r"<dd class=\"stat-value\">(.*?)</dd>", html, re.S)
    assert balance and text_of(balance.group(1)) == said["balance"]

    assert (await predict(client, "1, x, 3")).status == 303
    html = await page(client, "/cabinet")
    assert status_message(html) == said["predicted"]
    text = text_of(html)
    for sentence in said["history"]:
        assert sentence in text, sentence
    result = text_of(section(html, "result"))
    assert said["charged"] in result and said["reason"] in result and said["where"] in result
    for counted in said["counted"]:  # a one-number model's inputs are items, not rows
        assert counted in result, counted
    if lang == "ru":
        assert re.search(r"\d{1,2} [а-я]+ \d{4} г\., \d\d:\d\d UTC", text), "a Russian date"
        assert english_left(html) == []


@pytest.mark.parametrize("lang", ["ru", "en"])
async def test_the_task_page(client: Client, lang: str) -> None:
    await sign_up(client, lang)
    await submit(client, "/cabinet", "/cabinet/top-up", {"amount": "100"})
    await predict(client, "1\nnull\n3\ntrue")
    html = await page(client, "/cabinet")
    link = re.search(r'href="(/cabinet/tasks/tsk_[^"]+)"', html)
    assert link
    html = await page(client, link.group(1))
    text = text_of(html)
    if lang == "ru":
        for sentence in ("Сводка", "Элементы с ошибками (2) — пропущены и не оплачены",
                         "Корректные элементы 2", "Элемент Входное значение Предсказание",
                         "Входные данные и предсказания", "2 кредита", "Элемент №2 null не число",
                         "Элемент №4 true не число", "Вернуться в личный кабинет"):
            assert sentence in text, sentence
        assert english_left(html) == []
        assert "Строк" not in text  # a one-number model's inputs are items (элементы), not rows
    else:
        for sentence in ("Summary", "Invalid items (2) — skipped and not charged",
                         "Valid items 2", "Item Input Prediction",
                         "Inputs and predictions", "2 credits", "Item #2 null not a number",
                         "Item #4 true not a number", "Back to cabinet"):
            assert sentence in text, sentence
        assert not re.search(r"\b[Rr]ows?\b", text)


@pytest.mark.parametrize(("lang", "sentences"), [
    ("ru", ("С возвращением", "Имя пользователя", "Пароль", "Впервые здесь? Создайте аккаунт")),
    ("en", ("Welcome back", "Username", "Password", "New here? Create an account")),
])
async def test_the_login_page_and_a_wrong_password(client: Client, lang: str,
                                                   sentences: tuple[str, ...]) -> None:
    html = await page(client, f"/login?lang={lang}")
    for sentence in sentences:
        assert sentence in text_of(html)
    token = await csrf_for(client, "/login")
    wrong = await client.post("/login", data={"csrf_token": token, "username": "nobody",
                                              "password": "wrong password"})
    assert wrong.status == 401
    assert error_alerts(await wrong.text()) == [
        "Неверное имя пользователя или пароль." if lang == "ru"
        else "Wrong username or password."]
    if lang == "ru":
        assert english_left(await wrong.text()) == []


@pytest.mark.parametrize(("lang", "error", "field"), [
    ("ru", "Исправьте поля ниже.", "Длина должна быть от 8 до 256."),
    ("en", "Please correct the fields below.", "Length must be between 8 and 256."),
])
async def test_the_register_page_says_what_to_fix(client: Client, lang: str, error: str,
                                                  field: str) -> None:
    html = await page(client, f"/register?lang={lang}")
    assert ("Создание аккаунта" if lang == "ru" else "Create your account") in text_of(html)
    response = await submit(client, "/register", "/register",
                            {"username": "ada", "password": "short"})
    assert response.status == 422
    html = await response.text()
    assert error_alerts(html) == [error]
    assert field in text_of(html)
    if lang == "ru":
        assert english_left(html) == []


@pytest.mark.parametrize("lang", ["ru", "en"])
async def test_the_keys_page(client: Client, lang: str) -> None:
    await sign_up(client, lang)
    response = await submit(client, "/cabinet/keys", "/cabinet/keys",
                            {"name": "nightly", "scope": "read", "expires_in_days": "",
                             "monthly_limit_credits": "21"})
    assert response.status == 201
    html = await response.text()
    text = text_of(html)
    if lang == "ru":
        for sentence in ("API-ключи и безопасность", "Ваш новый ключ «nightly»",
                         "Скопируйте его сейчас: он показывается один раз.", "21 кредит",
                         "только чтение", "никогда", "Журнал безопасности", "вход",
                         "создан ключ", "со страницы"):
            assert sentence in text, sentence
        assert "'nightly' (только чтение)" in text and "(read)" not in text
        assert english_left(html) == []
    else:
        for sentence in ("API keys and security", "Your new key “nightly”",
                         "Copy it now: it is shown this once.", "21 credits", "read",
                         "never", "Security log", "login", "key created", "page"):
            assert sentence in text, sentence


@pytest.mark.parametrize("lang", ["ru", "en"])
async def test_the_limits_page_in_the_accounts_zone(client: Client, lang: str) -> None:
    await sign_up(client, lang)
    saved = await submit(client, "/cabinet/limits", "/cabinet/limits",
                         {"daily_credits": "101", "monthly_credits": ""})
    assert saved.status == 303
    html = await page(client, "/cabinet/limits")
    assert status_message(html) == ("Лимиты расходов сохранены." if lang == "ru"
                                    else "Spend limits saved.")
    moved = await submit(client, "/cabinet/limits", "/cabinet/time-zone",
                         {"time_zone": "Europe/Moscow"})
    assert moved.status == 303
    html = await page(client, "/cabinet/limits")
    text = text_of(html)
    if lang == "ru":
        assert status_message(html) == "Часовой пояс изменён на Europe/Moscow."
        assert "0 кредитов потрачено" in text and "Осталось 101 из 101" in text
        assert re.search(r"период заканчивается \d{1,2} [а-я]+ \d{4} г\., 00:00 Europe/Moscow",
                         text), "the day ends at midnight in Moscow"
        assert english_left(html) == []
    else:
        assert status_message(html) == "Time zone set to Europe/Moscow."
        assert "0 credits spent" in text and "101 of 101 left" in text
        assert re.search(r"the period ends \d{4}-\d\d-\d\d 00:00:00 Europe/Moscow", text)


@pytest.mark.parametrize(("lang", "title", "lead"), [
    ("ru", "Не найдено", "Мы не нашли такую страницу."),
    ("en", "Not Found", "We couldn't find that page."),
])
async def test_the_not_found_page(client: Client, lang: str, title: str, lead: str) -> None:
    response = await client.get(f"/no-such-page?lang={lang}")
    assert response.status == 404
    html = await response.text()
    assert f'<h1 id="error-title">{title}</h1>' in html
    assert lead in text_of(html)
    if lang == "ru":
        assert english_left(html) == []
        await sign_up(client, "ru")
        missing = await client.get("/cabinet/tasks/tsk_nothere")
        assert missing.status == 404
        assert "В вашей истории нет такой задачи." in text_of(await missing.text())


async def test_a_refused_prediction_speaks_russian_without_raw_codes(client: Client) -> None:
    await sign_up(client, "ru")
    response = await predict(client, "1, 2, 3")
    assert response.status == 402
    html = await response.text()
    assert error_alerts(html) == [
        "Недостаточно кредитов: стоимость предсказания — 3, а доступно 0. Ничего не списано."]
    assert "insufficient" not in html and english_left(html) == []


async def test_the_statement_speaks_russian_in_every_row(client: Client) -> None:
    """The statement's rows use the same macros as the cabinet: their numbers, read-aloud
    signs and stored descriptions are said in the page's language, not in English."""
    await sign_up(client, "ru")
    done = await submit(client, "/cabinet", "/cabinet/top-up",
                        {"amount": "custom", "custom_amount": "1500"})
    assert done.status == 303
    assert (await predict(client, "1, 2")).status == 303
    html = await page(client, "/cabinet/statement/print")
    text = text_of(html)
    assert re.search(r"плюс \+ 1\s500 ", text) and "минус − 2 " in text
    assert "Пополнение" in text and "Предсказание №1: Doubler, 2 × 1 кредит" in text
    assert "1,500" not in text and english_left(html) == []


async def test_the_usage_page_speaks_russian_with_one_full_stop_after_a_date(
        client: Client) -> None:
    await sign_up(client, "ru")
    done = await submit(client, "/cabinet", "/cabinet/top-up",
                        {"amount": "custom", "custom_amount": "1500"})
    assert done.status == 303
    assert (await predict(client, "1, 2")).status == 303
    html = await page(client, "/cabinet/usage")
    text = text_of(html)
    assert re.search(r"С 1 [а-я]+ \d{4} г\.(?!\.)", text), "Since the first of the month"
    chart_data = re.compile(r"<script[^>]*>.*?</script>", re.S)  # JSON keys, not words shown
    assert "г.." not in text and english_left(chart_data.sub(" ", html)) == []


async def test_an_operators_adjustment_is_named_so_on_the_statement(client: Client) -> None:
    olga, ada = await api_signup(client, "olga"), await api_signup(client, "ada")
    assert await client.app[ADMIN].set_role("olga", True, "test")
    await client.app[ADMIN].adjust(olga.id, ada.id, 15, "компенсация за сбой")
    await client.get("/login?lang=ru")
    assert (await submit(client, "/login", "/login",
                         {"username": "ada", "password": PASSWORD})).status == 303
    html = await page(client, "/cabinet/statement/print")
    row = re.search(r"<tbody>.*?</tbody>", html, re.S)
    assert row and "Корректировка" in text_of(row.group(0))
    assert "Списание" not in text_of(row.group(0))  # a credit is not a charge
    assert 'data-label="Сумма, кредитов"' in html  # a card per movement on a phone


@pytest.mark.parametrize(("lang", "said"), [
    ("ru", "Отклонено до запуска: недостаточно кредитов. Ничего не списано."),
    ("en", "Rejected before it ran: not enough credits. Nothing was charged."),
])
async def test_a_rejected_tasks_page_says_why_in_words(client: Client, lang: str,
                                                        said: str) -> None:
    await sign_up(client, lang)
    assert (await predict(client, "1, 2, 3")).status == 402
    cabinet = await page(client, "/cabinet")
    task_link = re.search(r'href="(/cabinet/tasks/tsk_\w+)"', cabinet)
    assert task_link
    html = await page(client, task_link.group(1))
    assert said in error_alerts(html) and "insufficient_balance" not in html


async def test_the_operator_console_says_stored_english_in_russian(client: Client) -> None:
    """The console's histories: the command line's grant reason and the stored descriptions
    of movements are said in the page's language; numbers are grouped the Russian way."""
    await api_signup(client, "olga")
    ada = await api_signup(client, "ada", top_up=1500)
    assert await client.app[ADMIN].set_role("olga", True, "root")
    await client.get("/login?lang=ru")
    assert (await submit(client, "/login", "/login",
                         {"username": "olga", "password": PASSWORD})).status == 303
    actions = text_of(await page(client, "/admin/actions"))
    assert "из командной строки, пользователь ОС root" in actions
    assert "from the command line" not in actions
    user = await page(client, f"/admin/users/{ada.id}")
    text = text_of(user)
    assert "Пополнение" in text and "Top-up" not in text
    assert re.search(r"плюс \+ 1\s500 ", text), "the top-up, grouped and said in Russian"
