"""The operator console's API: request schemas, reply shapes and their OpenAPI paths.

Kept apart from web/schemas.py so the console reads in one sitting; web/openapi.py adds
`SCHEMAS` to its components and `PATHS` to its paths."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from ledger import account as decide
from ledger.account import MAX_ADJUSTMENT_CREDITS, MAX_REASON_CHARS
from ledger.admin import UserHistory
from ledger.admin_queries import AdminUser, LedgerTotals, OperatorAction
from ledger.credentials import InvalidInput
from web import schemas
from web.public_ids import PublicIds

MAX_QUERY = 64


class AdminUsersQuery(Schema):
    class Meta:
        unknown = EXCLUDE

    # No control characters: PostgreSQL cannot hold a NUL in a text parameter.
    q = fields.String(load_default="", validate=[
        validate.Length(0, MAX_QUERY),
        validate.Regexp(r"^[^\x00-\x1f\x7f]*\Z", error="printable characters")],
        metadata={"pattern": "^[^\\x00-\\x1f\\x7f]*$"})
    limit = fields.Integer(load_default=20, validate=validate.Range(1, 100))
    starting_after = fields.Integer(validate=validate.Range(1, 2**62))


def check_reason(value: str) -> None:
    """Printable text with something in it: control characters (NUL above all, which
    PostgreSQL cannot store) are refused, as in key names. Length first: a huge body is
    refused before it is scanned."""
    try:
        decide.check_reason(value)
    except InvalidInput as exc:
        raise ValidationError(str(exc)) from None


REASON: dict[str, Any] = {
    "validate": check_reason,
    "metadata": {"example": "refund for the outage of 1 December", "minLength": 1,
                 "maxLength": MAX_REASON_CHARS,
                 "pattern": "^[^\\x00-\\x1f\\x7f]*[^\\x00-\\x20\\x7f]"
                            "[^\\x00-\\x1f\\x7f]*$"}}


class AdjustmentRequest(Schema):
    amount_credits = schemas.StrictInteger(
        required=True, validate=validate.Range(-MAX_ADJUSTMENT_CREDITS, MAX_ADJUSTMENT_CREDITS),
        metadata={"example": 50, "description": "credits: positive credits the account, "
                                                "negative debits it (never below what is "
                                                "available); not 0"})
    reason = fields.String(required=True, **REASON)


class ReasonRequest(Schema):
    reason = fields.String(required=True, **REASON)


class AdminUserView(schemas.Balance):
    id = fields.Integer(required=True)
    username = fields.String(required=True)
    created_at = fields.String(required=True)
    spent_this_month = fields.Integer(required=True, metadata={
        "description": "credits charged since the start of this month (UTC)"})
    last_activity_at = fields.String(required=True, allow_none=True)
    is_operator = fields.Boolean(required=True)
    suspended = fields.Boolean(required=True)
    suspension_reason = fields.String(required=True, allow_none=True)


class AdminUserPage(Schema):
    data = fields.List(fields.Nested(AdminUserView), required=True)
    has_more = fields.Boolean(required=True)


class OperatorActionView(Schema):
    id = fields.Integer(required=True)
    user_id = fields.Integer(required=True)
    operator_id = fields.Integer(required=True, allow_none=True, metadata={
        "description": "null: the command line (grant and revoke)"})
    kind = fields.String(required=True, validate=validate.OneOf(
        ["adjustment", "suspend", "resume", "grant", "revoke"]))
    amount_credits = fields.Integer(required=True, allow_none=True)
    reason = fields.String(required=True)
    created_at = fields.String(required=True)


class OperatorActionPage(Schema):
    data = fields.List(fields.Nested(OperatorActionView), required=True)
    has_more = fields.Boolean(required=True)


class AdminUserDetail(AdminUserView):
    transactions = fields.List(fields.Nested(schemas.TransactionView), required=True)
    tasks = fields.List(fields.Nested(schemas.TaskView), required=True)
    actions = fields.List(fields.Nested(OperatorActionView), required=True)


class OpenHoldView(Schema):
    task_id = fields.String(required=True, metadata=schemas.TASK_ID)
    user_id = fields.Integer(required=True)
    amount_credits = fields.Integer(required=True)
    opened_at = fields.String(required=True)
    age_s = fields.Float(required=True)


class LedgerTotalsView(Schema):
    balances_credits = fields.Integer(required=True)
    top_ups_credits = fields.Integer(required=True)
    adjustments_credits = fields.Integer(required=True)
    revenue_credits = fields.Integer(required=True)
    expected_credits = fields.Integer(required=True, metadata={
        "description": "top-ups + adjustments - revenue; equals balances when the books hold"})
    balanced = fields.Boolean(required=True)
    accounts = fields.Integer(required=True)
    open_holds = fields.Integer(required=True)
    open_holds_credits = fields.Integer(required=True)
    oldest_holds = fields.List(fields.Nested(OpenHoldView), required=True)
    verifier = fields.Nested(schemas.Health, required=True)
    latest_checkpoint = fields.Nested(schemas.CheckpointView, required=True, allow_none=True)


SCHEMAS = ("AdjustmentRequest", "ReasonRequest", "AdminUserView", "AdminUserPage",
           "OperatorActionView", "OperatorActionPage", "AdminUserDetail", "OpenHoldView",
           "LedgerTotalsView")


def user_json(user: AdminUser) -> dict[str, Any]:
    return {"id": user.id, "username": user.username, "created_at": user.created_at,
            "balance": user.balance_credits, "held": user.held_credits,
            "available": user.balance_credits - user.held_credits,
            "spent_this_month": user.spent_this_month_credits,
            "last_activity_at": user.last_activity_at, "is_operator": user.is_operator,
            "suspended": user.suspended, "suspension_reason": user.suspension_reason}


def action_json(action: OperatorAction) -> dict[str, Any]:
    return {"id": action.id, "user_id": action.user_id, "operator_id": action.operator_id,
            "kind": action.kind, "amount_credits": action.amount_credits,
            "reason": action.reason, "created_at": action.created_at}


def detail_json(history: UserHistory, ids: PublicIds) -> dict[str, Any]:
    return {**user_json(history.user),
            "transactions": [schemas.transaction_json(t, ids)
                             for t in history.transactions.data],
            "tasks": [schemas.public_task(t, ids) for t in history.tasks.data],
            "actions": [action_json(a) for a in history.actions.data]}


def totals_json(totals: LedgerTotals, ids: PublicIds, verifier: dict[str, Any],
                checkpoint: dict[str, Any] | None) -> dict[str, Any]:
    return {"balances_credits": totals.balances_credits,
            "top_ups_credits": totals.top_ups_credits,
            "adjustments_credits": totals.adjustments_credits,
            "revenue_credits": totals.revenue_credits,
            "expected_credits": totals.expected_credits, "balanced": totals.balanced,
            "accounts": totals.accounts, "open_holds": totals.open_holds,
            "open_holds_credits": totals.open_holds_credits,
            "oldest_holds": [{"task_id": ids.task(h.task_id), "user_id": h.user_id,
                              "amount_credits": h.amount_credits, "opened_at": h.opened_at,
                              "age_s": h.age_s} for h in totals.oldest_holds],
            "verifier": verifier, "latest_checkpoint": checkpoint}


# -- the OpenAPI paths -----------------------------------------------------------------------

OPERATOR_ONLY = (" Operators only (granted with `python -m ledger admin grant`): anyone else "
                 "gets 403, an API key too.")
USER_ID = {"name": "user_id", "in": "path", "required": True,
           "schema": {"type": "integer", "minimum": 1, "maximum": 2**53}}
USERS_QUERY = [{"name": "q", "in": "query", "required": False,
                "description": "a part of the username, or the exact user id",
                "schema": {"type": "string", "maxLength": MAX_QUERY,
                           "pattern": "^[^\\x00-\\x1f\\x7f]*$"}}]


def paths(op: Any, page: list[dict[str, Any]], idempotency: dict[str, Any]
          ) -> dict[str, dict[str, Any]]:
    """The console's paths, built with web/openapi.py's `_op`, page and header parameters."""
    tag = "operators"
    return {
        "/api/v1/admin/users": {"get": op(
            "Users with balance, held, spent this month and last activity, newest first."
            + OPERATOR_ONLY, (200, "AdminUserPage"), tag=tag, errors=(403, 422),
            params=[*USERS_QUERY, *page])},
        "/api/v1/admin/users/{user_id}": {"get": op(
            "One user with their latest transactions, tasks and operator actions."
            + OPERATOR_ONLY, (200, "AdminUserDetail"), tag=tag, errors=(403, 404),
            params=[USER_ID])},
        "/api/v1/admin/users/{user_id}/adjustments": {"post": op(
            "Credit or debit an account with a reason, as a new event; a debit never takes "
            "the available balance below zero (422)." + OPERATOR_ONLY, (201, "TopUpResult"),
            tag=tag, body="AdjustmentRequest", errors=(403, 404, 409, 503),
            params=[USER_ID, idempotency])},
        "/api/v1/admin/users/{user_id}/suspend": {"post": op(
            "Suspend an account: its sessions, tokens and keys get 401 account_suspended at "
            "once, its open holds are released, logging in is refused." + OPERATOR_ONLY,
            (200, "AdminUserView"), tag=tag, body="ReasonRequest",
            errors=(403, 404, 409, 503), params=[USER_ID])},
        "/api/v1/admin/users/{user_id}/resume": {"post": op(
            "Resume a suspended account." + OPERATOR_ONLY, (200, "AdminUserView"), tag=tag,
            body="ReasonRequest", errors=(403, 404, 409, 503), params=[USER_ID])},
        "/api/v1/admin/ledger": {"get": op(
            "The ledger's totals with their check (balances = top-ups + adjustments - "
            "revenue), open holds and their age, the verifier and the latest checkpoint."
            + OPERATOR_ONLY, (200, "LedgerTotalsView"), tag=tag, errors=(403,))},
        "/api/v1/admin/actions": {"get": op(
            "The operator action log, newest first." + OPERATOR_ONLY,
            (200, "OperatorActionPage"), tag=tag, errors=(403, 422), params=page)},
    }
