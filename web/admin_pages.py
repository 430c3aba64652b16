"""The operator console's pages under /admin. To anyone who is not an operator signed in
with a page session they do not exist (404), so their presence is not advertised. Every
form checks CSRF after the role, then redirects (303) or re-renders with a message."""

from __future__ import annotations

import re
import uuid
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session

from ledger import InsufficientCredits, LedgerError
from ledger import checkpoints as checkpoint_log
from ledger.errors import SuspensionConflict
from web import admin_schemas
from web.admin_api import verifier_json
from web.auth import account_flags, check_csrf, page_user
from web.bodies import whole_number
from web.i18n import Translator, translator
from web.keys import ADMIN, PUBLIC_IDS, STORE
from web.pages import transaction_view
from web.problems import problem_for

PAGE_SIZE = 25
SIGNED_RE = re.compile(r"[+-]?[0-9]{1,9}")


def render(request: web.Request, name: str, context: dict[str, Any],
           status: int = 200) -> web.Response:
    response = aiohttp_jinja2.render_template(name, request, context, status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


async def operator_page(request: web.Request) -> int:
    """The operator's user id, or 404 for everybody else."""
    user_id = await page_user(request)
    if user_id is None or not (await account_flags(request, user_id))[0]:
        raise web.HTTPNotFound()
    return user_id


def _cursor(request: web.Request) -> int | None:
    return whole_number(request.query.get("starting_after", ""), 15)


# Written by `python -m ledger admin grant|revoke` (ledger/admin_projection.py), in English.
CLI_REASON = re.compile(r"from the command line by (.+)\Z", re.DOTALL)


def shown_actions(tr: Translator, actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Operator actions with the command line's stored reason said in the page's language
    (an operator's own reason stays as they typed it)."""
    for action in actions:
        if found := CLI_REASON.match(str(action.get("reason") or "")):
            action["reason"] = tr("from the command line by %(who)s", who=found.group(1))
    return actions


async def users_page(request: web.Request) -> web.Response:
    await operator_page(request)
    q = "".join(c for c in request.query.get("q", "") if c.isprintable()).strip()[
        :admin_schemas.MAX_QUERY]
    page = await request.app[ADMIN].users(q=q, limit=PAGE_SIZE,
                                          starting_after=_cursor(request))
    users = [admin_schemas.user_json(u) for u in page.data]
    return render(request, "admin_users.html", {
        "users": users, "q": q, "has_more": page.has_more,
        "next_after": str(users[-1]["id"]) if users and page.has_more else None})


async def user_page(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    await operator_page(request)
    user_id = _target(request)
    if not await request.app[ADMIN].exists(user_id):
        raise web.HTTPNotFound()
    history = await request.app[ADMIN].history(user_id, limit=PAGE_SIZE)
    notice = (await get_session(request)).pop("flash", {})
    user = admin_schemas.detail_json(history, request.app[PUBLIC_IDS])
    tr = translator(request)
    user["actions"] = shown_actions(tr, user["actions"])
    user["transactions"] = [transaction_view(tr, t) for t in user["transactions"]]
    context = {"user": user,
               "operation_id": uuid.uuid4().hex, "form": {}, "field_errors": {},
               "message": notice.get("message"), "error": notice.get("error")}
    return render(request, "admin_user.html", {**context, **extra}, status)


def _target(request: web.Request) -> int:
    user_id = whole_number(request.match_info["user_id"], 15)
    if user_id is None:
        raise web.HTTPNotFound()
    return user_id


async def _form(request: web.Request) -> tuple[int, int, Any]:
    operator = await operator_page(request)
    user_id = _target(request)
    if not await request.app[ADMIN].exists(user_id):
        raise web.HTTPNotFound()
    form = await request.post()
    await check_csrf(request, form)
    return operator, user_id, form


def _done(request: web.Request, user_id: int) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(request.app.router["admin_user"].url_for(user_id=str(user_id)))


async def adjust(request: web.Request) -> web.Response:
    operator, user_id, form = await _form(request)
    tr = translator(request)
    _ = tr.gettext
    amount_text = str(form.get("amount_credits", "")).strip()
    reason = str(form.get("reason", ""))
    shown = {"amount_credits": amount_text[:20], "reason": reason[:600]}
    errors: dict[str, list[str]] = {}
    if not SIGNED_RE.fullmatch(amount_text) or int(amount_text) == 0:
        errors["amount_credits"] = [_("Enter a whole number of credits, not 0: positive "
                                      "to credit the account, negative to debit it.")]
    if admin_schemas.ReasonRequest().validate({"reason": reason}):
        errors["reason"] = [_("Give a reason of up to 500 printable characters.")]
    if errors:
        return await user_page(request, 422, form=shown, field_errors=errors,
                               error=_("Please correct the fields below."))
    operation = f"page:{str(form.get('operation_id', ''))[:64] or uuid.uuid4().hex}"
    try:
        outcome = await request.app[ADMIN].adjust(operator, user_id, int(amount_text),
                                                  reason, operation)
    except InsufficientCredits as exc:
        return await user_page(request, 422, form=shown, error=_(
            "A debit cannot take the available balance below zero: %(available)s credits "
            "are available.", available=tr.number(exc.available_credits)))
    except LedgerError as exc:
        return await user_page(request, _status(exc), form=shown,
                               error=_("The adjustment was not made: %(why)s.", why=str(exc)))
    await _flash(request, _("Adjusted by %(amount)s credits; the balance is now %(balance)s.",
                            amount=("+" if outcome.transaction.amount_credits > 0 else "-")
                            + tr.number(abs(outcome.transaction.amount_credits)),
                            balance=tr.number(outcome.balance.balance_credits)))
    raise _done(request, user_id)


def _status(exc: LedgerError) -> int:
    problem = problem_for(exc)
    return 422 if problem is None or problem.status_code >= 500 else problem.status_code


async def suspend(request: web.Request) -> web.Response:
    return await _suspension(request, suspend=True)


async def resume(request: web.Request) -> web.Response:
    return await _suspension(request, suspend=False)


async def _suspension(request: web.Request, *, suspend: bool) -> web.Response:
    operator, user_id, form = await _form(request)
    _ = translator(request).gettext
    reason = str(form.get("reason", ""))
    if admin_schemas.ReasonRequest().validate({"reason": reason}):
        return await user_page(request, 422, field_errors={
            "suspend_reason" if suspend else "resume_reason":
                [_("Give a reason of up to 500 printable characters.")]},
            error=_("Please correct the fields below."))
    admin = request.app[ADMIN]
    try:
        await (admin.suspend if suspend else admin.resume)(operator, user_id, reason)
    except SuspensionConflict:
        return await user_page(request, 409, error=_(
            "The account is already suspended.") if suspend else _(
            "The account is not suspended."))
    await _flash(request, _("The account is suspended: its sessions, tokens and keys stop "
                            "working now.") if suspend else _("The account is resumed."))
    raise _done(request, user_id)


async def _flash(request: web.Request, message: str) -> None:
    (await get_session(request))["flash"] = {"message": message}


async def ledger_page(request: web.Request) -> web.Response:
    await operator_page(request)
    totals = await request.app[ADMIN].totals()
    latest = await checkpoint_log.latest_checkpoint(request.app[STORE].read_db())
    return render(request, "admin_ledger.html", {"totals": admin_schemas.totals_json(
        totals, request.app[PUBLIC_IDS], verifier_json(request),
        None if latest is None else latest.to_json())})


async def actions_page(request: web.Request) -> web.Response:
    await operator_page(request)
    page = await request.app[ADMIN].actions(limit=PAGE_SIZE, starting_after=_cursor(request))
    actions = shown_actions(translator(request),
                            [admin_schemas.action_json(a) for a in page.data])
    return render(request, "admin_actions.html", {
        "actions": actions,
        "next_after": str(actions[-1]["id"]) if actions and page.has_more else None})

