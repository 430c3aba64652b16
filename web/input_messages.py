"""Russian-style input and usernames, said in the reader's language. ml/ and ledger/ cannot
import web/, so they raise these errors in English with a code and parameters
(AmbiguousDecimalComma.fragment, InvalidUsername.reason/params); the sentences are here."""

from __future__ import annotations

from ledger.usernames import InvalidUsername, normalize_username
from ml import AmbiguousDecimalComma
from web.i18n import Translator


def _(message: str) -> str:
    """Marks a message for the catalog; it is translated where it is shown."""
    return message


AMBIGUOUS_DETAIL = _("the comma in “%(fragment)s” could be a decimal mark or a separator "
                     "between values; put “;” or a new line between values (1,5; 2) or write "
                     "the decimal mark as a dot (1.5, 2)")
AMBIGUOUS_TITLE = _("A comma could be a decimal mark or a separator")
AMBIGUOUS_PAGE = _("The comma in “%(fragment)s” could be a decimal mark or a separator between "
                   "values. Put “;” or a new line between values (1,5; 2), or write the "
                   "decimal mark as a dot (1.5, 2). Nothing was charged.")

USERNAME_REASONS = {
    "rule": _("3–32 letters of one alphabet, digits, '_', '.' or '-'"),
    "invisible": _("a username cannot hold invisible characters (%(char)s)"),
    "space": _("3–32 letters of one alphabet, digits, '_', '.' or '-'; a space is none of "
               "these"),
    "character": _("3–32 letters of one alphabet, digits, '_', '.' or '-'; %(char)s is none "
                   "of these"),
    "mixed_scripts": _("a username is written in one alphabet; this one mixes %(scripts)s"),
}
# The alphabets' names as the message lists them (ledger.usernames.script gives the English).
SCRIPTS = {name: name for name in (
    _("Latin"), _("Cyrillic"), _("Greek"), _("Han"), _("Hiragana"), _("Katakana"), _("Hangul"),
    _("Arabic"), _("Hebrew"), _("Armenian"), _("Georgian"))}


def ambiguous_comma(error: AmbiguousDecimalComma, tr: Translator) -> str:
    """The cabinet's message: a whole sentence that says how to write the values."""
    return tr.gettext(AMBIGUOUS_PAGE, fragment=error.fragment)


def ambiguous_comma_problem(error: AmbiguousDecimalComma, tr: Translator) -> tuple[str, str]:
    """The API's (title, detail); `code` and `fragment` stay the same in every language."""
    return tr.gettext(AMBIGUOUS_TITLE), tr.gettext(AMBIGUOUS_DETAIL, fragment=error.fragment)


def username_error(raw: str, tr: Translator) -> str | None:
    """Why `raw` is not a username, in the reader's language; None when it is one."""
    try:
        normalize_username(raw)
    except InvalidUsername as error:
        return username_reason(error, tr)
    return None


def username_reason(error: InvalidUsername, tr: Translator) -> str:
    params = dict(error.params)
    if error.reason == "mixed_scripts":
        names = [tr.gettext(SCRIPTS[n]) if n in SCRIPTS else n
                 for n in params["scripts"].split(", ")]
        params["scripts"] = names[0] if len(names) == 1 else tr.gettext(
            _("%(first)s and %(second)s"), first=", ".join(names[:-1]), second=names[-1])
    return tr.gettext(USERNAME_REASONS.get(error.reason, USERNAME_REASONS["rule"]), **params)
