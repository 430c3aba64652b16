"""Every string the exports branch's templates show has its Russian in the catalogs."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

from web.i18n import load_catalog

TEMPLATES = Path(__file__).resolve().parents[2] / "web" / "templates"


@pytest.mark.parametrize("name", ["statement.html", "_export_links.html"])
def test_every_message_of_the_template_is_translated(name: str) -> None:
    env = jinja2.Environment(extensions=["jinja2.ext.i18n"])
    found = list(env.extract_translations((TEMPLATES / name).read_text()))  # type: ignore[attr-defined]
    assert found, "the template has no messages to translate"
    catalog = load_catalog("ru")
    for _line, _function, message in found:
        msgid = message if isinstance(message, str) else tuple(m for m in message if m)
        entry = catalog.get(msgid[0] if isinstance(msgid, tuple) else msgid)
        assert entry is not None and entry.string, f"{name}: no Russian for {message!r}"
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        assert all(strings), f"{name}: a plural form is missing for {message!r}"
