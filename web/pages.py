"""Server-rendered pages. Every form POST checks CSRF, then redirects (303) or re-renders
the form with a message; a failed form is never a 500 page."""

from __future__ import annotations

import re
import uuid
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session

from ledger import (
    IdempotencyConflict,
    InvalidCredentials,
    LedgerError,
    OperationInProgress,
    TaskView,
    UsernameTaken,
)
from ledger.account import MAX_TOP_UP_CREDITS
from ledger.usernames import RULE
from ml import AmbiguousDecimalComma, BadCsv, MlError, NoValidData, PredictionResult
from web import schemas
from web.api import client_address, known_device, statement_response
from web.auth import check_csrf, end_session, page_user, start_session
from web.bodies import read_multipart, whole_number
from web.devices import DEVICE_COOKIE, DEVICE_MAX_AGE_S
from web.i18n import DEFAULT_LANGUAGE, Translator, translator
from web.input_messages import ambiguous_comma, username_error
from web.keys import CONFIG, DEVICES, LEDGER, ML, MODELS, PUBLIC_IDS, THROTTLE, USERS
from web.limit_pages import limits_view
from web.messages import localize, localize_errors
from web.model_view import model_view
from web.predict_form import PredictForm, service_input
from web.problems import Problem, problem_for
from web.public_ids import TASK
from web.result_table import (
    ROWS_PER_PAGE,
    columns,
    invalid_rows,
    output_text,
    page_of,
    row_text,
    task_rows,
    whole_columns,
)

PAGE_SIZE = 10
PRESETS = [10, 50, 100, 500]
LATEST_ROWS = 10  # rows of the latest result in the cabinet; the task page pages the rest


async def index(request: web.Request) -> web.Response:
    tr = translator(request)
    specs = [model_view(s, tr) for s in request.app[MODELS].specs()]
    return aiohttp_jinja2.render_template("index.html", request, {"models": specs})


async def docs(request: web.Request) -> web.Response:
    return aiohttp_jinja2.render_template("docs.html", request, {})


def _form_page(request: web.Request, name: str, status: int = 200, **context: Any
               ) -> web.Response:
    context.setdefault("form", {})
    context.setdefault("error", None)
    context.setdefault("field_errors", {})
    return aiohttp_jinja2.render_template(name, request, context, status=status)


async def register_page(request: web.Request) -> web.Response:
    return _form_page(request, "register.html")


async def register_submit(request: web.Request) -> web.Response:
    form = await request.post()
    await check_csrf(request, form)
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    tr = translator(request)
    errors = schemas.RegisterRequest().validate({"username": username, "password": password})
    if "username" in errors:  # said in the reader's language (web/input_messages.py)
        errors["username"] = [username_error(username, tr) or RULE]
    if errors:
        return _form_page(request, "register.html", 422, form={"username": username},
                          error=tr("Please correct the fields below."),
                          field_errors=localize_errors(tr, errors))
    try:
        user = await request.app[USERS].register(username, password)
    except UsernameTaken:
        taken = tr("This username is taken.")
        return _form_page(request, "register.html", 409, form={"username": username},
                          field_errors={"username": [taken]}, error=taken)
    await start_session(request, user.id, client_address(request))
    await flash(request, message=tr("Welcome, %(name)s! Top up to run your first prediction.",
                                    name=user.username))
    raise web.HTTPSeeOther(request.app.router["cabinet"].url_for())


async def login_page(request: web.Request) -> web.Response:
    return _form_page(request, "login.html")


