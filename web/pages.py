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
from ml import MlError, NoValidData, PredictionResult, predictions_of
from ml.validation import split_csv, split_text
from web import schemas
from web.api import client_address
from web.auth import check_csrf, end_session, page_user, start_session
from web.bodies import read_multipart, whole_number
from web.keys import CONFIG, LEDGER, ML, MODELS, THROTTLE, USERS
from web.problems import Problem

PAGE_SIZE = 10
PRESETS = [10, 50, 100, 500]


async def index(request: web.Request) -> web.Response:
    specs = [s.public() for s in request.app[MODELS].specs()]
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
    await start_session(request, user.id)
    await flash(request, message=f"Welcome, {username}! Top up to run your first prediction.")
    raise web.HTTPSeeOther(request.app.router["cabinet"].url_for())


async def login_page(request: web.Request) -> web.Response:
    return _form_page(request, "login.html")


async def login_submit(request: web.Request) -> web.Response:
    form = await request.post()
    await check_csrf(request, form)
    username, password = str(form.get("username", ""))[:64], str(form.get("password", ""))
    throttle, client = request.app[THROTTLE], client_address(request)
    if wait := await throttle.retry_after(username, client):
        return _form_page(request, "login.html", 429, form={"username": username},
                          error=f"Too many attempts. Try again in {wait} seconds.")
    try:
        user_id = await request.app[USERS].authenticate(username, password[:256])
    except InvalidCredentials:
        await throttle.failed(username, client)
        return _form_page(request, "login.html", 401, form={"username": username},
                          error="Wrong username or password.")
    await throttle.succeeded(username, client)
    await start_session(request, user_id)
    raise web.HTTPSeeOther(request.app.router["cabinet"].url_for())


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


async def cabinet(request: web.Request, **extra: Any) -> web.Response:
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
    context = {
        "balance": schemas.balance_json(await ledger.get_balance(user_id)),
        "models": [s.public() for s in request.app[MODELS].specs()],
        "presets": PRESETS, "operation_id": uuid.uuid4().hex,
        "message": notice.get("message"), "error": notice.get("error"),
        "last_result": None if last is None else result_view(request, last),
        "tasks": {"items": [task_view(request, t) for t in tasks.data], "page": tasks_page,
                  "has_prev": tasks_page > 1, "has_next": tasks.has_more},
        "transactions": {"items": [schemas.transaction_json(t) for t in moves.data],
                         "page": tx_page, "has_prev": tx_page > 1, "has_next": moves.has_more},
    }
    context.update(extra)
    status = 422 if extra.get("last_result") else 200
    response = aiohttp_jinja2.render_template("cabinet.html", request, context, status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


def task_view(request: web.Request, task: TaskView) -> dict[str, Any]:
    spec = request.app[MODELS].get_spec(task.model_id)
    return {**schemas.task_json(task),
            "model_name": spec.name if spec else f"model {task.model_id}"}


def result_view(request: web.Request, task: TaskView) -> dict[str, Any]:
    return {"task": task_view(request, task),
            "predictions": [schemas.prediction_json(p) for p in predictions_of(task)],
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
    except Problem as problem:
        await flash(request, error=problem.detail or problem.title)
        raise web.HTTPSeeOther(request.app.router["cabinet"].url_for()) from None
    await check_csrf(request, upload.fields)
    model_id = whole_number(upload.fields.get("model_id", ""), 9)
    if model_id is None:
        await flash(request, error="Choose a model from the list.")
        raise web.HTTPSeeOther(request.app.router["cabinet"].url_for())
    items = split_csv(upload.file_text) if upload.file_text is not None else split_text(
        upload.fields.get("data", ""))
    operation = f"form-predict:{upload.fields.get('operation_id', '')[:64] or uuid.uuid4().hex}"
    try:
        result = await request.app[ML].process_task(user_id, model_id, items, operation,
                                                    as_text=True)
    except NoValidData as error:
        return await cabinet(request, error="No item is a valid number; nothing was charged.",
                             last_result={"task": None, "predictions": [],
                                          "invalid": error.invalid, "cost": 0, "error": None})
    except (MlError, LedgerError) as error:
        await flash(request, error=page_message(error))
        raise web.HTTPSeeOther(request.app.router["cabinet"].url_for()) from None
    (await get_session(request))["last_task"] = result.task.id
    await flash(request, **_outcome_notice(result))
    raise web.HTTPSeeOther(request.app.router["cabinet"].url_for())


def _outcome_notice(result: PredictionResult) -> dict[str, str]:
    if result.status == "completed":
        skipped = len(result.invalid)
        bad = (f" {skipped} invalid {'item was' if skipped == 1 else 'items were'} skipped."
               if skipped else "")
        return {"message": f"Predicted {len(result.predictions)} items for "
                           f"{result.cost_credits:,} credits.{bad}"}
    if result.status == "rejected":
        return {"error": f"Not enough credits: this prediction costs {result.quoted_credits:,} "
                         f"and {result.balance.available_credits:,} are available. "
                         "Nothing was charged."}
    return {"error": f"The prediction failed ({result.task.error}). Nothing was charged."}


async def task(request: web.Request) -> web.Response:
    user_id = await _require_user(request)
    raw = request.match_info["task_id"]
    task_id = whole_number(raw, 18)
    found = None if task_id is None else await request.app[LEDGER].find_task(user_id, task_id)
    if found is None:
        raise web.HTTPNotFound(text="There is no such task in your history.")
    response = aiohttp_jinja2.render_template("task.html", request, {
        "task": task_view(request, found), **result_view(request, found)})
    response.headers["Cache-Control"] = "no-store"
    return response
