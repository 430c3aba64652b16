"""REST API v1 handlers: parse, call one use case, shape the reply. Nothing else."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from ledger import Credential, InvalidCredentials, InvalidInput, KeyLimit, checkpoints
from ledger.checkpoints import known_keys
from ledger.consistency import NoSuchCheckpoint, build_consistency
from ledger.statement_proof import StatementNotReady, build_statement
from ml import AmbiguousDecimalComma, PredictionResult
from web import fast_json, schemas
from web.auth import api_user, bearer_token, require_login
from web.bodies import load, read_json, read_multipart, whole_number
from web.devices import DEVICE_COOKIE
from web.i18n import DEFAULT_LANGUAGE, Translator, translator
from web.input_messages import ambiguous_comma_problem
from web.keys import (
    API_KEYS,
    CHECKPOINTS,
    CONFIG,
    CREDENTIAL,
    DEVICES,
    LEDGER,
    ML,
    MODELS,
    PUBLIC_IDS,
    THROTTLE,
    USERS,
    VERIFIER,
)
from web.messages import localize_invalid, localize_task
from web.predict_body import predict_body
from web.problems import Problem
from web.public_ids import TASK, TRANSACTION, PublicIds

IDEMPOTENCY_KEY_RE = re.compile(r"[\x21-\x7e]{1,255}")

register_schema, login_schema = schemas.RegisterRequest(), schemas.LoginRequest()
top_up_schema, predict_schema = schemas.TopUpRequest(), schemas.PredictRequest()
page_query, id_page_query = schemas.PageQuery(), schemas.IdPageQuery()
key_create_schema, password_schema = schemas.KeyCreateRequest(), schemas.PasswordChangeRequest()


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
    # Built at the first request, not at start-up: apispec and the walk over every schema
    # cost ~0.1 s of CPU that no start needs (web/openapi.py caches the document).
    from web.openapi import openapi_document

    return web.json_response(openapi_document())


async def register(request: web.Request) -> web.Response:
    body = load(register_schema, await read_json(request))
    user = await request.app[USERS].register(body["username"], body["password"])
    return web.json_response(schemas.registered_json(user), status=201)


async def login(request: web.Request) -> web.Response:
    body = load(login_schema, await read_json(request))
    throttle, client = request.app[THROTTLE], client_address(request)
    device = known_device(request, body["username"])
    if wait := await throttle.retry_after(body["username"], client, device):
        raise Problem(429, "too_many_attempts", "Too many login attempts",
                      f"try again in {wait} seconds", headers={"Retry-After": str(wait)})
    try:
        issued = await request.app[USERS].login(body["username"], body["password"], "api",
                                                client_address(request))
    except InvalidCredentials:
        await throttle.failed(body["username"], client, device)
        raise
    await throttle.succeeded(body["username"], client, device)
    return web.json_response(schemas.token_json(issued))


def known_device(request: web.Request, username: str) -> str | None:
    """The id of this browser's device cookie if it signed in to `username` before."""
    return request.app[DEVICES].known(username, request.cookies.get(DEVICE_COOKIE))


async def logout(request: web.Request) -> web.Response:
    await require_login(request)
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
    user_id = await api_user(request, "predict")
    key = idempotency_key(request)
    body = load(top_up_schema, await read_json(request))
    outcome = await request.app[LEDGER].top_up(user_id, body["amount"], key)
    return web.json_response(schemas.top_up_json(outcome, request.app[PUBLIC_IDS]),
                             status=201)


def _page(request: web.Request) -> dict[str, Any]:
    return load(page_query, dict(request.query))


def _id_page(request: web.Request, prefix: str) -> dict[str, Any]:
    """A page query whose cursor is a public id of this kind or an old plain number."""
    query = load(id_page_query, dict(request.query))
    if "starting_after" in query:
        number = request.app[PUBLIC_IDS].parse(prefix, query["starting_after"])
        if number is None:
            problem = f"an id from the previous page ({prefix}...)"
            raise Problem(422, "validation_error", "The request is not valid",
                          f"starting_after: {problem}", errors={"starting_after": [problem]})
        query["starting_after"] = number
    return query


async def transactions(request: web.Request) -> web.Response:
    user_id = await api_user(request)
    query = _id_page(request, TRANSACTION)
    page = await request.app[LEDGER].transactions_page(user_id, **query)
    ids = request.app[PUBLIC_IDS]
    return web.json_response(schemas.page_json(page, lambda t: schemas.transaction_json(t, ids)))


async def models(request: web.Request) -> web.Response:
    return web.json_response({"data": [s.public() for s in request.app[MODELS].specs()]})


