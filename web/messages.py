"""Texts made below web/ (ml's validation reasons, ledger's and marshmallow's messages, the
API's problem titles and details), spoken in the request's language.

ml/ and ledger/ cannot import web/ and say things in English; this table knows every wording
they use as a msgid with named placeholders. A text that fits one is translated, its
placeholders kept (and translated too where they are words, like ``%(what)s``); a text that
fits none is passed through unchanged. English is never rewritten: the API's English bodies
stay byte for byte what they were.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any

from web.i18n import DEFAULT_LANGUAGE, Translator

ROW_KEY = "_row"  # ml.rows.ROW: a problem of the whole row, not of one feature
# Placeholders that hold words of their own (translated in turn); the rest are names/numbers.
WORDS = ("what", "reason")


def N_(message: str) -> str:  # the gettext convention for "translate later"
    """Marks a msgid for extraction (babel -k N_) without translating it here."""
    return message


TEMPLATES = (
    # ml.validation and ml.rows: why one item or row was not predicted
    N_("not a number"),
    N_("a boolean is not a number"),
    N_("null is not a number"),
    N_("a list is not a number"),
    N_("an object is not a number"),
    N_("NaN is not a number"),
    N_("the number is infinite or beyond the float range"),
    N_("the value is missing"),
    N_("the model has no such feature"),
    N_("the number is not a whole number"),
    N_("the number is below the minimum of %(minimum)s"),
    N_("the number is above the maximum of %(maximum)s"),
    N_("the number is not one of %(choices)s"),
    N_("the row has %(count)s values; the model takes %(takes)s (%(names)s)"),
    N_("%(what)s is not a row; send an object keyed by feature name or an array of values "
       "in feature order"),
    N_("null"),
    N_("a boolean"),
    N_("a string"),
    N_("a number"),
    N_("the row"),
    N_("the model's output for this row is not a finite number"),
    N_("the model's probabilities for this row are not finite numbers summing to 1"),
    # ml.errors and ml.service
    N_("send at least one item"),
    N_("no item is a valid number; nothing was charged"),
    N_("more than the %(max)s items this model takes"),
    N_("%(count)s items is more than the %(max)s this model takes"),
    N_("there is no model %(id)s"),
    N_("the file is not readable as CSV: %(error)s"),
    N_("the header row is longer than %(max)s characters"),
    N_("the header row has an empty column name; the model takes: %(names)s"),
    N_("the header row names %(names)s more than once"),
    N_("the header row names columns the model does not have: %(unknown)s; the model takes: "
       "%(names)s"),
    N_("the header row lacks required columns: %(missing)s; the model takes: %(names)s"),
    N_("the model could not predict any row: %(reason)s"),
    N_("the model returned the wrong number of predictions"),
    N_("the model took longer than %(seconds)s seconds"),
    N_("the model failed: %(error)s"),
    # ledger
    N_("available %(available)s credits do not cover %(cost)s"),
    N_("the username %(name)s is taken"),
    N_("wrong username or password"),
    N_("a request with this idempotency key is still running"),
    N_("at most %(max)s live keys; revoke one first"),
    N_("there is no key %(id)s"),
    N_("the password you sign in with"),
    N_("this is not your current password"),
    N_("an IANA time zone name, like Europe/Moscow"),
    N_("3–32 letters, digits, '_', '.' or '-'"),
    N_("%(min)s–%(max)s characters"),
    N_("1–%(max)s printable characters"),
    N_("'predict' or 'read'"),
    N_("a whole number from 1 to %(max)s"),
    N_("a whole number"),
    N_("a charge is a whole, positive number of credits"),
    N_("a limit is null or a whole number of credits from 0 to %(max)s"),
    N_("printable characters"),
    # marshmallow's own messages
    N_("Missing data for required field."),
    N_("Field may not be null."),
    N_("Invalid value."),
    N_("Not a valid integer."),
    N_("Not a valid string."),
    N_("Not a valid utf-8 string."),
    N_("Not a valid number."),
    N_("Number too large."),
    N_("Not a valid boolean."),
    N_("Not a valid list."),
    N_("Not a valid mapping type."),
    N_("Invalid input type."),
    N_("Unknown field."),
    N_("Must be greater than or equal to %(min)s and less than or equal to %(max)s."),
    N_("Must be greater than or equal to %(min)s."),
    N_("Must be less than or equal to %(max)s."),
    N_("Length must be between %(min)s and %(max)s."),
    N_("Shorter than minimum length %(min)s."),
    N_("Longer than maximum length %(max)s."),
    N_("Must be one of: %(choices)s."),
    N_("String does not match expected pattern."),
    # the API's problem details (web/api.py, web/auth.py, web/bodies.py)
    N_("try again in %(seconds)s seconds"),
    N_("send a file or data, not both"),
    N_("unknown fields: %(names)s"),
    N_("model_id: a whole number"),
    N_("there is no task %(id)s"),
    N_("the log is empty"),
    N_("Idempotency-Key is 1–255 visible ASCII characters"),
    N_("1–255 visible ASCII characters"),
    N_("an id from the previous page (%(prefix)s...)"),
    N_("starting_after: an id from the previous page (%(prefix)s...)"),
    N_("this prediction costs %(cost)s credits and %(available)s are available; nothing was "
       "charged"),
    N_("this prediction costs %(cost)s credits and the daily limit has %(left)s left until "
       "%(when)s; nothing was charged"),
    N_("this prediction costs %(cost)s credits and the monthly limit has %(left)s left until "
       "%(when)s; nothing was charged"),
    N_("this prediction costs %(cost)s credits and the key monthly limit has %(left)s left "
       "until %(when)s; nothing was charged"),
    N_("%(reason)s; nothing was charged"),
    N_("send Authorization: Bearer <token> from POST /api/v1/auth/login"),
    N_("a 'read' key can read the balance, history, models and tasks; predicting and topping up "
       "need a 'predict' key or a login"),
    N_("managing keys, the password and limits needs a login token from POST /api/v1/auth/login "
       "or a signed-in page"),
    N_("the body must be application/json"),
    N_("the body could not be parsed as UTF-8 JSON"),
    N_("the body holds a lone surrogate (\\ud800-\\udfff), which is not text"),
    N_("the body must be a JSON object"),
    N_("not an object"),
    N_("a form has at most %(max)s parts"),
    N_("%(name)s was sent twice"),
    N_("%(what)s is larger than %(limit)s bytes"),
    N_("the file"),
    N_("the log kept moving; try again"),
    N_("upload a UTF-8 CSV file"),
    N_("not UTF-8 text"),
    N_("from: the position of a signed checkpoint"),
    N_("the position of a signed checkpoint"),
    N_("no checkpoint was signed at position %(position)s"),
    N_("the event log is broken at position %(position)s: %(reason)s"),
    N_("The form has expired or did not come from this site. Reload the page and try again."),
    N_("There is no such task in your history."),
    N_("There is no such key."),
    # problem titles (web/problems.py ERRORS, and those raised in web/)
    N_("The request is not valid"),
    N_("The balance would be too large"),
    N_("Not enough credits"),
    N_("This username is taken"),
    N_("Wrong username or password"),
    N_("Authentication required"),
    N_("Idempotency key reused"),
    N_("The first request is still running"),
    N_("No such model"),
    N_("No such key"),
    N_("Too many live keys"),
    N_("No data"),
    N_("Too many items"),
    N_("No valid data"),
    N_("The file is not readable as CSV"),
    N_("The CSV header does not fit the model"),
    N_("The service cannot write right now"),
    N_("The service was busy; retry"),
    N_("The ledger is damaged; it is read-only"),
    N_("The task was interrupted; nothing was charged"),
    N_("Something went wrong on our side"),
    N_("quote request id %(id)s when you report it"),
    N_("This key may only read"),
    N_("This needs a login, not an API key"),
    N_("Too many login attempts"),
    N_("Too many attempts"),
    N_("Spend limit reached"),
    N_("The prediction failed"),
    N_("No such task"),
    N_("No checkpoint yet"),
    N_("No such checkpoint"),
    N_("Try again"),
    N_("Send JSON"),
    N_("The body is not valid JSON"),
    N_("Nested multipart is not supported"),
    N_("Too many form fields"),
    N_("One file at a time"),
    N_("A form part has no name"),
    N_("A form field was sent twice"),
    N_("Malformed form data"),
    N_("Upload too large"),
    N_("The file is not text"),
    # aiohttp's own reasons, for the error page and http_problem
    N_("Not Found"),
    N_("Method Not Allowed"),
    N_("Request Entity Too Large"),
    N_("Unsupported Media Type"),
    N_("Bad Request"),
    N_("Forbidden"),
    N_("Unauthorized"),
    N_("Internal Server Error"),
    N_("Service Unavailable"),
    # the operator console (web/admin_api.py, ledger/account.py's adjust/suspend/resume)
    N_("No such user"),
    N_("The account is already in that state"),
    N_("The account is not an operator"),
    N_("The debit would take the available balance below zero"),
    N_("This account is suspended"),
    N_("This needs the operator role"),
    N_("an operator suspended this account: its sessions, tokens and keys are refused until it "
       "is resumed"),
    N_("the operator console is for operators signed in with their login"),
    N_("account %(id)s is already suspended"),
    N_("account %(id)s is not suspended"),
    # ledger.usernames, as the register schema's validator words them (web/input_messages.py
    # has the same msgids for the page form)
    N_("3–32 letters of one alphabet, digits, '_', '.' or '-'"),
    N_("a username cannot hold invisible characters (%(char)s)"),
    N_("3–32 letters of one alphabet, digits, '_', '.' or '-'; a space is none of these"),
    N_("3–32 letters of one alphabet, digits, '_', '.' or '-'; %(char)s is none of these"),
    N_("a username is written in one alphabet; this one mixes %(scripts)s"),
    # exports and statements (web/exports.py, web/schemas.py RangeQuery)
    N_("a date as YYYY-MM-DD"),
    N_("not a date of the calendar"),
    N_("a date from 1970-01-01 to 9998-12-31"),
    N_("from is after to"),
)


@cache
def _patterns() -> tuple[tuple[re.Pattern[str], str], ...]:
    """Each template with placeholders as a regex; more literal text first, so the most
    specific wording wins when two fit."""
    compiled = []
    for template in TEMPLATES:
        if "%(" not in template:
            continue
        parts = re.split(r"%\((\w+)\)s", template)
        regex = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>.+?)"
                        for i, part in enumerate(parts))
        compiled.append((re.compile(regex + r"\Z", re.DOTALL), template))
    return tuple(sorted(compiled, key=lambda item: -len(re.sub(r"%\(\w+\)s", "", item[1]))))


def localize(tr: Translator, text: str) -> str:
    """`text` in the translator's language when it is one of the known wordings, else as is."""
    if tr.lang == DEFAULT_LANGUAGE or not text:
        return text
    if text in _exact():
        return tr(text)
    for pattern, template in _patterns():
        found = pattern.match(text)
        if found:
            values = {name: localize(tr, value) if name in WORDS else value
                      for name, value in found.groupdict().items()}
            return tr(template, **values)
    return text


