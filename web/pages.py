"""Server-rendered pages. Every form POST checks CSRF, then redirects (303) or re-renders
the form with a message; a failed form is never a 500 page."""

from __future__ import annotations

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
from ml import BadCsv, MlError, NoValidData, PredictionResult
from web import schemas
from web.api import client_address, known_device, statement_response
from web.auth import check_csrf, end_session, page_user, start_session
from web.bodies import read_multipart, whole_number
from web.devices import DEVICE_COOKIE, DEVICE_MAX_AGE_S
from web.keys import CONFIG, DEVICES, LEDGER, ML, MODELS, PUBLIC_IDS, THROTTLE, USERS
from web.limit_pages import limits_view
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
    specs = [model_view(s) for s in request.app[MODELS].specs()]
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
    errors = schemas.RegisterRequest().validate({"username": username, "password": password})
    if errors:
        return _form_page(request, "register.html", 422, form={"username": username},
                          error="Please correct the fields below.", field_errors=errors)
    try:
        user = await request.app[USERS].register(username, password)
    except UsernameTaken:
        return _form_page(request, "register.html", 409, form={"username": username},
                          field_errors={"username": ["This username is taken."]},
                          error="This username is taken.")
    await start_session(request, user.id, client_address(request))
    await flash(request, message=f"Welcome, {username}! Top up to run your first prediction.")
    raise web.HTTPSeeOther(request.app.router["cabinet"].url_for())


async def login_page(request: web.Request) -> web.Response:
    return _form_page(request, "login.html")