async def predict(request: web.Request) -> web.Response:
    user_id = await api_user(request, "predict")
    key = idempotency_key(request)
    spender = spending_key(request[CREDENTIAL])
    if request.content_type == "multipart/form-data":
        model_id, text, is_csv = await _predict_upload(request)
        try:
            result = await request.app[ML].process_task(user_id, model_id, text, key,
                                                        csv=is_csv, key=spender)
        except AmbiguousDecimalComma as error:  # title and detail in the asked language
            title, detail = ambiguous_comma_problem(error, translator(request))
            raise Problem(422, error.code, title, detail, fragment=error.fragment) from None
    else:
        body = predict_body(await read_json(request))
        result = await request.app[ML].process_task(user_id, body["model_id"], body["data"],
                                                    key, key=spender)
    return prediction_response(result, request.app[PUBLIC_IDS], translator(request))


def spending_key(credential: Credential) -> KeyLimit | None:
    """The API key whose own monthly limit a prediction counts against (None: a login)."""
    if credential.key_id is None:
        return None
    return KeyLimit(key_id=credential.key_id,
                    monthly_limit_credits=credential.monthly_limit_credits)


async def _predict_upload(request: web.Request) -> tuple[int, str, bool]:
    """The model id and the text to read: the CSV file, or else the pasted `data` field."""
    upload = await read_multipart(request, request.app[CONFIG].max_upload_bytes)
    model_id = whole_number(upload.fields.get("model_id", ""), 9)
    if model_id is None:
        raise Problem(422, "validation_error", "The request is not valid",
                      "model_id: a whole number", errors={"model_id": ["a whole number"]})
    # as for a JSON body, an unknown field is refused
    if unknown := sorted(set(upload.fields) - {"model_id", "data", "charset"}):
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


def prediction_response(result: PredictionResult, ids: PublicIds,
                        tr: Translator | None = None) -> web.Response:
    """The same stored result always gives the same status and body (in each language)."""
    tr = tr or Translator(DEFAULT_LANGUAGE)
    task = localize_task(tr, schemas.public_task(result.task, ids))
    balance = schemas.balance_json(result.balance)
    if result.status == "rejected" and (refusal := result.refusal) is not None:
        left = refusal.left_credits or 0
        raise Problem(402, "spend_limit_reached", "Spend limit reached",
                      f"this prediction costs {result.quoted_credits} credits and the "
                      f"{refusal.limit.replace('_', ' ')} limit has {left} left until "
                      f"{refusal.resets_at.isoformat(timespec='seconds')}; nothing was charged",
                      limit=refusal.limit, limit_credits=refusal.limit_credits, left=left,
                      resets_at=refusal.resets_at.isoformat(timespec="seconds"),
                      cost=result.quoted_credits, balance=balance, task=task)
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
        "invalid": localize_invalid(tr, result.invalid), "cost": result.cost_credits,
        "balance": balance}, dumps=fast_json.dumps)


async def tasks(request: web.Request) -> web.Response:
    user_id = await api_user(request)
    query = _id_page(request, TASK)
    page = await request.app[LEDGER].tasks_page(user_id, **query)
    ids = request.app[PUBLIC_IDS]
    tr = translator(request)
    return web.json_response(schemas.page_json(
        page, lambda t: localize_task(tr, schemas.public_task(t, ids))))


async def task(request: web.Request) -> web.Response:
    user_id = await api_user(request)
    raw = request.match_info["task_id"]
    ids = request.app[PUBLIC_IDS]
    task_id = ids.parse(TASK, raw)  # tsk_..., or the old plain number
    found = None if task_id is None else await request.app[LEDGER].find_task(user_id, task_id)
    if found is None:
        raise Problem(404, "task_not_found", "No such task", f"there is no task {raw[:40]}")
    return web.json_response(localize_task(translator(request), schemas.public_task(found, ids)))


# -- signed checkpoints and statements with proof (issue 11) -----------------------------------

async def public_key(request: web.Request) -> web.Response:
    """The key signing now, and every key that ever signed (old checkpoints stay checkable)."""
    checkpointer = request.app[CHECKPOINTS]
    keys = await known_keys(checkpointer.store.read_db())
    signer = checkpointer.signer
    return web.json_response({"key_id": signer.key_id, "algorithm": "Ed25519",
                              "public_key_pem": signer.public_key_pem, "keys": keys})


async def latest_checkpoint(request: web.Request) -> web.Response:
    checkpointer = request.app[CHECKPOINTS]
    latest = await checkpoints.latest_checkpoint(checkpointer.store.read_db())
    if latest is None:
        raise Problem(404, "no_checkpoint", "No checkpoint yet", "the log is empty")
    return web.json_response(latest.to_json())


async def statement_proof(request: web.Request) -> web.Response:
    return await statement_response(request, await api_user(request))


