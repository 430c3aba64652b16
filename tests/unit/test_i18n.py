"""The language a request speaks, Russian plurals, locale formats and catalog merging."""

from __future__ import annotations

from pathlib import Path

import pytest

from web.i18n import (
    CatalogError,
    Translator,
    format_moment,
    format_number,
    load_catalog,
    negotiate,
    parse_accept_language,
)


def test_accept_language_is_ranked_by_quality() -> None:
    assert parse_accept_language("en;q=0.5, ru-RU, fr;q=0.9") == ["ru", "fr", "en"]
    assert parse_accept_language("ru;q=0, en") == ["en"]
    assert parse_accept_language("") == []


@pytest.mark.parametrize(("query", "cookie", "accept", "api", "expected"), [
    ("ru", None, "en", False, "ru"),          # the query wins on pages
    (None, "ru", "en", False, "ru"),          # then the remembered choice
    ("xx", "ru", "en", False, "ru"),          # an unknown query is ignored
    (None, None, "de, ru;q=0.5", False, "ru"),  # then the browser, first language we speak
    (None, None, "de", False, "en"),          # then English
    ("ru", "ru", "en-GB", True, "en"),        # the API listens to Accept-Language only
    (None, None, "ru", True, "ru"),
])
def test_negotiation_order(query: str | None, cookie: str | None, accept: str, api: bool,
                           expected: str) -> None:
    assert negotiate(query=query, cookie=cookie, accept_language=accept, api=api) == expected


@pytest.mark.parametrize(("num", "word"), [
    (0, "кредитов"), (1, "кредит"), (2, "кредита"), (5, "кредитов"), (11, "кредитов"),
    (21, "кредит"), (101, "кредит"), (111, "кредитов"), (22, "кредита"), (12, "кредитов")])
def test_russian_plural_of_credits(num: int, word: str) -> None:
    text = Translator("ru").ngettext("%(num)s credit", "%(num)s credits", num)
    assert text == f"{num} {word}"
    assert Translator("en").ngettext("%(num)s credit", "%(num)s credits", num) == (
        f"{num} credit" if num == 1 else f"{num} credits")


def test_numbers_and_moments_in_each_language() -> None:
    assert format_number(1234567, "en") == "1,234,567"
    assert format_number(1234567, "ru").replace("\xa0", " ") == "1 234 567"
    iso = "2026-12-01T14:05:09+00:00"
    assert format_moment(iso, "en") == "2026-12-01 14:05:09 UTC"
    assert format_moment(iso, "ru") == "1 декабря 2026 г., 14:05 UTC"
    assert format_moment(iso, "ru", "Europe/Moscow") == "1 декабря 2026 г., 17:05 Europe/Moscow"
    assert format_moment(None, "ru") == "—"


def _po(folder: Path, name: str, msgstr: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n\n'
        f'msgid "Top up"\nmsgstr "{msgstr}"\n', encoding="utf-8")


def test_catalog_files_merge_and_disagreement_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "ru" / "LC_MESSAGES"
    _po(folder, "a.po", "Пополнить")
    _po(folder, "b.po", "Пополнить")
    assert load_catalog("ru", tmp_path).get("Top up").string == "Пополнить"  # type: ignore[union-attr]
    _po(folder, "c.po", "Пополнение")
    with pytest.raises(CatalogError, match="Top up"):
        load_catalog("ru", tmp_path)
