"""The API reference speaks the page's language: docs.html hands docs.js its labels as JSON
data (the CSP forbids inline code), and docs.js shows no label it was not handed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

Client = TestClient[Any, Any]
DOCS_JS = Path(__file__).resolve().parents[2] / "web" / "static" / "docs.js"


async def labels(client: Client, lang: str) -> dict[str, str]:
    response = await client.get(f"/docs?lang={lang}")
    assert response.status == 200
    html = await response.text()
    found = re.search(r'<script type="application/json" id="docs-labels">(.*?)</script>', html,
                      re.S)
    assert found, "docs.html passes no labels to docs.js"
    assert "<script>" not in html  # data only: no inline executable script
    value = json.loads(found.group(1))
    assert isinstance(value, dict)
    return value


@pytest.mark.parametrize(("lang", "expand", "loading", "recursive"), [
    ("ru", "Развернуть все", "Загружается спецификация API…", "↻ {name} (рекурсивно, см. выше)"),
    ("en", "Expand all", "Loading the API specification…", "↻ {name} (recursive, shown above)"),
])
async def test_the_reference_labels_come_in_the_pages_language(
        client: Client, lang: str, expand: str, loading: str, recursive: str) -> None:
    given = await labels(client, lang)
    assert given["expandAll"] == expand
    assert given["loading"] == loading
    assert given["recursive"] == recursive  # the hole docs.js fills stays intact


async def test_docs_js_knows_every_label_the_page_passes_and_hardcodes_none(
        client: Client) -> None:
    given = await labels(client, "ru")
    script = DOCS_JS.read_text(encoding="utf-8")
    defaults = set(re.findall(r"^    (\w+): '", script, re.M))
    assert defaults == set(given), "docs.html and docs.js disagree on the label names"
    assert "getElementById('docs-labels')" in script
    russian_values = set(given.values())
    for english in ("Expand all", "Parameters", "Request body", "Responses", "Bearer token"):
        assert english not in russian_values
        # Only the English default in LABELS may spell it; the renderer calls label(key).
        assert script.count(f"'{english}'") == 1, english