async def statement_response(request: web.Request, user_id: int) -> web.Response:
    """The user's statement file (a new checkpoint is sealed first when one is due)."""
    checkpointer = request.app[CHECKPOINTS]
    try:
        statement = await build_statement(checkpointer.store, checkpointer, user_id)
    except StatementNotReady as busy:
        raise Problem(503, "service_unavailable", "Try again", str(busy)) from busy
    name = f"ml-cabinet-statement-{user_id}-{statement['checkpoint']['position']}.json"
    return web.json_response(statement, headers={
        "Content-Disposition": f'attachment; filename="{name}"'})


async def checkpoint_consistency(request: web.Request) -> web.Response:
    """The proof that the latest checkpoint extends the one signed at `?from=POSITION`."""
    await api_user(request)  # for users, not for anyone on the network
    first = whole_number(request.query.get("from", ""), 18)
    if first is None or first < 1:
        raise Problem(422, "validation_error", "The request is not valid",
                      "from: the position of a signed checkpoint",
                      errors={"from": ["a whole number, at least 1"]})
    try:
        reply = await build_consistency(request.app[CHECKPOINTS].store, first)
    except NoSuchCheckpoint as missing:
        raise Problem(404, "no_checkpoint", "No such checkpoint", str(missing)) from missing
    return web.json_response(reply)
# -- API keys and the account's own security: a login, never a key ------------------------

async def create_key(request: web.Request) -> web.Response:
    credential = await require_login(request)
    body = load(key_create_schema, await read_json(request))
    issued = await request.app[API_KEYS].create(credential.user_id, client=client_address(
        request), **body)
    return web.json_response(schemas.issued_key_json(issued), status=201,
                             headers={"Cache-Control": "no-store"})


async def list_keys(request: web.Request) -> web.Response:
    credential = await require_login(request)
    found = await request.app[API_KEYS].list(credential.user_id)
    return web.json_response({"data": [schemas.key_json(k) for k in found]})


async def revoke_key(request: web.Request) -> web.Response:
    credential = await require_login(request)
    await request.app[API_KEYS].revoke(credential.user_id, request.match_info["key_id"],
                                       client_address(request))
    return web.Response(status=204)


async def change_password(request: web.Request) -> web.Response:
    credential = await require_login(request)
    body = load(password_schema, await read_json(request))
    await throttled_password_change(request, credential, body["current_password"],
                                    body["new_password"])
    return web.Response(status=204)


async def throttled_password_change(request: web.Request, credential: Credential,
                                    current: str, new: str) -> int:
    """A wrong current password counts as a failed login of the account: a stolen session
    cannot guess its way to a password change any faster than a stranger at the login."""
    throttle, client = request.app[THROTTLE], client_address(request)
    username = (await request.app[LEDGER].profile(credential.user_id)).username
    device = known_device(request, username)  # as at the login: a stranger cannot block it
    if wait := await throttle.retry_after(username, client, device):
        raise Problem(429, "too_many_attempts", "Too many attempts",
                      f"try again in {wait} seconds", headers={"Retry-After": str(wait)})
    try:
        revoked = await request.app[USERS].change_password(credential, current, new, client)
    except InvalidInput as exc:
        if exc.field == "current_password":
            await throttle.failed(username, client, device)
        raise
    await throttle.succeeded(username, client, device)
    return revoked


async def logout_all(request: web.Request) -> web.Response:
    credential = await require_login(request)
    await request.app[USERS].logout_all(credential.user_id, client_address(request))
    return web.Response(status=204)


async def security_events(request: web.Request) -> web.Response:
    credential = await require_login(request)
    query = _page(request)
    page = await request.app[USERS].security_events(credential.user_id, **query)
    return web.json_response(schemas.page_json(page, schemas.security_event_json))


# -- the account's time zone and spend limits (issue 9) ---------------------------------------

me_update_schema, limits_schema = schemas.MeUpdate(), schemas.LimitsRequest()


async def update_me(request: web.Request) -> web.Response:
    user_id = (await require_login(request)).user_id
    body = load(me_update_schema, await read_json(request))
    profile = await request.app[LEDGER].set_time_zone(user_id, body["time_zone"],
                                                      client_address(request))
    return web.json_response(schemas.me_json(profile))


async def get_limits(request: web.Request) -> web.Response:
    user_id = await api_user(request)
    return web.json_response(schemas.limits_json(await request.app[LEDGER].limits(user_id)))


async def put_limits(request: web.Request) -> web.Response:
    """Changing limits needs a login, never an API key (403 login_required)."""
    user_id = (await require_login(request)).user_id
    body = load(limits_schema, await read_json(request))
    view = await request.app[LEDGER].set_limits(user_id, body["daily_credits"],
                                                body["monthly_credits"], client_address(request))
    return web.json_response(schemas.limits_json(view))
