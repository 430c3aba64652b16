"""The cabinet's Keys page: API keys (made, listed masked, revoked after a confirmation), the
password change, "log out everywhere" and the security log. Every form checks CSRF.

A new key's secret is rendered in the reply to the form that made it and never again: it is
not kept in the session, nor in a flash message, nor anywhere a later page could read it.
"""

from __future__ import annotations

import re
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session
from marshmallow import ValidationError

from ledger import InvalidInput, KeyNotFound, TooManyKeys
from web import schemas
from web.api import client_address, throttled_password_change
from web.auth import check_csrf, end_session, page_credential, page_user
from web.bodies import whole_number
from web.i18n import Translator, translator
from web.keys import API_KEYS, LEDGER, USERS
from web.messages import localize, localize_errors
from web.problems import Problem

SECURITY_ROWS = 20


async def _login(request: web.Request) -> int:
    user_id = await page_user(request)
    if user_id is None:
        raise web.HTTPSeeOther(request.app.router["login"].url_for())
    return user_id


async def _flash(request: web.Request, **notice: str) -> None:
    (await get_session(request))["flash"] = notice


async def keys_page(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    user_id = await _login(request)
    notice = (await get_session(request)).pop("flash", {})
    log = await request.app[USERS].security_events(user_id, limit=SECURITY_ROWS)
    tr = translator(request)
    context: dict[str, Any] = {
        "keys": [schemas.key_json(k) for k in await request.app[API_KEYS].list(user_id)],
        "security_events": [security_view(tr, schemas.security_event_json(e))
                            for e in log.data],
        "message": notice.get("message"), "error": notice.get("error"),
        "zone": (await request.app[LEDGER].limits(user_id)).time_zone,
        "form": {}, "field_errors": {}, "new_key": None, "password_errors": {}}
    context.update(extra)
    response = aiohttp_jinja2.render_template("keys.html", request, context, status=status)
    response.headers["Cache-Control"] = "no-store"  # the one page that may hold a secret
    return response


# The security log's details are stored facts, written in English when they happened.
ENDED = re.compile(r"(\d+) (other )?sessions and tokens ended\Z")
LIMITS = re.compile(r"daily ([\w,]+), monthly ([\w,]+)\Z")
KEY_CREATED = re.compile(r"(key_\w+ .+) \((predict|read)\)\Z", re.DOTALL)


def security_view(tr: Translator, shown: dict[str, Any]) -> dict[str, Any]:
    """An entry as the page shows it, its detail said in the page's language when it is one
    of the known wordings (a key's name and id stay as they are)."""
    detail = str(shown.get("detail") or "")
    text = None
    if detail == "page":
        text = tr("from a page")
    elif detail == "api":
        text = tr("over the API")
    elif found := ENDED.match(detail):
        count = int(found.group(1))
        text = (tr.ngettext("%(num)s other sessions and tokens ended",
                            "%(num)s other sessions and tokens ended", count) if found.group(2)
                else tr.ngettext("%(num)s sessions and tokens ended",
                                 "%(num)s sessions and tokens ended", count))
    elif found := LIMITS.match(detail):
        daily, monthly = (tr("none") if v == "none" else v for v in found.groups())
        text = tr("daily %(daily)s, monthly %(monthly)s", daily=daily, monthly=monthly)
    elif found := KEY_CREATED.match(detail):  # the key's id and name as stored, its scope said
        key, scope = found.groups()
        text = f"{key} ({tr('predict') if scope == 'predict' else tr('read')})"
    return {**shown, "detail_text": text}


def _optional_number(form: Any, name: str) -> int | str | None:
    """A blank field is None; digits are a number; anything else stays text for the schema
    to refuse (422, with the field named)."""
    text = str(form.get(name, "")).strip()
    if not text:
        return None
    number = whole_number(text, 13)
    return text if number is None else number


async def create_key(request: web.Request) -> web.Response:
    user_id = await _login(request)
    form = await request.post()
    await check_csrf(request, form)
    fields = {"name": str(form.get("name", "")), "scope": str(form.get("scope", "")),
              "expires_in_days": _optional_number(form, "expires_in_days"),
              "monthly_limit_credits": _optional_number(form, "monthly_limit_credits")}
    shown = {k: "" if v is None else str(v) for k, v in fields.items()}
    tr = translator(request)
    fix = tr("Please correct the fields below.")
    try:
        loaded: dict[str, Any] = schemas.KeyCreateRequest().load(fields)
        issued = await request.app[API_KEYS].create(user_id, client=client_address(request),
                                                    **loaded)
    except ValidationError as exc:
        errors = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        return await keys_page(request, 422, form=shown, error=fix,
                               field_errors=localize_errors(tr, errors))
    except InvalidInput as exc:
        return await keys_page(request, 422, form=shown, error=fix,
                               field_errors={exc.field: [localize(tr, str(exc))]})
    except TooManyKeys as exc:
        return await keys_page(request, 409, form=shown, error=_sentence(localize(tr, str(exc))))
    return await keys_page(request, 201, new_key=schemas.issued_key_json(issued))


async def revoke_confirm(request: web.Request) -> web.Response:
    user_id = await _login(request)
    found = await request.app[API_KEYS].find(user_id, request.match_info["key_id"])
    if found is None:
        raise web.HTTPNotFound(text="There is no such key.")
    return aiohttp_jinja2.render_template("key_revoke.html", request,
                                          {"key": schemas.key_json(found)})


async def revoke_key(request: web.Request) -> web.Response:
    user_id = await _login(request)
    form = await request.post()
    await check_csrf(request, form)
    try:
        revoked = await request.app[API_KEYS].revoke(user_id, request.match_info["key_id"],
                                                     client_address(request))
    except KeyNotFound:
        raise web.HTTPNotFound(text="There is no such key.") from None
    tr = translator(request)
    await _flash(request, message=tr("The key “%(name)s” is revoked: programs using it are "
                                     "refused from now on.", name=revoked.name))
    raise web.HTTPSeeOther(request.app.router["cabinet_keys"].url_for())


async def change_password(request: web.Request) -> web.Response:
    await _login(request)
    form = await request.post()
    await check_csrf(request, form)
    current = await page_credential(request)
    if current is None:
        raise web.HTTPSeeOther(request.app.router["login"].url_for())
    fields = {"current_password": str(form.get("current_password", "")),
              "new_password": str(form.get("new_password", ""))}
    tr = translator(request)
    errors = schemas.PasswordChangeRequest().validate(fields)
    if errors:
        return await keys_page(request, 422, password_errors=localize_errors(tr, errors),
                               error=tr("The password was not changed."))
    try:
        revoked = await throttled_password_change(request, current, fields["current_password"],
                                                  fields["new_password"])
    except InvalidInput as exc:
        return await keys_page(request, 422, password_errors={exc.field: [localize(tr, str(exc))]},
                               error=tr("The password was not changed."))
    except Problem as exc:  # too many wrong current passwords
        wait = int(exc.headers.get("Retry-After", "1"))
        return await keys_page(request, exc.status_code, error=tr.ngettext(
            "The password was not changed: too many attempts; try again in %(num)s second.",
            "The password was not changed: too many attempts; try again in %(num)s seconds.",
            wait))
    await _flash(request, message=tr.ngettext(
        "Password changed. %(num)s other session or login token was signed out; this one stays "
        "signed in. API keys are separate credentials and keep working.",
        "Password changed. %(num)s other sessions and login tokens were signed out; this one "
        "stays signed in. API keys are separate credentials and keep working.", revoked))
    raise web.HTTPSeeOther(request.app.router["cabinet_keys"].url_for())


async def logout_all(request: web.Request) -> web.Response:
    user_id = await _login(request)
    await check_csrf(request, await request.post())
    await request.app[USERS].logout_all(user_id, client_address(request))
    await end_session(request)
    raise web.HTTPSeeOther(request.app.router["login"].url_for())


def _sentence(text: str) -> str:
    """'at most 20 live keys; revoke one first' → 'At most 20 live keys; revoke one first.'"""
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")