async def login_submit(request: web.Request) -> web.Response:
    form = await request.post()
    await check_csrf(request, form)
    username, password = str(form.get("username", ""))[:64], str(form.get("password", ""))
    throttle, client = request.app[THROTTLE], client_address(request)
    device = known_device(request, username)
    tr = translator(request)
    if wait := await throttle.retry_after(username, client, device):
        return _form_page(request, "login.html", 429, form={"username": username},
                          error=tr.ngettext("Too many attempts. Try again in %(num)s second.",
                                            "Too many attempts. Try again in %(num)s seconds.",
                                            wait))
    try:
        user_id = await request.app[USERS].authenticate(username, password[:256])
    except InvalidCredentials:
        await throttle.failed(username, client, device)
        return _form_page(request, "login.html", 401, form={"username": username},
                          error=tr("Wrong username or password."))
    await throttle.succeeded(username, client, device)
    await start_session(request, user_id, client)
    done = web.HTTPSeeOther(request.app.router["cabinet"].url_for())
    if device is None:  # this browser is known to the account from now on
        done.set_cookie(DEVICE_COOKIE, request.app[DEVICES].issue(username),
                        max_age=DEVICE_MAX_AGE_S, httponly=True, samesite="Lax",
                        secure=request.app[CONFIG].secure_cookies)
    raise done


async def logout(request: web.Request) -> web.Response:
    await check_csrf(request, await request.post())
    await end_session(request)
    raise web.HTTPSeeOther(request.app.router["index"].url_for())


async def flash(request: web.Request, **notice: str) -> None:
    """A notice for the next page, already in the request's language (the next page is the
    same person's, in the same language; a stored sentence needs no catalog to show)."""
    (await get_session(request))["flash"] = notice


async def _require_user(request: web.Request) -> int:
    user_id = await page_user(request)
    if user_id is None:
        raise web.HTTPSeeOther(request.app.router["login"].url_for())
    return user_id


def _page_number(request: web.Request, name: str) -> int:
    number = whole_number(request.query.get(name, "1"), 5)
    return min(number, 10_000) if number else 1


