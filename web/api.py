"""REST API v1 handlers: parse, call one use case, shape the reply. Nothing else."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from ledger import InvalidCredentials
from ml import PredictionResult
from web import schemas
from web.auth import api_user, bearer_token
from web.bodies import load, read_json, read_multipart, whole_number
from web.keys import CONFIG, LEDGER, ML, MODELS, OPENAPI, THROTTLE, USERS, VERIFIER
from web.problems import Problem

IDEMPOTENCY_KEY_RE = re.compile(r"[\x21-\x7e]{1,255}")

register_schema, login_schema = schemas.RegisterRequest(), schemas.LoginRequest()
top_up_schema, predict_schema = schemas.TopUpRequest(), schemas.PredictRequest()
page_query = schemas.PageQuery()


def client_address(request: web.Request) -> str:
    return request.remote or "unknown"


def idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not IDEMPOTENCY_KEY_RE.fullmatch(key):
        raise Problem(422, "validation_error", "The request is not valid",
                      "Idempotency-Key is 1–255 visible ASCII characters",
                      errors={"Idempotency-Key": ["1–255 visible ASCII characters"]})
    return None if key is None else f"api:{key}"


async def health(request: web.Request) -> web.Response:
    """Alive, and how far the background verifier has vouched for the log."""
    report = request.app[VERIFIER].health()
    return web.json_response({"status": "ok" if report["first_break"] is None
                              else "ledger_damaged", **report})


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI])


async def register(request: web.Request) -> web.Response:
    body = load(register_schema, await read_json(request))
    user = await request.app[USERS].register(body["username"], body["password"])
    return web.json_response(schemas.registered_json(user), status=201)


async def login(request: web.Request) -> web.Response:
    body = load(login_schema, await read_json(request))
    throttle, client = request.app[THROTTLE], client_address(request)
    if wait := await throttle.retry_after(body["username"], client):
        raise Problem(429, "too_many_attempts", "Too many login attempts",
                      f"try again in {wait} seconds", headers={"Retry-After": str(wait)})
    try:
        issued = await request.app[USERS].login(body["username"], body["password"], "api")
    except InvalidCredentials:
        await throttle.failed(body["username"], client)
        raise
    await throttle.succeeded(body["username"], client)
    return web.json_response(schemas.token_json(issued))


async def logout(request: web.Request) -> web.Response:
    await api_user(request)
    token = bearer_token(request)
    assert token is not None
    await request.app[USERS].logout(token)
    return web.Response(status=204)


async def me(request: web.Request) -> web.Response:
    user_id = await api_user(request)
    return web.json_response(schemas.me_json(await request.app[LEDGER].profile(user_id)))


async def balance(request: web.Request) -> web.Response:
    user_id = await api_user(request)
    return web.json_response(schemas.balance_json(await request.app[LEDGER].get_balance(user_id)))


async def top_up(request: web.Request) -> web.Response:
    user_id = await api_user(request)
    key = idempotency_key(request)
    body = load(top_up_schema, await read_json(request))
    outcome = await request.app[LEDGER].top_up(user_id, body["amount"], key)
    return web.json_response(schemas.top_up_json(outcome), status=201)


def _page(request: web.Request) -> dict[str, Any]:
    return load(page_query, dict(request.query))


async def transactions(request: web.Request) -> web.Response:
    user_id = await api_user(request)
    query = _page(request)
    page = await request.app[LEDGER].transactions_page(user_id, **query)
    return web.json_response(schemas.page_json(page, schemas.transaction_json))


async def models(request: web.Request) -> web.Response:
    return web.json_response({"data": [s.public() for s in request.app[MODELS].specs()]})


async def predict(request: web.Request) -> web.Response:
    user_id = await api_user(request)
    key = idempotency_key(request)
    if request.content_type == "multipart/form-data":
        model_id, text, is_csv = await _predict_upload(request)
        result = await request.app[ML].process_task(user_id, model_id, text, key, csv=is_csv)
    else:
        body = load(predict_schema, await read_json(request))
        result = await request.app[ML].process_task(user_id, body["model_id"], body["data"],
                                                    key)
    return prediction_response(result)


async def _predict_upload(request: web.Request) -> tuple[int, str, bool]:
    """The model id and the text to read: the CSV file, or else the pasted `data` field."""
    upload = await read_multipart(request, request.app[CONFIG].max_upload_bytes)
    model_id = whole_number(upload.fields.get("model_id", ""), 9)
    if model_id is None:
        raise Problem(422, "validation_error", "The request is not valid",
                      "model_id: a whole number", errors={"model_id": ["a whole number"]})
    if unknown := sorted(set(upload.fields) - {"model_id", "data"}):  # as for a JSON body
        raise Problem(422, "validation_error", "The request is not valid",
                      f"unknown fields: {', '.join(unknown)}"[:300],
                      errors={name[:64]: ["Unknown field."] for name in unknown})
    if upload.file_text is not None:
        if upload.fields.get("data", "").strip():  # which one was meant? say so, not guess
            raise Problem(422, "validation_error", "The request is not valid",
                          "send a file or data, not both",
                          errors={"data": ["send a file or data, not both"]})
        return model_id, upload.file_text, True
    return model_id, upload.fields.get("data", ""), False


def prediction_response(result: PredictionResult) -> web.Response:
    """The same stored result always gives the same status and body."""
    task = schemas.public_task(result.task)
    balance = schemas.balance_json(result.balance)
    if result.status == "rejected":
        raise Problem(402, "insufficient_balance", "Not enough credits",
                      f"this prediction costs {result.quoted_credits} credits and "
                      f"{result.balance.available_credits} are available; nothing was charged",
                      balance=balance, cost=result.quoted_credits, task=task)
    if result.status == "failed":  # the model's fault, not the service's: 502, not 503
        raise Problem(502, "prediction_failed", "The prediction failed",
                      f"{result.task.error}; nothing was charged", task=task, balance=balance)
    return web.json_response({
        "task": task, "predictions": [schemas.prediction_json(p) for p in result.predictions],
        "invalid": result.invalid, "cost": result.cost_credits, "balance": balance})


async def tasks(request: web.Request) -> web.Response:
    user_id = await api_user(request)
    query = _page(request)
    page = await request.app[LEDGER].tasks_page(user_id, **query)
    return web.json_response(schemas.page_json(page, schemas.public_task))


async def task(request: web.Request) -> web.Response:
    user_id = await api_user(request)
    raw = request.match_info["task_id"]
    task_id = whole_number(raw, 18)
    found = None if task_id is None else await request.app[LEDGER].find_task(user_id, task_id)
    if found is None:
        raise Problem(404, "task_not_found", "No such task", f"there is no task {raw[:40]}")
    return web.json_response(schemas.public_task(found))
