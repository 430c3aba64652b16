"""A person in real Chromium: sign up, top up, upload a CSV with a bad row, read the history."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page, async_playwright, expect

from web.app import create_app
from web.config import Config

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def chromium() -> Path:
    """Debian's chromium; only a developer's machine may go without it."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing, and CI must run the browser test")
        pytest.skip(f"{CHROMIUM} is missing (outside CI)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(chromium),
                                                    args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def base_url(aiohttp_server: Any, config: Config) -> str:
    server: TestServer = await aiohttp_server(create_app(config))
    return str(server.make_url("")).rstrip("/")


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

    csv = tmp_path / "measurements.csv"
    csv.write_text("value\n1.5\n2\nnot-a-number\n4\n")
    await page.get_by_label("Model").select_option(
        label="Doubler — 1 credit per item, max 1,000 items")
    await page.set_input_files("#file", csv)
    await page.get_by_role("button", name="Run prediction").click()

    await expect(page.get_by_role("status")).to_have_text(
        "Predicted 3 items for 3 credits. 1 invalid item was skipped.")
    result = page.locator("#result")
    bad_row = result.locator("table.table-invalid tbody tr")
    await expect(bad_row).to_have_count(1)
    await expect(bad_row).to_contain_text("not-a-number")
    await expect(bad_row).to_contain_text("not a number")
    await expect(result.locator("table").last).to_contain_text("8.0")
    await expect(balance).to_contain_text("347")

    task_row = page.locator("#tasks tbody tr")
    await expect(task_row).to_have_count(1)
    await expect(task_row).to_contain_text("Completed")
    await expect(task_row.locator("td.num").last).to_have_text("3")
    charge_row = page.locator("#transactions tbody tr").first
    await expect(charge_row).to_contain_text("Charge")
    await expect(charge_row).to_contain_text("−3")
    await expect(charge_row).to_contain_text("347")
    await expect(page.locator("#transactions tbody tr")).to_have_count(3)
    await shoot(page, "cabinet")

    await charge_row.get_by_role("link").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Task #")
    await expect(page.locator("table.table-invalid")).to_contain_text("not-a-number")
    await shoot(page, "task")

    await page.goto("/docs")
    await expect(page.locator("#api-docs")).to_contain_text("/api/v1/predict")
    await shoot(page, "docs")

    assert problems == [], "the pages logged errors (CSP violations show up here)"
    await context.close()