async def cabinet(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    """The cabinet; after a failed prediction, `extra` fills the form in again (`form`) and
    says what went wrong (`error`, `last_result`)."""
    user_id = await _require_user(request)
    ledger = request.app[LEDGER]
    session = await get_session(request)
    notice = session.pop("flash", {})
    tasks_page, tx_page = _page_number(request, "tasks_page"), _page_number(request, "tx_page")
    tasks = await ledger.tasks_page(user_id, limit=PAGE_SIZE,
                                    offset=(tasks_page - 1) * PAGE_SIZE)
    moves = await ledger.transactions_page(user_id, limit=PAGE_SIZE,
                                           offset=(tx_page - 1) * PAGE_SIZE)
    last_task = session.get("last_task")
    last = await ledger.find_task(user_id, last_task) if isinstance(last_task, int) else None
    specs = request.app[MODELS].specs()
    tr = translator(request)
    context = {
        "balance": schemas.balance_json(await ledger.get_balance(user_id)),
        "limits": limits_view(await ledger.limits(user_id)),
        "models": [model_view(s, tr) for s in specs],
        "presets": PRESETS, "operation_id": uuid.uuid4().hex,
        "message": notice.get("message"), "error": notice.get("error"),
        # The form offers the model of the latest prediction again, else the first one.
        "form": {"model_id": str(last.model_id) if last else str(specs[0].id) if specs else ""},
        "last_result": None if last is None else result_view(request, last, LATEST_ROWS),
        "tasks": {"items": [task_view(request, t) for t in tasks.data], "page": tasks_page,
                  "has_prev": tasks_page > 1, "has_next": tasks.has_more},
        "transactions": {"items": [transaction_view(tr, schemas.transaction_json(
                                       t, request.app[PUBLIC_IDS])) for t in moves.data],
                         "page": tx_page, "has_prev": tx_page > 1, "has_next": moves.has_more},
    }
    context.update(extra)
    response = aiohttp_jinja2.render_template("cabinet.html", request, context, status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


# A credit movement's description is a stored fact, written in English when it happened.
CHARGE_DESCRIPTION = re.compile(r"Prediction #(\d+): (.+), (\d+) × (\d+) credits\Z", re.DOTALL)


def transaction_view(tr: Translator, shown: dict[str, Any]) -> dict[str, Any]:
    """A movement as the history shows it, its stored description said in the page's
    language (the API keeps the stored text)."""
    text = str(shown.get("description") or "")
    if tr.lang == DEFAULT_LANGUAGE:  # English shows the stored text as it always did
        return shown
    if text == "Top-up":
        shown["description_text"] = tr("Top-up")
    elif found := CHARGE_DESCRIPTION.match(text):
        task_number, model, count, price = found.groups()
        shown["description_text"] = tr.ngettext(
            "Prediction #%(task)s: %(model)s, %(count)s × %(num)s credit",
            "Prediction #%(task)s: %(model)s, %(count)s × %(num)s credits", int(price),
            task=task_number, model=model, count=count)
    return shown


def task_error_text(tr: Translator, error: str) -> str:
    """A task's stored error as a person reads it: a rejection's code (ledger.service writes
    one of two) said in words, any other error text in the page's language."""
    if error == "insufficient_balance":
        return tr("Rejected before it ran: not enough credits. Nothing was charged.")
    if error == "spend_limit_reached":
        return tr("Rejected before it ran: a spend limit was reached. Nothing was charged.")
    return localize(tr, error)


def task_view(request: web.Request, task: TaskView) -> dict[str, Any]:
    spec = request.app[MODELS].get_spec(task.model_id)
    names = columns(spec)
    tr = translator(request)
    shown = schemas.task_json(task, request.app[PUBLIC_IDS])
    return {**shown, "error": task_error_text(tr, shown["error"]) if shown.get("error") else None,
            "model_name": spec.name if spec else tr("model %(id)s", id=task.model_id),
            "model_version": task.model_version or "",
            "input_preview": [row_text(names, row, tr) for row in task.input_data[:3]],
            "output_preview": None if task.output_data is None else [
                output_text(output, tr) for output in task.output_data[:4]]}


def result_view(request: web.Request, task: TaskView, per_page: int = ROWS_PER_PAGE,
                rows_page: int = 1, invalid_page: int = 1) -> dict[str, Any]:
    """A task's predictions and invalid rows, one page of each."""
    spec = request.app[MODELS].get_spec(task.model_id)
    names = columns(spec)
    tr = translator(request)
    return {"task": task_view(request, task), "columns": names,
            "labels": list(spec.schema.labels) if spec else [],
            "rows": page_of(task_rows(names, task, whole_columns(spec), tr), rows_page, per_page),
            "invalid_rows": page_of(invalid_rows(names, task.invalid, tr), invalid_page,
                                    per_page),
            "predicted": len(task.output_data or []), "invalid": task.invalid,
            "cost": task.cost_credits,
            "error": task_error_text(tr, task.error) if task.error else None}


async def top_up(request: web.Request) -> web.Response:
    user_id = await _require_user(request)
    form = await request.post()
    await check_csrf(request, form)
    tr = translator(request)
    choice = str(form.get("amount", ""))
    amount = whole_number(
        str(form.get("custom_amount", "")) if choice == "custom" else choice, 9)
    if amount is None or not 1 <= amount <= MAX_TOP_UP_CREDITS:
        await flash(request, error=tr("Enter a whole number of credits from %(low)s to %(high)s.",
                                      low=tr.number(1), high=tr.number(MAX_TOP_UP_CREDITS)))
        raise web.HTTPSeeOther(request.app.router["cabinet"].url_for())
    operation = f"form-top-up:{str(form.get('operation_id', ''))[:64] or uuid.uuid4().hex}"
    try:
        outcome = await request.app[LEDGER].top_up(user_id, amount, operation)
        added = outcome.transaction.amount_credits
        await flash(request, message=tr.ngettext("Added %(num)s credit.", "Added %(num)s credits.",
                                                 added, num=tr.number(added)))
    except LedgerError as error:
        await flash(request, error=page_message(error, tr))
    raise web.HTTPSeeOther(request.app.router["cabinet"].url_for())


def page_message(error: Exception, tr: Translator) -> str:
    if isinstance(error, IdempotencyConflict):
        return tr("This form was already submitted. The page has been refreshed; try again.")
    if isinstance(error, OperationInProgress):
        return tr("This request is still running. Refresh the page in a moment.")
    return localize(tr, str(error)[:300]) or tr("The request could not be completed.")


async def predict(request: web.Request) -> web.Response:
    user_id = await _require_user(request)
    tr = translator(request)
    nothing = tr("Nothing was charged.")
    try:
        upload = await read_multipart(request, request.app[CONFIG].max_upload_bytes)
    except Problem as problem:  # the body could not be read: there is no form to refill
        await flash(request, error=_sentence(localize(tr, problem.detail or problem.title),
                                             nothing, tr))
        raise web.HTTPSeeOther(request.app.router["cabinet"].url_for()) from None
    await check_csrf(request, upload.fields)
    form = PredictForm.from_upload(upload)
    model_id = whole_number(form.model_id, 9)
    spec = None if model_id is None else request.app[MODELS].get_spec(model_id)

    async def refused(status: int, error: str, **extra: Any) -> web.Response:
        return await cabinet(request, status, error=error, form=form.context(spec, tr), **extra)

    if model_id is None:
        return await refused(422, tr("Choose a model from the list."))
    if form.data.strip() and form.file_text is not None:
        return await refused(422, tr(
            "Paste values or upload a file, not both: %(name)s and the pasted text were both "
            "sent. Clear one of them and submit again. Nothing was charged.",
            name=form.file_name) if form.file_name else tr(
            "Paste values or upload a file, not both: a file and the pasted text were both "
            "sent. Clear one of them and submit again. Nothing was charged."))
    operation = f"form-predict:{upload.fields.get('operation_id', '')[:64] or uuid.uuid4().hex}"
    try:
        text, is_csv = service_input(spec, form)
        result = await request.app[ML].process_task(user_id, model_id, text, operation,
                                                    csv=is_csv)
    except NoValidData as error:
        names = columns(spec)
        return await refused(422, tr("No row is valid; nothing was charged.") if names else
                             tr("No item is a valid number; nothing was charged."),
                             last_result=_invalid_only(names, error.invalid, tr))
    except AmbiguousDecimalComma as error:
        return await refused(422, ambiguous_comma(error, tr))
    except BadCsv as error:
        reason = localize(tr, str(error)).rstrip(".")
        if form.file_text is None:
            said = tr("The pasted text was not read: %(reason)s. Nothing was charged.",
                      reason=reason)
        elif form.file_name:
            said = tr("%(name)s was not read: %(reason)s. Nothing was charged.",
                      name=form.file_name, reason=reason)
        else:
            said = tr("Your file was not read: %(reason)s. Nothing was charged.", reason=reason)
        return await refused(422, said)
    except (MlError, LedgerError) as error:
        mapped = problem_for(error)
        return await refused(mapped.status_code if mapped else 422,
                             _sentence(page_message(error, tr), nothing, tr))
    rows = bool(columns(spec))
    if result.status == "rejected":
        zone = (await request.app[LEDGER].limits(user_id)).time_zone
        return await refused(402, _outcome_notice(result, rows, tr, zone)["error"])
    (await get_session(request))["last_task"] = result.task.id
    if result.status == "failed":  # the task page keeps the failure; the form keeps the input
        return await refused(502, _outcome_notice(result, rows, tr)["error"])
    await flash(request, **_outcome_notice(result, rows, tr))
    raise web.HTTPSeeOther(request.app.router["cabinet"].url_for())


def _invalid_only(names: list[str], invalid: list[dict[str, Any]], tr: Translator
                  ) -> dict[str, Any]:
    return {"task": None, "columns": names, "labels": [], "rows": page_of([], 1),
            "invalid_rows": page_of(invalid_rows(names, invalid, tr), 1, LATEST_ROWS),
            "predicted": 0, "invalid": invalid, "cost": 0, "error": None}


def _sentence(text: str, then: str, tr: Translator) -> str:
    """'send at least one item' → 'Send at least one item. Nothing was charged.'"""
    text = text.strip() or tr("The request could not be completed.")
    text = text[0].upper() + text[1:]
    text = text if text.endswith((".", "!", "?")) else text + "."
    return f"{text} {then}" if then and then.rstrip(".").lower() not in text.lower() else text


def _outcome_notice(result: PredictionResult, rows: bool, tr: Translator,
                    zone: str | None = None) -> dict[str, str]:
    """What the person is told of a finished prediction, as whole sentences."""
    if result.status == "completed":
        done, skipped = len(result.predictions), len(result.invalid)
        cost = tr.ngettext("%(num)s credit", "%(num)s credits", result.cost_credits,
                           num=tr.number(result.cost_credits))
        said = (tr.ngettext("Predicted %(num)s row for %(cost)s.",
                            "Predicted %(num)s rows for %(cost)s.", done,
                            num=tr.number(done), cost=cost) if rows else
                tr.ngettext("Predicted %(num)s item for %(cost)s.",
                            "Predicted %(num)s items for %(cost)s.", done,
                            num=tr.number(done), cost=cost))
        if skipped:
            said += " " + (tr.ngettext("%(num)s invalid row was skipped.",
                                       "%(num)s invalid rows were skipped.", skipped,
                                       num=tr.number(skipped)) if rows else
                           tr.ngettext("%(num)s invalid item was skipped.",
                                       "%(num)s invalid items were skipped.", skipped,
                                       num=tr.number(skipped)))
        return {"message": said}
    if result.status == "rejected" and (refusal := result.refusal) is not None:
        values = {"cost": tr.number(result.quoted_credits),
                  "left": tr.number(refusal.left_credits or 0),
                  "when": tr.moment(refusal.resets_at.isoformat(), zone)}
        if refusal.limit == "daily":
            return {"error": tr("Spend limit reached: this prediction costs %(cost)s and your "
                                "daily limit has %(left)s left until %(when)s. Nothing was "
                                "charged.", **values)}
        if refusal.limit == "monthly":
            return {"error": tr("Spend limit reached: this prediction costs %(cost)s and your "
                                "monthly limit has %(left)s left until %(when)s. Nothing was "
                                "charged.", **values)}
        return {"error": tr("Spend limit reached: this prediction costs %(cost)s and this "
                            "key's monthly limit has %(left)s left until %(when)s. Nothing was "
                            "charged.", **values)}
    if result.status == "rejected":
        return {"error": tr("Not enough credits: this prediction costs %(cost)s and "
                            "%(available)s are available. Nothing was charged.",
                            cost=tr.number(result.quoted_credits),
                            available=tr.number(result.balance.available_credits))}
    return {"error": tr("The prediction failed (%(reason)s). Nothing was charged.",
                        reason=localize(tr, result.task.error or ""))}


async def task(request: web.Request) -> web.Response:
    user_id = await _require_user(request)
    # tsk_..., or the old plain number of a link made before ids were opaque
    task_id = request.app[PUBLIC_IDS].parse(TASK, request.match_info["task_id"])
    found = None if task_id is None else await request.app[LEDGER].find_task(user_id, task_id)
    if found is None:
        raise web.HTTPNotFound(text="There is no such task in your history.")
    view = result_view(request, found, ROWS_PER_PAGE, _page_number(request, "rows_page"),
                       _page_number(request, "invalid_page"))
    view["zone"] = (await request.app[LEDGER].limits(user_id)).time_zone  # times in its zone
    response = aiohttp_jinja2.render_template("task.html", request, view)
    response.headers["Cache-Control"] = "no-store"
    return response


async def statement(request: web.Request) -> web.Response:
    """The cabinet's download: the same statement file as GET /api/v1/statement/proof."""
    return await statement_response(request, await _require_user(request))
