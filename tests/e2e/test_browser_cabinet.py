"""A person in real Chromium: sign up, top up, upload a CSV of iris rows with a bad row, read
the result table and the history, and see the form kept after an error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from browser_kit import LAPTOP, PHONE, SCREENSHOTS
from cabinet_http import INKED
from playwright.async_api import Browser, Page, expect

pytestmark = pytest.mark.browser


async def shoot(page: Page, name: str) -> None:
    for size, viewport in (("laptop", LAPTOP), ("phone", PHONE)):
        await page.set_viewport_size(viewport)
        await page.screenshot(path=SCREENSHOTS / f"{name}-{size}.png", full_page=True)
    await page.set_viewport_size(LAPTOP)


async def test_sign_up_top_up_and_predict_from_a_csv_with_a_bad_row(
        browser: Browser, base_url: str, tmp_path: Path) -> None:
    context = await browser.new_context(viewport=LAPTOP, base_url=base_url)
    context.set_default_timeout(10_000)
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))

    await page.goto("/")
    await expect(page.get_by_role("heading", name="Models and prices")).to_be_visible()
    await shoot(page, "home")
    await page.get_by_role("link", name="Sign up").first.click()
    await page.get_by_label("Username").fill("alice")
    await page.get_by_label("Password").fill("correct horse battery")
    await page.get_by_role("button", name="Sign up").click()

    await expect(page).to_have_url(f"{base_url}/cabinet")
    await expect(page.get_by_role("status")).to_contain_text("Welcome, alice!")
    balance = page.locator(".stat", has_text="Balance").locator(".stat-value")
    await expect(balance).to_have_text(re.compile(r"^\s*0\s+credits\s*$"))

    await page.get_by_role("button", name="+100").click()
    await expect(page.get_by_role("status")).to_have_text("Added 100 credits.")
    await page.get_by_label("Or enter an amount").fill("250")
    await page.get_by_role("button", name="Top up", exact=True).click()
    await expect(page.get_by_role("status")).to_have_text("Added 250 credits.")
    await expect(balance).to_contain_text("350")

    model = page.get_by_label("Model")
    hints = page.locator(".model-hint")
    await model.select_option(label="Iris species — 1 credit per item, max 5,000 items")
    await expect(hints.locator("visible=true")).to_have_count(1)
    iris_hint = page.locator('.model-hint[data-model-id="4"]')
    await expect(iris_hint).to_contain_text("sepal_length")
    await expect(iris_hint).to_contain_text("3.9 to 8.3")
    await expect(iris_hint).to_contain_text("setosa, versicolor, virginica")
    await shoot(page, "cabinet-form")

    csv = tmp_path / "flowers.csv"
    csv.write_text("sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n"
                   "6.4,3.2,4.5,1.5\n5.9,3.0,n/a,1.8\n7.7,3.0,6.1,2.3\n")
    await page.set_input_files("#file", csv)
    await page.get_by_role("button", name="Run prediction").click()

    await expect(page.get_by_role("status")).to_have_text(
        "Predicted 3 rows for 3 credits. 1 invalid row was skipped.")
    result = page.locator("#result")
    bad_row = result.locator("table.table-invalid tbody tr")
    await expect(bad_row).to_have_count(1)
    await expect(bad_row).to_contain_text("Line 4")
    await expect(bad_row).to_contain_text("petal_length")
    await expect(bad_row).to_contain_text("not a number")
    predictions = result.locator("table.table-results")
    await expect(predictions.locator("thead")).to_contain_text("petal_width")
    await expect(predictions.locator("thead")).to_contain_text("Label")
    labels = predictions.locator("tbody .label-chip")
    await expect(labels).to_have_text(["setosa", "versicolor", "virginica"])
    await expect(balance).to_contain_text("347")

    task_row = page.locator("#tasks tbody tr")
    await expect(task_row).to_have_count(1)
    await expect(task_row).to_contain_text("Completed")
    await expect(task_row).to_contain_text("Iris species")
    await expect(task_row.locator("td.num").last).to_have_text("3")
    charge_row = page.locator("#transactions tbody tr").first
    await expect(charge_row).to_contain_text("Charge")
    await expect(charge_row).to_contain_text("−3")
    await expect(charge_row).to_contain_text("347")
    await expect(page.locator("#transactions tbody tr")).to_have_count(3)
    await shoot(page, "cabinet")

    await charge_row.get_by_role("link").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Task tsk_")
    await expect(page.locator("table.table-invalid")).to_contain_text("Line 4")
    await expect(page.locator(".facts")).to_contain_text("Model version")
    await shoot(page, "task")

    # An error keeps the form: pasted text and a file together are refused, nothing charged.
    await page.goto("/cabinet")
    await model.select_option(label="Iris species — 1 credit per item, max 5,000 items")
    await page.get_by_label("Paste values or rows").fill("5.1 3.5 1.4 0.2")
    await page.set_input_files("#file", csv)
    await page.get_by_role("button", name="Run prediction").click()
    await expect(page.get_by_role("alert")).to_contain_text(
        "Paste values or upload a file, not both")
    await expect(page.get_by_label("Paste values or rows")).to_have_value("5.1 3.5 1.4 0.2")
    await expect(page.locator(".kept-file")).to_contain_text("flowers.csv (4 rows) is kept")
    await expect(model).to_have_value("4")
    await expect(balance).to_contain_text("347")
    await shoot(page, "cabinet-error")

    # Rows pasted one per line for the regression: one column per feature and the number.
    await page.get_by_label("Do not use flowers.csv").check()
    await model.select_option(label="Diabetes progression — 3 credits per item, max 5,000 items")
    await page.get_by_label("Paste values or rows").fill(
        "59 2 32.1 101 157 93.2 38 4 4.8598 87\n48 1 21.6 87 183 103.2 70 3 3.8918 69")
    await page.get_by_role("button", name="Run prediction").click()
    await expect(page.get_by_role("status")).to_have_text("Predicted 2 rows for 6 credits.")
    table = page.locator("#result table.table-results")
    await expect(table.locator("thead th")).to_have_count(12)
    await expect(table.locator("tbody tr")).to_have_count(2)
    await expect(balance).to_contain_text("341")
    await shoot(page, "cabinet-diabetes")

    await page.goto("/docs")
    await expect(page.locator("#api-docs")).to_contain_text("/api/v1/predict")
    await shoot(page, "docs")

    # Chromium logs the refused form's 422 page; anything else (a CSP violation) is a failure.
    refused = "Failed to load resource: the server responded with a status of 422"
    assert [p for p in problems if not p.startswith(refused)] == [], problems
    assert len(problems) == 1, problems
    await context.close()


async def test_make_a_key_copy_it_once_and_revoke_it(browser: Browser, base_url: str) -> None:
    context = await browser.new_context(viewport=LAPTOP, base_url=base_url)
    await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)
    context.set_default_timeout(10_000)
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))

    await page.goto("/register")
    await page.get_by_label("Username").fill("ada")
    await page.get_by_label("Password").fill("correct horse battery")
    await page.get_by_role("button", name="Sign up").click()
    await page.get_by_role("link", name="Keys", exact=True).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("API keys and security")
    await page.get_by_label("Name").fill("nightly")
    await page.get_by_label("read: balance, history").check()
    await page.get_by_role("button", name="Create key").click()

    secret_field = page.get_by_label("Secret key (read)")
    secret = await secret_field.input_value()
    assert secret.startswith("mlc_") and len(secret) == 47
    await page.get_by_role("button", name="Copy").click()  # shown by keys.js
    await expect(page.locator("#copy-status")).to_have_text("Copied.")
    assert await page.evaluate("navigator.clipboard.readText()") == secret
    await shoot(page, "keys-new")

    await page.goto("/cabinet/keys")
    assert secret not in await page.content()
    row = page.locator("tr.key-row")
    await expect(row).to_contain_text(f"{secret[:8]}…{secret[-4:]}")
    await row.get_by_role("link", name="Revoke…").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("nightly")
    await page.get_by_role("button", name="Revoke this key").click()
    await expect(page.get_by_role("status")).to_contain_text("is revoked")
    await expect(row).to_contain_text("Revoked")
    await expect(page.locator("#security-log")).to_contain_text("key revoked")
    await shoot(page, "keys")
    assert problems == [], problems
    await context.close()


async def test_in_russian_sign_up_top_up_and_predict(browser: Browser, base_url: str) -> None:
    """The switcher in the header turns the cabinet Russian, and it stays Russian: plural
    forms, numbers with spaces, dates in Russian; screenshots on a laptop and a phone."""
    context = await browser.new_context(viewport=LAPTOP, base_url=base_url,
                                        locale="en-US")  # the switcher, not the browser, decides
    context.set_default_timeout(10_000)
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))

    await page.goto("/register")
    await page.get_by_role("link", name="Русский").click()
    await expect(page.locator("html")).to_have_attribute("lang", "ru")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Создание аккаунта")
    await page.get_by_label("Имя пользователя").fill("alice")
    await page.get_by_label("Пароль").fill("correct horse battery")
    await page.get_by_role("button", name="Зарегистрироваться").click()

    await expect(page).to_have_url(f"{base_url}/cabinet")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Личный кабинет")
    await expect(page.get_by_role("status")).to_contain_text("Добро пожаловать, alice!")
    balance = page.locator(".stat", has_text="Баланс").locator(".stat-value")
    await expect(balance).to_have_text(re.compile(r"^\s*0\s+кредитов\s*$"))
    await page.get_by_label("Или введите сумму").fill("1021")
    await page.get_by_role("button", name="Пополнить баланс", exact=True).click()
    await expect(page.get_by_role("status")).to_have_text("Зачислен 1\xa0021 кредит.")
    await expect(balance).to_have_text(re.compile(r"^\s*1\xa0021\s+кредит\s*$"))

    model = page.get_by_label("Модель")
    await model.select_option(label="Doubler — 1 кредит за элемент, максимум 1\xa0000 элементов")
    await page.get_by_label("Вставьте значения или строки").fill("1, 2, x, 4")
    await page.get_by_role("button", name="Запустить предсказание").click()
    await expect(page.get_by_role("status")).to_have_text(
        "Предсказаны 3 элемента за 3 кредита. 1 некорректный элемент пропущен.")
    await expect(page.locator("#result table.table-invalid")).to_contain_text("не число")
    await expect(balance).to_contain_text("1\xa0018")
    charge_row = page.locator("#transactions tbody tr").first
    await expect(charge_row).to_contain_text("Списание")
    await expect(charge_row).to_contain_text("Предсказание №1: Doubler, 3 × 1 кредит")
    await expect(charge_row.locator("time")).to_have_text(
        re.compile(r"^\d{1,2} [а-я]+ \d{4} г\., \d\d:\d\d UTC$"))
    await expect(page.locator("#tasks tbody tr")).to_contain_text("Выполнено")
    await shoot(page, "cabinet-ru")

    # The usage page draws the day's charge (3 credits) in Russian.
    await page.get_by_role("link", name="Расходы").first.click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Расходы")
    await expect(page.locator("#usage-chart")).to_have_attribute("data-drawn", "true")
    assert await page.locator("#usage-chart canvas").evaluate(INKED) > 500
    await expect(page.locator("#month-credits")).to_have_text("3")

    await page.get_by_role("link", name="Ключи", exact=True).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("API-ключи и безопасность")

    # The API reference that docs.js draws speaks Russian too (labels handed over as JSON).
    await page.goto("/docs")
    docs = page.locator("#api-docs")
    await expect(docs).to_contain_text("/api/v1/predict")
    await expect(docs.get_by_role("button", name="Развернуть все")).to_be_visible()
    await docs.get_by_role("button", name="Развернуть все").click()
    await expect(docs.locator("h4.op-section", has_text="Тело запроса").first).to_be_visible()
    assert await docs.get_by_text("Expand all").count() == 0
    assert problems == [], problems
    await context.close()
