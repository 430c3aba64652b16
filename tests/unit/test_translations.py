"""Every message the product can show has its Russian: each string in every template and in
every translate call of web/ (extracted as `pybabel extract -F babel.cfg` would), the texts
that ml/ and ledger/ make (web/messages.py), and the Russian plural forms of each count."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.plural import to_python

from web.i18n import LOCALE_DIR, Translator, load_catalog
from web.messages import TEMPLATES, localize, localize_invalid, localize_problem
from web.problems import ERRORS

ROOT = Path(__file__).resolve().parents[2]
# `tr(...)` and `tr.ngettext(...)` are how web/ translates (web/i18n.py's translator).
KEYWORDS = {**DEFAULT_KEYWORDS, "tr": None}
PLACEHOLDER = re.compile(r"%\((\w+)\)s")
# CLDR's rule for Russian, independent of the catalog's Plural-Forms line.
RUSSIAN_PLURAL = to_python({"one": "n mod 10 is 1 and n mod 100 is not 11",
                            "few": "n mod 10 in 2..4 and n mod 100 not in 12..14"})
COUNTS = (0, 1, 2, 5, 11, 21, 101, 111)


def extracted() -> dict[object, str]:
    """Every msgid (a plural one as (singular, plural)) with where it was found."""
    with (ROOT / "babel.cfg").open() as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    found: dict[object, str] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=KEYWORDS):
        found.setdefault(message, f"{filename}:{lineno}")
    return found


MESSAGES = extracted()
CATALOG = load_catalog("ru")


def test_extraction_sees_templates_python_and_the_message_table() -> None:
    places = set(MESSAGES.values())
    assert any(p.startswith("web/templates/cabinet.html") for p in places)
    assert any(p.startswith("web/pages.py") for p in places)
    assert "send at least one item" in MESSAGES  # web/messages.py, marked N_()
    assert len(MESSAGES) > 300


@pytest.mark.parametrize("message", sorted(MESSAGES, key=str), ids=lambda m: str(m)[:60])
def test_every_message_has_a_russian_translation(message: object) -> None:
    msgid = message[0] if isinstance(message, tuple) else message
    entry = CATALOG.get(msgid)
    assert entry is not None and entry.string, (
        f"{msgid!r} ({MESSAGES[message]}) has no Russian in web/locale/ru/LC_MESSAGES/*.po")
    if isinstance(message, tuple):
        assert entry.pluralizable and len(entry.string) == 3 and all(entry.string), (
            f"{msgid!r} needs three Russian forms (1 кредит, 2 кредита, 5 кредитов)")


def _forms(entry_string: object) -> list[str]:
    return list(entry_string) if isinstance(entry_string, tuple | list) else [str(entry_string)]


@pytest.mark.parametrize("path", sorted((LOCALE_DIR / "ru" / "LC_MESSAGES").glob("*.po")),
                         ids=lambda p: p.name)
def test_translations_keep_every_placeholder(path: Path) -> None:
    """A lost %(name)s would show a raw value nowhere; an extra one raises at render."""
    from babel.messages.pofile import read_po

    with path.open("rb") as handle:
        catalog = read_po(handle, locale="ru")
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        wanted = set().union(*(set(PLACEHOLDER.findall(i)) for i in ids))
        for form in _forms(message.string):
            said = set(PLACEHOLDER.findall(form))
            assert said <= wanted | {"num"} and wanted - {"num"} <= said, (path.name, message.id)
            assert form.count("%") - form.count("%%") * 2 == len(PLACEHOLDER.findall(form)), (
                f"{form!r}: a bare % (write %% for a percent sign)")


PLURALS = sorted((m for m in MESSAGES if isinstance(m, tuple)), key=str)


@pytest.mark.parametrize("message", PLURALS, ids=lambda m: m[0][:60])
@pytest.mark.parametrize("count", COUNTS)
def test_each_plural_message_takes_the_russian_form_of_its_count(message: tuple[str, str],
                                                                 count: int) -> None:
    entry = CATALOG.get(message[0])
    assert entry is not None
    forms = list(entry.string)
    index = {"one": 0, "few": 1, "many": 2, "other": 2}[RUSSIAN_PLURAL(count)]
    values = {name: f"<{name}>" for name in PLACEHOLDER.findall(" ".join(forms))}
    values.pop("num", None)
    shown = Translator("ru").ngettext(message[0], message[1], count, **values)
    assert shown == forms[index] % {"num": count, **values}
    if "%(num)s" in forms[index]:
        assert str(count) in shown


@pytest.mark.parametrize(("count", "credits", "rows", "items", "predictions"), [
    (0, "0 кредитов", "0 строк", "0 элементов", "0 предсказаний"),
    (1, "1 кредит", "1 строка", "1 элемент", "1 предсказания"),
    (2, "2 кредита", "2 строки", "2 элемента", "2 предсказаний"),
    (5, "5 кредитов", "5 строк", "5 элементов", "5 предсказаний"),
    (11, "11 кредитов", "11 строк", "11 элементов", "11 предсказаний"),
    (21, "21 кредит", "21 строка", "21 элемент", "21 предсказания"),
    (101, "101 кредит", "101 строка", "101 элемент", "101 предсказания"),
    (111, "111 кредитов", "111 строк", "111 элементов", "111 предсказаний"),
])
def test_counted_nouns_read_as_russian(count: int, credits: str, rows: str, items: str,
                                       predictions: str) -> None:
    ru = Translator("ru")
    assert ru.ngettext("%(num)s credit", "%(num)s credits", count) == credits
    assert ru.ngettext("%(num)s row", "%(num)s rows", count) == rows
    assert ru.ngettext("%(num)s item", "%(num)s items", count) == items
    shown = ru.ngettext("Showing the first %(shown)s of %(num)s predictions.",
                        "Showing the first %(shown)s of %(num)s predictions.", count, shown=10)
    assert shown == f"Показаны первые 10 из {predictions}."  # «из» takes the genitive


# -- texts made below web/ ------------------------------------------------------------------

def test_the_reasons_ml_gives_are_all_known() -> None:
    from ml import outputs, rows, validation

    for text in (validation.NOT_A_NUMBER, validation.BOOLEAN, validation.NULL,
                 validation.A_LIST, validation.AN_OBJECT, validation.NAN,
                 validation.BEYOND_RANGE, rows.MISSING, rows.UNKNOWN, rows.NOT_WHOLE,
                 outputs.NOT_FINITE, outputs.BAD_PROBABILITIES):
        assert text in TEMPLATES, text


def _constant_problem_texts() -> set[str]:
    """The constant title and detail of every Problem(...) raised in web/."""
    texts: set[str] = set()
    for path in (ROOT / "web").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "Problem"):
                for argument in node.args[2:4]:
                    if isinstance(argument, ast.Constant) and argument.value:
                        texts.add(str(argument.value))
    return texts


def test_every_problem_title_and_constant_detail_speaks_russian() -> None:
    ru = Translator("ru")
    texts = {title for _, _, title in ERRORS.values()} | _constant_problem_texts()
    assert len(texts) > 40
    # localized by web/messages.py's table, or raised already translated (tr(title))
    untranslated = sorted(t for t in texts if localize(ru, t) == t and ru(t) == t)
    assert untranslated == []


def test_a_reason_with_values_is_translated_with_its_values_kept() -> None:
    ru = Translator("ru")
    assert localize(ru, "the number is below the minimum of 3.9") == "число меньше минимума 3.9"
    assert localize(ru, "a string is not a row; send an object keyed by feature name or an "
                        "array of values in feature order").startswith("строка — не строка;")
    assert localize(ru, "a name nobody wrote a template for") == (
        "a name nobody wrote a template for")


def test_english_is_never_rewritten() -> None:
    en = Translator("en")
    body = {"type": "/problems/validation-error", "title": "The request is not valid",
            "status": 422, "detail": "amount: Not a valid integer.", "code": "validation_error",
            "errors": {"amount": ["Not a valid integer."]}}
    assert localize_problem(en, body) is body
    invalid = [{"index": 0, "value": "x", "error": "not a number"}]
    assert localize_invalid(en, invalid) is invalid


def test_a_problem_in_russian_keeps_type_code_and_field_names() -> None:
    body = {"type": "/problems/validation-error", "title": "The request is not valid",
            "status": 422, "detail": "amount: Not a valid integer.", "code": "validation_error",
            "errors": {"amount": ["Not a valid integer."]},
            "invalid": [{"index": 1, "line": 3, "value": "bmi=x",
                         "error": "bmi: not a number; the row: the value is missing.",
                         "errors": {"bmi": ["not a number"], "_row": ["the value is missing"]}}]}
    shown = localize_problem(Translator("ru"), body)
    assert {k: shown[k] for k in ("type", "code", "status")} == {
        k: body[k] for k in ("type", "code", "status")}
    assert shown["title"] == "Запрос некорректен"
    assert shown["detail"] == "amount: Это не целое число."
    assert shown["errors"] == {"amount": ["Это не целое число."]}
    item = shown["invalid"][0]
    assert (item["index"], item["line"], item["value"]) == (1, 3, "bmi=x")
    assert item["errors"] == {"bmi": ["не число"], "_row": ["значение не указано"]}
    assert item["error"] == "bmi: не число; строка: значение не указано."