@cache
def _exact() -> frozenset[str]:
    return frozenset(t for t in TEMPLATES if "%(" not in t)


def localize_errors(tr: Translator, errors: Mapping[str, Any]) -> dict[str, Any]:
    """Field names stay; each message is translated."""
    return {name: [localize(tr, str(m)) for m in messages] if isinstance(messages, list)
            else localize(tr, str(messages)) for name, messages in errors.items()}


def localize_invalid(tr: Translator, invalid: list[Any]) -> list[Any]:
    """Item-level reasons: `error` (one sentence) and `errors` (per feature) translated; the
    index, line, value and feature names stay."""
    if tr.lang == DEFAULT_LANGUAGE:
        return invalid
    shaped = []
    for entry in invalid:
        if not isinstance(entry, Mapping):
            shaped.append(entry)
            continue
        item = dict(entry)
        errors = entry.get("errors")
        if isinstance(errors, Mapping):
            item["errors"] = localize_errors(tr, errors)
            item["error"] = "; ".join(
                f"{tr('the row') if name == ROW_KEY else name}: {', '.join(problems)}"
                for name, problems in item["errors"].items()) + "."
        elif isinstance(entry.get("error"), str):
            item["error"] = localize(tr, entry["error"])
        shaped.append(item)
    return shaped


