"""Which language a request speaks, the catalogs that speak it, and locale formats.

English is the source language: every user-visible string is written once, as a whole English
sentence with named placeholders (``_("Added %(amount)s credits.", amount=...)``), and Russian
comes from gettext catalogs: the ``*.po`` files in ``web/locale/<lang>/LC_MESSAGES``.
Each area of the product owns one file (``pages.po``, ``api.po``, ``usage.po`` ...), so two
changes never edit the same catalog. All files of a language are merged and compiled in memory
at start-up: ``make run`` needs no compile step, and a ``.po`` edit shows on the next start.

How a language is chosen (``negotiate``):
- pages: ``?lang=ru|en`` (then remembered in the ``mlc_lang`` cookie), else that cookie, else
  the browser's ``Accept-Language``, else English;
- the API (``/api/``): ``Accept-Language`` only, so a program gets what it asks for and a
  cookie set by a page does not change what a script reads.

Templates call ``_()``, ``gettext()`` and ``ngettext()`` (Jinja2's i18n extension, new style:
placeholders are keyword arguments and autoescaped); Python code in web/ calls
``translator(request)`` and gets the same two functions bound to the request's language.
Placeholders use ``%(name)s``; ``ngettext`` also passes ``num``. Never glue fragments: word
order and case endings differ between the languages.
"""

from __future__ import annotations

import gettext as gnu
import io
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from aiohttp import web
from aiohttp.typedefs import Handler
from babel import Locale
from babel.dates import format_datetime as babel_datetime
from babel.numbers import format_decimal
from jinja2 import Environment, pass_context
from jinja2.runtime import Context

if TYPE_CHECKING:  # babel.messages is imported with the first catalog, not at start-up
    from babel.messages.catalog import Catalog

LANGUAGES = ("en", "ru")
DEFAULT_LANGUAGE = "en"
COOKIE = "mlc_lang"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LANG = web.RequestKey("lang", str)
# Names of languages in themselves, for the switcher.
NATIVE_NAMES = {"en": "English", "ru": "Русский"}


class CatalogError(Exception):
    """Two catalogs translate one message differently: the product would speak at random."""


# -- choosing the language ------------------------------------------------------------------

def parse_accept_language(header: str) -> list[str]:
    """Primary language tags by preference: 'ru-RU,ru;q=0.9,en;q=0.8' → ['ru', 'ru', 'en']."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:32]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.strip().split("-")[0].lower()
        if primary and quality > 0:
            ranked.append((-quality, index, primary))
    return [tag for _, _, tag in sorted(ranked)]


def negotiate(*, query: str | None, cookie: str | None, accept_language: str,
              api: bool) -> str:
    if not api:
        for asked in (query, cookie):
            if asked in LANGUAGES:
                return asked
    for tag in parse_accept_language(accept_language):
        if tag in LANGUAGES:
            return tag
    return DEFAULT_LANGUAGE


def request_language(request: web.Request) -> str:
    return request.get(LANG) or DEFAULT_LANGUAGE


@web.middleware
async def language(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Sets the request's language; a page asked for with ?lang= remembers it in a cookie."""
    query = request.query.get("lang")
    api = request.path.startswith("/api/")
    request[LANG] = negotiate(query=query, cookie=request.cookies.get(COOKIE),
                              accept_language=request.headers.get("Accept-Language", ""),
                              api=api)
    remember = not api and query in LANGUAGES and request.cookies.get(COOKIE) != query
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # redirects are raised: they remember the choice too
        if remember:
            exc.set_cookie(COOKIE, request[LANG], max_age=365 * 24 * 3600, samesite="Lax",
                           httponly=True, path="/")
        raise
    if remember:
        response.set_cookie(COOKIE, request[LANG], max_age=365 * 24 * 3600, samesite="Lax",
                            httponly=True, path="/")
    if not api:
        response.headers.setdefault("Content-Language", request[LANG])
        response.headers.setdefault("Vary", "Accept-Language, Cookie")
    return response


# -- catalogs -------------------------------------------------------------------------------

