"""A person in real Chromium opens the Usage page after a prediction and sees the chart drawn
(the vendored uPlot, run by /static/usage.js under the strict CSP), in English and Russian."""

from __future__ import annotations

import pytest
from browser_kit import LAPTOP, PHONE, SCREENSHOTS
from cabinet_http import INKED
from playwright.async_api import Browser, Page, expect

pytestmark = pytest.mark.browser


async def sign_up_and_predict(page: Page) -> None:
    await page.goto("/register")
    await page.get_by_label("Username").fill("alice")
    await page.get_by_label("Password").fill("correct horse battery")
    await page.get_by_role("button", name="Sign up").click()
    await page.get_by_role("button", name="+100").click()
    await expect(page.get_by_role("status")).to_have_text("Added 100 credits.")
    await page.locator("#model_id").select_option(value="1")
    await page.locator("#data").fill("1, 2, 3")
    await page.get_by_role("button", name="Run prediction").click()
    await expect(page.get_by_role("status")).to_contain_text("3 credits")


async def test_the_usage_page_draws_the_chart_of_credits_per_day(
        browser: Browser, base_url: str) -> None:
    context = await browser.new_context(viewport=LAPTOP, base_url=base_url)
    context.set_default_timeout(10_000)
    page = await context.new_page()
    problems: list[str] = []  # a CSP refusal or a script error shows up here
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    await sign_up_and_predict(page)

    await page.get_by_role("link", name="Usage").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Usage")
    chart = page.locator("#usage-chart")
    await expect(chart).to_have_attribute("data-drawn", "true")
    canvas = chart.locator("canvas")
    await expect(canvas).to_have_count(1)
    box = await canvas.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100
    assert await canvas.evaluate(INKED) > 500
    await expect(page.locator("#month-credits")).to_have_text("3")
    await expect(page.locator("#usage-models tbody tr")).to_contain_text(["Doubler"])
    for size, viewport in (("laptop", LAPTOP), ("phone", PHONE)):
        await page.set_viewport_size(viewport)
        await page.screenshot(path=SCREENSHOTS / f"usage-{size}.png", full_page=True)

    await page.goto("/cabinet/usage?lang=ru")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Расходы")
    await expect(page.locator("#usage-chart")).to_have_attribute("data-drawn", "true")
    await page.screenshot(path=SCREENSHOTS / "usage-ru-laptop.png", full_page=True)
    assert problems == []
    await context.close()