async def login_submit(request: web.Request) -> web.Response:
    form = await request.post()
    await check_csrf(request, form)
    username, password = str(form.get("username", ""))[:64], str(form.get("password", ""))
    throttle, client = request.app[THROTTLE], client_address(request)
    device = known_device(request, username)
    if wait := await throttle.retry_after(username, client, device):
        return _form_page(request, "login.html", 429, form={"username": username},
                          error=f"Too many attempts. Try again in {wait} seconds.")
    try:
        user_id = await request.app[USERS].authenticate(username, password[:256])
    except InvalidCredentials:
        await throttle.failed(username, client, device)
        return _form_page(request, "login.html", 401, form={"username": username},
                          error="Wrong username or password.")
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
    context = {
        "balance": schemas.balance_json(await ledger.get_balance(user_id)),
        "limits": limits_view(await ledger.limits(user_id)),
        "models": [model_view(s) for s in specs],
        "presets": PRESETS, "operation_id": uuid.uuid4().hex,
        "message": notice.get("message"), "error": notice.get("error"),
        # The form offers the model of the latest prediction again, else the first one.
        "form": {"model_id": str(last.model_id) if last else str(specs[0].id) if specs else ""},
        "last_result": None if last is None else result_view(request, last, LATEST_ROWS),
        "tasks": {"items": [task_view(request, t) for t in tasks.data], "page": tasks_page,
                  "has_prev": tasks_page > 1, "has_next": tasks.has_more},
        "transactions": {"items": [schemas.transaction_json(t, request.app[PUBLIC_IDS])
                                   for t in moves.data],
                         "page": tx_page, "has_prev": tx_page > 1, "has_next": moves.has_more},
    }
    context.update(extra)
    response = aiohttp_jinja2.render_template("cabinet.html", request, context, status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


def task_view(request: web.Request, task: TaskView) -> dict[str, Any]:
    spec = request.app[MODELS].get_spec(task.model_id)
    names = columns(spec)
    return {**schemas.task_json(task, request.app[PUBLIC_IDS]),
            "model_name": spec.name if spec else f"model {task.model_id}",
            "model_version": task.model_version or "",
            "input_preview": [row_text(names, row) for row in task.input_data[:3]],
            "output_preview": None if task.output_data is None else [
                output_text(output) for output in task.output_data[:4]]}


def result_view(request: web.Request, task: TaskView, per_page: int = ROWS_PER_PAGE,
                rows_page: int = 1, invalid_page: int = 1) -> dict[str, Any]:
    """A task's predictions and invalid rows, one page of each."""
    spec = request.app[MODELS].get_spec(task.model_id)
    names = columns(spec)
    return {"task": task_view(request, task), "columns": names,
            "labels": list(spec.schema.labels) if spec else [],
            "rows": page_of(task_rows(names, task, whole_columns(spec)), rows_page, per_page),
            "invalid_rows": page_of(invalid_rows(names, task.invalid), invalid_page, per_page),
            "predicted": len(task.output_data or []),
            "invalid": task.invalid, "cost": task.cost_credits, "error": task.error}


async def top_up(request: web.Request) -> web.Response:
    user_id = await _require_user(request)
    form = await request.post()
    await check_csrf(request, form)
    choice = str(form.get("amount", ""))
    amount = whole_number(
        str(form.get("custom_amount", "")) if choice == "custom" else choice, 9)
    if amount is None or not 1 <= amount <= MAX_TOP_UP_CREDITS:
        await flash(request, error="Enter a whole number of credits from 1 to 1,000,000.")
        raise web.HTTPSeeOther(request.app.router["cabinet"].url_for())
    operation = f"form-top-up:{str(form.get('operation_id', ''))[:64] or uuid.uuid4().hex}"
    try:
        outcome = await request.app[LEDGER].top_up(user_id, amount, operation)
        await flash(request, message=f"Added {outcome.transaction.amount_credits:,} credits.")
    except LedgerError as error:
        await flash(request, error=page_message(error))
    raise web.HTTPSeeOther(request.app.router["cabinet"].url_for())


def page_message(error: Exception) -> str:
    if isinstance(error, IdempotencyConflict):
        return "This form was already submitted. The page has been refreshed; try again."
    if isinstance(error, OperationInProgress):
        return "This request is still running. Refresh the page in a moment."
    return str(error)[:300] or "The request could not be completed."


async def predict(request: web.Request) -> web.Response:
    user_id = await _require_user(request)
    try:
        upload = await read_multipart(request, request.app[CONFIG].max_upload_bytes)
    except Problem as problem:  # the body could not be read: there is no form to refill
        await flash(request, error=_sentence(problem.detail or problem.title,
                                             "Nothing was charged."))
        raise web.HTTPSeeOther(request.app.router["cabinet"].url_for()) from None
    await check_csrf(request, upload.fields)
    form = PredictForm.from_upload(upload)
    model_id = whole_number(form.model_id, 9)
    spec = None if model_id is None else request.app[MODELS].get_spec(model_id)

    async def refused(status: int, error: str, **extra: Any) -> web.Response:
        return await cabinet(request, status, error=error, form=form.context(spec), **extra)

    if model_id is None:
        return await refused(422, "Choose a model from the list.")
    if form.data.strip() and form.file_text is not None:
        return await refused(422, f"Paste values or upload a file, not both: "
                                  f"{form.file_name or 'a file'} and the pasted text were both "
                                  "sent. Clear one of them and submit again. Nothing was charged.")
    operation = f"form-predict:{upload.fields.get('operation_id', '')[:64] or uuid.uuid4().hex}"
    try:
        text, is_csv = service_input(spec, form)
        result = await request.app[ML].process_task(user_id, model_id, text, operation,
                                                    csv=is_csv)
    except NoValidData as error:
        names = columns(spec)
        return await refused(422, "No row is valid; nothing was charged." if names else
                             "No item is a valid number; nothing was charged.",
                             last_result=_invalid_only(names, error.invalid))
    except BadCsv as error:
        source = form.file_name or "Your file" if form.file_text is not None else "The pasted text"
        return await refused(422, f"{source} was not read: {str(error).rstrip('.')}. "
                                  "Nothing was charged.")
    except (MlError, LedgerError) as error:
        mapped = problem_for(error)
        return await refused(mapped.status_code if mapped else 422,
                             _sentence(page_message(error), "Nothing was charged."))
    noun = "row" if columns(spec) else "item"
    if result.status == "rejected":
        return await refused(402, _outcome_notice(result, noun)["error"])
    (await get_session(request))["last_task"] = result.task.id
    if result.status == "failed":  # the task page keeps the failure; the form keeps the input
        return await refused(502, _outcome_notice(result, noun)["error"])
    await flash(request, **_outcome_notice(result, noun))
    raise web.HTTPSeeOther(request.app.router["cabinet"].url_for())


def _invalid_only(names: list[str], invalid: list[dict[str, Any]]) -> dict[str, Any]:
    return {"task": None, "columns": names, "labels": [], "rows": page_of([], 1),
            "invalid_rows": page_of(invalid_rows(names, invalid), 1, LATEST_ROWS),
            "predicted": 0, "invalid": invalid, "cost": 0, "error": None}


def _sentence(text: str, then: str = "") -> str:
    """'send at least one item' → 'Send at least one item. Nothing was charged.'"""
    text = text.strip() or "The request could not be completed"
    text = text[0].upper() + text[1:]
    text = text if text.endswith((".", "!", "?")) else text + "."
    return f"{text} {then}" if then and then not in text else text


def _outcome_notice(result: PredictionResult, noun: str = "item") -> dict[str, str]:
    if result.status == "completed":
        skipped = len(result.invalid)
        bad = (f" {skipped:,} invalid {noun}{' was' if skipped == 1 else 's were'} skipped."
               if skipped else "")
        done = len(result.predictions)
        return {"message": f"Predicted {done:,} {noun}{'' if done == 1 else 's'} for "
                           f"{result.cost_credits:,} credits.{bad}"}
    if result.status == "rejected" and (refusal := result.refusal) is not None:
        name = {"daily": "daily", "monthly": "monthly", "key_monthly": "this key's monthly"}
        return {"error": f"Spend limit reached: this prediction costs "
                         f"{result.quoted_credits:,} and your {name[refusal.limit]} limit has "
                         f"{refusal.left_credits or 0:,} left until "
                         f"{refusal.resets_at:%Y-%m-%d %H:%M} UTC. Nothing was charged."}
    if result.status == "rejected":
        return {"error": f"Not enough credits: this prediction costs {result.quoted_credits:,} "
                         f"and {result.balance.available_credits:,} are available. "
                         "Nothing was charged."}
    return {"error": f"The prediction failed ({result.task.error}). Nothing was charged."}


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
