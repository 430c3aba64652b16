"""The operator console's API handlers (/api/v1/admin/...): the role is read from the
database on every request; anyone else gets 401 (no credential) or 403."""

from __future__ import annotations

from aiohttp import web

from ledger import checkpoints
from web import admin_schemas, schemas
from web.api import idempotency_key
from web.auth import account_flags, api_credential
from web.bodies import load, read_json, whole_number
from web.keys import ADMIN, PUBLIC_IDS, STORE, VERIFIER
from web.problems import Problem

users_query = admin_schemas.AdminUsersQuery()
adjustment_schema, reason_schema = admin_schemas.AdjustmentRequest(), admin_schemas.ReasonRequest()
page_query = schemas.PageQuery()

NOT_AN_OPERATOR = Problem(403, "operator_only", "This needs the operator role",
                          "the operator console is for operators signed in with their login")
NO_SUCH_USER = Problem(404, "user_not_found", "No such user")


async def operator_id(request: web.Request) -> int:
    """The operator's user id. API keys never carry the role: a leaked key of an operator
    must not reach other people's accounts."""
    credential = await api_credential(request)
    if not credential.is_login or not (await account_flags(request, credential.user_id))[0]:
        raise NOT_AN_OPERATOR
    return credential.user_id


def target_user(request: web.Request) -> int:
    user_id = whole_number(request.match_info["user_id"], 15)
    if user_id is None or user_id < 1:
        raise NO_SUCH_USER
    return user_id


async def users(request: web.Request) -> web.Response:
    await operator_id(request)
    query = load(users_query, dict(request.query))
    page = await request.app[ADMIN].users(**query)
    return web.json_response(schemas.page_json(page, admin_schemas.user_json))


async def user(request: web.Request) -> web.Response:
    await operator_id(request)
    user_id = target_user(request)
    if not await request.app[ADMIN].exists(user_id):
        raise NO_SUCH_USER
    history = await request.app[ADMIN].history(user_id)
    return web.json_response(admin_schemas.detail_json(history, request.app[PUBLIC_IDS]))


async def ledger(request: web.Request) -> web.Response:
    await operator_id(request)
    totals = await request.app[ADMIN].totals()
    latest = await checkpoints.latest_checkpoint(request.app[STORE].read_db())
    return web.json_response(admin_schemas.totals_json(
        totals, request.app[PUBLIC_IDS], verifier_json(request),
        None if latest is None else latest.to_json()))


def verifier_json(request: web.Request) -> dict[str, object]:
    report = request.app[VERIFIER].health()
    return {"status": "ok" if report["first_break"] is None else "ledger_damaged", **report}


async def adjust(request: web.Request) -> web.Response:
    operator = await operator_id(request)
    user_id = target_user(request)
    key = idempotency_key(request)
    body = load(adjustment_schema, await read_json(request))
    if not await request.app[ADMIN].exists(user_id):
        raise NO_SUCH_USER
    outcome = await request.app[ADMIN].adjust(operator, user_id, body["amount_credits"],
                                              body["reason"], key)
    return web.json_response(schemas.top_up_json(outcome, request.app[PUBLIC_IDS]),
                             status=201)


async def suspend(request: web.Request) -> web.Response:
    return await _suspension(request, suspend=True)


async def resume(request: web.Request) -> web.Response:
    return await _suspension(request, suspend=False)


async def _suspension(request: web.Request, *, suspend: bool) -> web.Response:
    operator = await operator_id(request)
    user_id = target_user(request)
    body = load(reason_schema, await read_json(request))
    admin = request.app[ADMIN]
    if not await admin.exists(user_id):
        raise NO_SUCH_USER
    changed = await (admin.suspend if suspend else admin.resume)(operator, user_id,
                                                                 body["reason"])
    return web.json_response(admin_schemas.user_json(changed))


async def actions(request: web.Request) -> web.Response:
    await operator_id(request)
    query = load(page_query, dict(request.query))
    page = await request.app[ADMIN].actions(**query)
    return web.json_response(schemas.page_json(page, admin_schemas.action_json))