def localize_problem(tr: Translator, body: dict[str, Any]) -> dict[str, Any]:
    """A problem+json body in the translator's language: title, detail, field messages and
    item reasons; `type`, `code`, field names and numbers stay the same in every language."""
    if tr.lang == DEFAULT_LANGUAGE:
        return body
    shown = dict(body)
    shown["title"] = localize(tr, str(body.get("title", "")))
    errors = body.get("errors")
    detail = str(body.get("detail", ""))
    if isinstance(errors, Mapping):
        shown["errors"] = localize_errors(tr, errors)
        if detail == _joined(errors):  # the detail lists the fields: list them translated
            detail = _joined(shown["errors"])
            shown["detail"] = detail
    if shown.get("detail") == body.get("detail"):
        bare = re.fullmatch(r"(\d{3}): (.+)", detail)  # aiohttp's own "404: Not Found"
        shown["detail"] = (f"{bare.group(1)}: {localize(tr, bare.group(2))}" if bare
                           else localize(tr, detail))
    if isinstance(body.get("invalid"), list):
        shown["invalid"] = localize_invalid(tr, body["invalid"])
    return shown


def _joined(errors: Mapping[str, Any]) -> str:
    """web.bodies.load's detail: 'amount: Not a valid integer.; name: ...'."""
    return "; ".join(f"{name}: {' '.join(map(str, m)) if isinstance(m, list) else m}"
                     for name, m in errors.items())




def localize_task(tr: Translator, task: dict[str, Any]) -> dict[str, Any]:
    """A task as the API shows it, with its item reasons and its error translated."""
    if tr.lang == DEFAULT_LANGUAGE:
        return task
    shown = dict(task)
    if isinstance(task.get("invalid"), list):
        shown["invalid"] = localize_invalid(tr, task["invalid"])
    if isinstance(task.get("error"), str):
        shown["error"] = localize(tr, task["error"])
    return shown


__all__ = ["N_", "TEMPLATES", "localize", "localize_errors", "localize_invalid",
           "localize_problem", "localize_task"]