def load_catalog(lang: str, locale_dir: Path = LOCALE_DIR) -> Catalog:
    """Every .po file of a language merged into one catalog (fuzzy entries left out)."""
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import read_po

    merged = Catalog(locale=lang, domain="messages")
    origin: dict[Any, Path] = {}
    for path in sorted((locale_dir / lang / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as handle:
            part = read_po(handle, locale=lang)
        for message in part:
            if not message.id or message.fuzzy or not message.string:
                continue
            known = merged.get(message.id, message.context)
            if known is not None and known.string != message.string:
                raise CatalogError(f"{path.name} and {origin[message.id].name} translate "
                                   f"{message.id!r} differently")
            merged.add(message.id, message.string, context=message.context)
            origin[message.id] = path
    return merged


@cache
def translations(lang: str) -> gnu.NullTranslations:
    if lang == DEFAULT_LANGUAGE:
        return gnu.NullTranslations()
    from babel.messages.mofile import write_mo

    buffer = io.BytesIO()
    write_mo(buffer, load_catalog(lang))
    buffer.seek(0)
    return gnu.GNUTranslations(buffer)


@dataclass(frozen=True, slots=True)
class Translator:
    """gettext and ngettext in one language, with %(name)s placeholders filled."""

    lang: str

    def gettext(self, message: str, **values: Any) -> str:
        text = translations(self.lang).gettext(message)
        return text % values if values else text

    def ngettext(self, singular: str, plural: str, num: int, /, **values: Any) -> str:
        """The form for `num`; `num=` among the values shows it formatted (1 234)."""
        text = translations(self.lang).ngettext(singular, plural, num)
        return text % {"num": num, **values}

    def number(self, value: int) -> str:
        return format_number(value, self.lang)

    def moment(self, iso: str | None, zone: str | None = None) -> str:
        return format_moment(iso, self.lang, zone)

    __call__ = gettext


def translator(request: web.Request) -> Translator:
    return Translator(request_language(request))


# -- formats --------------------------------------------------------------------------------

def format_number(value: int, lang: str) -> str:
    """1234567 → '1,234,567' in English, '1 234 567' (no-break spaces) in Russian."""
    return format_decimal(value, locale=Locale.parse(lang))


# English keeps the unambiguous ISO-like form the cabinet always showed.
MOMENT_PATTERNS = {"en": "yyyy-MM-dd HH:mm:ss", "ru": "d MMMM y 'г.', HH:mm"}


def format_moment(iso: str | None, lang: str, zone: str | None = None) -> str:
    """An ISO time in the account's zone (UTC when none is set), as people of the language
    write it: '2026-12-01 14:05:09 UTC', '1 декабря 2026 г., 14:05 UTC'."""
    if not iso:
        return "—"
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    where: tzinfo = UTC
    if zone:
        try:
            where = ZoneInfo(zone)
        except (KeyError, ValueError):
            where = UTC
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(where)
    text = babel_datetime(local, MOMENT_PATTERNS.get(lang, MOMENT_PATTERNS["en"]),
                          locale=Locale.parse(lang))
    return f"{text} {zone or 'UTC'}"


# -- templates ------------------------------------------------------------------------------

def _context_lang(context: Context) -> str:
    lang = context.get("lang")
    if lang in LANGUAGES:
        return str(lang)
    request = context.get("request")
    return request_language(request) if isinstance(request, web.Request) else DEFAULT_LANGUAGE


@pass_context
def _template_gettext(context: Context, message: str) -> str:
    return translations(_context_lang(context)).gettext(message)


@pass_context
def _template_ngettext(context: Context, singular: str, plural: str, num: int) -> str:
    return translations(_context_lang(context)).ngettext(singular, plural, num)


@pass_context
def _number_filter(context: Context, value: int | None) -> str:
    return "—" if value is None else format_number(value, _context_lang(context))


@pass_context
def _moment_filter(context: Context, iso: str | None, zone: str | None = None) -> str:
    return format_moment(iso, _context_lang(context), zone)


def install(env: Environment) -> None:
    """Jinja2's i18n extension with per-request languages, and the locale-aware filters
    ``credits``/``number`` (1 234 567) and ``when`` (1 декабря 2026 г., 14:05 UTC)."""
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(  # type: ignore[attr-defined]
        _template_gettext, _template_ngettext, newstyle=True)
    env.filters["credits"] = _number_filter
    env.filters["number"] = _number_filter
    env.filters["when"] = _moment_filter
    env.globals["LANGUAGES"] = LANGUAGES
    env.globals["NATIVE_NAMES"] = NATIVE_NAMES


__all__ = ["COOKIE", "LANG", "LANGUAGES", "CatalogError", "Translator", "format_moment",
           "format_number", "install", "language", "load_catalog", "negotiate",
           "parse_accept_language", "request_language", "translations", "translator"]
