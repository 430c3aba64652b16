"""marshmallow schemas: requests are loaded through them, and the OpenAPI document is built
from all of them, so the reference and the behaviour cannot drift apart."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

import ledger
from ledger import BalanceView, IssuedToken, Profile, TopUpOutcome
from ledger.account import MAX_BALANCE_CREDITS, MAX_TOP_UP_CREDITS, MIN_TOP_UP_CREDITS
from ledger.credentials import InvalidInput
from ledger.keys import MAX_EXPIRES_IN_DAYS
from ledger.keys import MAX_NAME as MAX_KEY_NAME
from ledger.keys import SCOPES as KEY_SCOPES
from ledger.limits import MAX_LIMIT_CREDITS, MAX_TIME_ZONE_LENGTH
from ledger.usernames import MAX_CHARS, MIN_CHARS, RULE, normalize_username
from ledger.users import MAX_PASSWORD, MIN_PASSWORD
from ml import Prediction
from web.public_ids import PublicIds

T = TypeVar("T")


class StrictInteger(fields.Integer):
    """A JSON integer: no bool (Python's int subclass), no float, no string."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool):
            raise ValidationError("Not a valid integer.")
        result: int = super()._deserialize(value, attr, data, **kwargs)
        return result


# -- requests ------------------------------------------------------------------------------

def _username(value: str) -> None:
    try:
        normalize_username(value)
    except InvalidInput as error:
        raise ValidationError(str(error)) from None


class RegisterRequest(Schema):
    # Letters of any one alphabet: no regex every OpenAPI client runs says that, so the
    # document gives the lengths and the rule in words.
    username = fields.String(required=True, validate=_username, metadata={
        "minLength": MIN_CHARS, "maxLength": MAX_CHARS, "example": "иван_петров",
        "description": f"{RULE}; NFKC-normalized. Names that differ only in case or by "
                       "look-alike letters (Latin a, Cyrillic а) are the same name. "
                       "Invisible characters and mixed alphabets are refused."})
    password = fields.String(required=True, validate=validate.Length(MIN_PASSWORD, MAX_PASSWORD))


class LoginRequest(Schema):
    username = fields.String(required=True, validate=validate.Length(1, 64))
    password = fields.String(required=True, validate=validate.Length(1, MAX_PASSWORD))


class TopUpRequest(Schema):
    amount = StrictInteger(required=True, validate=validate.Range(
        MIN_TOP_UP_CREDITS, MAX_TOP_UP_CREDITS), metadata={"example": 100})


class PredictRequest(Schema):
    model_id = StrictInteger(required=True, validate=validate.Range(1, 2**31),
                             metadata={"example": 1})
    data = fields.List(fields.Raw(allow_none=True), required=True, metadata={
        "description": "The items to predict on, at most the model's `max_items`: numbers "
                       "for a code model; for a tabular model rows, each an object keyed by "
                       "feature name or an array of values in feature order (see the "
                       "model's `features` and `input_schema`). Each invalid item is "
                       "reported, not fatal.",
        "minItems": 1, "example": [1.5, 2, 3]})


class PageQuery(Schema):
    class Meta:
        unknown = EXCLUDE

    limit = fields.Integer(load_default=20, validate=validate.Range(1, 100))
    starting_after = fields.Integer(validate=validate.Range(1, 2**62))


class IdPageQuery(PageQuery):
    """Pages of tasks or transactions: the cursor is a public id (or an old plain number),
    read by the handler with the app's codec."""
    starting_after = fields.String(validate=validate.Length(1, 40))  # type: ignore[assignment]


class KeyCreateRequest(Schema):
    name = fields.String(required=True, validate=[
        validate.Length(1, MAX_KEY_NAME),
        validate.Regexp(r"^[^\x00-\x1f\x7f]*\Z", error="printable characters")],
        metadata={"pattern": "^[^\\x00-\\x1f\\x7f]+$", "example": "nightly batch"})
    scope = fields.String(required=True, validate=validate.OneOf(KEY_SCOPES))
    expires_in_days = StrictInteger(allow_none=True, load_default=None,
                                    validate=validate.Range(1, MAX_EXPIRES_IN_DAYS))
    monthly_limit_credits = StrictInteger(allow_none=True, load_default=None,
                                          validate=validate.Range(0, MAX_BALANCE_CREDITS))


class PasswordChangeRequest(Schema):
    current_password = fields.String(required=True, validate=validate.Length(1, MAX_PASSWORD))
    new_password = fields.String(required=True,
                                 validate=validate.Length(MIN_PASSWORD, MAX_PASSWORD))


# -- responses -----------------------------------------------------------------------------

# Tasks and transactions are shown by opaque ids (web/public_ids.py): a global number would
# tell one user how busy the others are. The old plain numbers are still accepted as input.
BASE32 = "[0-9a-hjkmnp-tv-z]{13}"
TASK_ID = {"example": "tsk_0f3k9x2m7q1ab", "pattern": f"^tsk_{BASE32}$",
           "description": "opaque: tsk_ and 13 base32 characters"}
TRANSACTION_ID = {"example": "txn_1b7r0c5vw9e2d", "pattern": f"^txn_{BASE32}$",
                  "description": "opaque: txn_ and 13 base32 characters"}

class Balance(Schema):
    balance = fields.Integer(required=True)
    held = fields.Integer(required=True)
    available = fields.Integer(required=True)


class RegisteredUser(Schema):
    id = fields.Integer(required=True)
    username = fields.String(required=True)
    balance = fields.Integer(required=True)


class Me(Balance):
    id = fields.Integer(required=True)
    username = fields.String(required=True)
    created_at = fields.String(required=True)
    time_zone = fields.String(required=True, metadata={
        "description": "IANA name; the account's calendar days and months for spend limits"})


class Token(Schema):
    access_token = fields.String(required=True)
    token_type = fields.String(required=True, validate=validate.OneOf(["bearer"]))
    expires_at = fields.String(required=True)


class TransactionView(Schema):
    id = fields.String(required=True, metadata=TRANSACTION_ID)
    kind = fields.String(required=True,
                         validate=validate.OneOf(["top_up", "charge", "adjustment"]))
    amount = fields.Integer(required=True)
    balance_after = fields.Integer(required=True)
    description = fields.String(required=True)
    task_id = fields.String(required=True, allow_none=True, metadata=TASK_ID)
    created_at = fields.String(required=True)


class TopUpResult(Schema):
    transaction = fields.Nested(TransactionView, required=True)
    balance = fields.Nested(Balance, required=True)


class TransactionPage(Schema):
    data = fields.List(fields.Nested(TransactionView), required=True)
    has_more = fields.Boolean(required=True)


class ModelView(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    description = fields.String(required=True)
    price_per_item = fields.Integer(required=True)
    max_items = fields.Integer(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(["regression", "classification"]))
    features = fields.List(fields.String(), required=True, metadata={
        "description": "Feature names in the order an array row lists its values."})
    input_schema = fields.Dict(required=True, metadata={
        "description": "A JSON Schema of one item of `data`."})
    labels = fields.List(fields.String(), required=True, metadata={
        "description": "The classes a classifier chooses from; empty for a regression."})
    version = fields.String(required=True, metadata={
        "description": "First 12 hex digits of the artifact's SHA-256 (or of the code "
                       "model's definition): which model produced a charge."})


class ModelList(Schema):
    data = fields.List(fields.Nested(ModelView), required=True)


class InvalidItem(Schema):
    index = fields.Integer(required=True, metadata={
        "description": "Where the item stood in `data` (or among the file's data rows)."})
    value = fields.Raw(required=True, allow_none=True, metadata={
        "description": "The item as sent, shortened."})
    error = fields.String(required=True, metadata={"description": "Every problem, as a "
                                                   "sentence."})
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), metadata={
        "description": "Tabular rows: feature name → its problems ('_row' for the row as "
                       "a whole, e.g. a wrong length or an output that is not finite)."})
    line = fields.Integer(metadata={"description": "CSV uploads: the row's 1-based line in "
                                                   "the file."})


class TaskView(Schema):
    id = fields.String(required=True, metadata=TASK_ID)
    model_id = fields.Integer(required=True)
    status = fields.String(required=True, validate=validate.OneOf(
        ["pending", "completed", "failed", "rejected"]))
    input_data = fields.List(fields.Raw(), required=True, metadata={
        "description": "The valid items: numbers, or rows (objects or arrays)."})
    output_data = fields.List(fields.Raw(allow_none=True), required=True, allow_none=True,
                              metadata={"description": "One output per valid item: a number, "
                                        "or {label, probabilities}; null for a row the model "
                                        "could not predict (it is in `invalid`)."})
    invalid = fields.List(fields.Nested(InvalidItem), required=True)
    cost = fields.Integer(required=True)
    error = fields.String(required=True, allow_none=True)
    created_at = fields.String(required=True)
    model_version = fields.String(required=True, allow_none=True, metadata={
        "description": "The version of the model that predicted it (see GET /models); "
                       "null for tasks recorded before versions were."})


class TaskPage(Schema):
    data = fields.List(fields.Nested(TaskView), required=True)
    has_more = fields.Boolean(required=True)


class PredictionItem(Schema):
    index = fields.Integer(required=True)
    input = fields.Raw(required=True, metadata={
        "description": "The item as sent: a number, or a row (an object keyed by feature; "
                       "CSV and pasted rows come back as objects)."})
    output = fields.Raw(required=True, metadata={
        "description": "A number for a regression; for a classifier "
                       "{\"label\": ..., \"probabilities\": {label: p, ...}} (summing to 1)."})


class PredictResult(Schema):
    task = fields.Nested(TaskView, required=True)
    predictions = fields.List(fields.Nested(PredictionItem), required=True)
    invalid = fields.List(fields.Nested(InvalidItem), required=True)
    cost = fields.Integer(required=True)
    balance = fields.Nested(Balance, required=True)


class KeyView(Schema):
    id = fields.String(required=True, metadata={"example": "key_0123456789abcdef"})
    name = fields.String(required=True)
    scope = fields.String(required=True, validate=validate.OneOf(KEY_SCOPES))
    prefix = fields.String(required=True, metadata={"description": "the key's first 8 "
                                                    "characters"})
    last4 = fields.String(required=True)
    monthly_limit_credits = fields.Integer(required=True, allow_none=True)
    created_at = fields.String(required=True)
    expires_at = fields.String(required=True, allow_none=True)
    revoked_at = fields.String(required=True, allow_none=True)
    last_used_at = fields.String(required=True, allow_none=True,
                                 metadata={"description": "to the minute"})


class IssuedKeyView(KeyView):
    key = fields.String(required=True, metadata={
        "description": "the secret, shown this once; send it as Authorization: Bearer <key>"})


class KeyList(Schema):
    data = fields.List(fields.Nested(KeyView), required=True)


class SecurityEventView(Schema):
    id = fields.Integer(required=True)
    kind = fields.String(required=True)
    detail = fields.String(required=True)
    client_address = fields.String(required=True)
    occurred_at = fields.String(required=True)


class SecurityEventPage(Schema):
    data = fields.List(fields.Nested(SecurityEventView), required=True)
    has_more = fields.Boolean(required=True)


class ChainBreakView(Schema):
    position = fields.Integer(required=True)
    reason = fields.String(required=True)


class Health(Schema):
    # "ok", or "ledger_damaged" once the verifier found a break (writes then answer 503).
    status = fields.String(required=True)
    verified_through = fields.Integer(required=True)
    pass_position = fields.Integer(required=True)
    last_full_pass_at = fields.String(required=True, allow_none=True)
    first_break = fields.Nested(ChainBreakView, required=True, allow_none=True)


class ProblemView(Schema):
    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    code = fields.String(required=True)
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))
    invalid = fields.List(fields.Nested(InvalidItem))
    # Extension members (RFC 9457 §3.2) of the problems that carry them.
    available = fields.Integer(metadata={"description": "insufficient_balance: credits free"})
    cost = fields.Integer(metadata={"description": "insufficient_balance: the price asked"})
    balance = fields.Nested(Balance, metadata={
        "description": "insufficient_balance, prediction_failed: the balance, unchanged"})
    task = fields.Nested(TaskView, metadata={
        "description": "insufficient_balance, prediction_failed: the task as recorded"})
    max_items = fields.Integer(metadata={"description": "too_many_items: the model's limit"})
    limit = fields.String(metadata={"description": "spend_limit_reached: which limit "
                                    "(daily, monthly or key_monthly)"})
    limit_credits = fields.Integer(metadata={"description": "spend_limit_reached: the limit"})
    left = fields.Integer(metadata={"description": "spend_limit_reached: credits left in "
                                    "the period"})
    resets_at = fields.String(metadata={"description": "spend_limit_reached: when the "
                                        "period ends (UTC, ISO 8601)"})



class PublicKeyView(Schema):
    key_id = fields.String(required=True, metadata={"description": "SHA-256 of the raw key"})
    algorithm = fields.String(required=True)
    public_key_pem = fields.String(required=True)
    first_used_at = fields.String()


class PublicKeys(PublicKeyView):
    keys = fields.List(fields.Nested(PublicKeyView), required=True, metadata={
        "description": "Every key that ever signed a checkpoint, the current one included"})


class CheckpointView(Schema):
    key_id = fields.String(required=True)
    position = fields.Integer(required=True)
    head_hash = fields.String(required=True)
    merkle_root = fields.String(required=True, metadata={
        "description": "RFC 6962 root over H(0x00 || event hash) of events 1..position"})
    accounts_root = fields.String(required=True, metadata={
        "description": "RFC 6962 root over each account stream's (id, count, last hash)"})
    accounts = fields.Integer(required=True)
    signed_at = fields.String(required=True)
    signature = fields.String(required=True, metadata={
        "description": "Ed25519, base64, over the canonical JSON of the other fields and "
                       "format ml-cabinet-checkpoint/1"})


class ConsistencyProof(Schema):
    from_ = fields.Nested(CheckpointView, required=True, data_key="from")
    to = fields.Nested(CheckpointView, required=True)
    proof = fields.List(fields.String(), required=True, metadata={
        "description": "RFC 6962 consistency proof (hex), from the 'from' tree to the 'to'"})


class StatementBalance(Schema):
    balance_credits = fields.Integer(required=True)
    held_credits = fields.Integer(required=True)
    available_credits = fields.Integer(required=True)


class StatementProof(Schema):
    format = fields.String(required=True)
    user_id = fields.Integer(required=True)
    issued_at = fields.String(required=True)
    checkpoint = fields.Nested(CheckpointView, required=True)
    account_head = fields.Dict(required=True)
    events = fields.List(fields.Dict(), required=True)
    balance = fields.Nested(StatementBalance, required=True)

# -- the domain's results, shaped as the replies above ----------------------------------------
# The domain names money with its unit; the API keeps the names its clients already use.

def balance_json(balance: BalanceView) -> dict[str, int]:
    return {"balance": balance.balance_credits, "held": balance.held_credits,
            "available": balance.available_credits}


def transaction_json(t: ledger.TransactionView, ids: PublicIds) -> dict[str, Any]:
    return {"id": ids.transaction(t.id), "kind": t.kind, "amount": t.amount_credits,
            "balance_after": t.balance_after_credits, "description": t.description,
            "task_id": None if t.task_id is None else ids.task(t.task_id),
            "created_at": t.created_at}


def top_up_json(outcome: TopUpOutcome, ids: PublicIds) -> dict[str, Any]:
    return {"transaction": transaction_json(outcome.transaction, ids),
            "balance": balance_json(outcome.balance)}


def registered_json(user: ledger.RegisteredUser) -> dict[str, Any]:
    return {"id": user.id, "username": user.username, "balance": user.balance_credits}


def token_json(issued: IssuedToken) -> dict[str, Any]:
    return {"access_token": issued.access_token, "token_type": issued.token_type,
            "expires_at": issued.expires_at}


def me_json(profile: Profile) -> dict[str, Any]:
    return {"id": profile.id, "username": profile.username, "created_at": profile.created_at,
            "time_zone": profile.time_zone, **balance_json(profile.balance)}


def task_json(task: ledger.TaskView, ids: PublicIds) -> dict[str, Any]:
    """Every field of a task, as the pages show it."""
    return {"id": ids.task(task.id), "model_id": task.model_id, "status": task.status,
            "input_data": task.input_data, "input_indexes": task.input_indexes,
            "output_data": task.output_data, "invalid": task.invalid,
            "cost": task.cost_credits, "quoted_cost": task.quoted_credits,
            "error": task.error, "created_at": task.created_at, "updated_at": task.updated_at,
            "model_version": task.model_version}


TASK_FIELDS = ("id", "model_id", "status", "input_data", "output_data", "invalid", "cost",
               "error", "created_at", "model_version")


def public_task(task: ledger.TaskView, ids: PublicIds) -> dict[str, Any]:
    """A task as the API shows it (TaskView above)."""
    shown = task_json(task, ids)
    return {name: shown[name] for name in TASK_FIELDS}


def prediction_json(prediction: Prediction) -> dict[str, Any]:
    return {"index": prediction.index, "input": prediction.input, "output": prediction.output}


def page_json(page: ledger.Page[T], shape: Callable[[T], dict[str, Any]]) -> dict[str, Any]:
    return {"data": [shape(item) for item in page.data], "has_more": page.has_more}


def key_json(key: ledger.KeyView) -> dict[str, Any]:
    return {"id": key.id, "name": key.name, "scope": key.scope, "prefix": key.prefix,
            "last4": key.last4, "monthly_limit_credits": key.monthly_limit_credits,
            "created_at": key.created_at, "expires_at": key.expires_at,
            "revoked_at": key.revoked_at, "last_used_at": key.last_used_at}


def issued_key_json(issued: ledger.IssuedKey) -> dict[str, Any]:
    return {**key_json(issued.view), "key": issued.key}


def security_event_json(event: ledger.SecurityEvent) -> dict[str, Any]:
    return {"id": event.id, "kind": event.kind, "detail": event.detail,
            "client_address": event.client_address, "occurred_at": event.occurred_at}


# -- spend limits and the account's time zone ------------------------------------------------
# Appended for issue 9 (branch limits).

class MeUpdate(Schema):
    time_zone = fields.String(required=True, validate=validate.Length(1, MAX_TIME_ZONE_LENGTH),
                              metadata={"example": "Europe/Moscow",
                                        "description": "An IANA time zone name"})


class NullableLimit(StrictInteger):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(required=True, allow_none=True, validate=validate.Range(
            0, MAX_LIMIT_CREDITS), **kwargs)


class LimitsRequest(Schema):
    daily_credits = NullableLimit(metadata={
        "description": "Credits the account may spend per calendar day; null: no limit",
        "example": 500})
    monthly_credits = NullableLimit(metadata={
        "description": "Credits the account may spend per calendar month; null: no limit",
        "example": 5000})


class PeriodView(Schema):
    limit = fields.Integer(required=True, allow_none=True)
    spent = fields.Integer(required=True, metadata={
        "description": "Charged and held in this period (holds count as spent)"})
    left = fields.Integer(required=True, allow_none=True)
    resets_at = fields.String(required=True, metadata={"description": "UTC, ISO 8601"})


class LimitsResult(Schema):
    time_zone = fields.String(required=True)
    daily_credits = fields.Integer(required=True, allow_none=True)
    monthly_credits = fields.Integer(required=True, allow_none=True)
    day = fields.Nested(PeriodView, required=True)
    month = fields.Nested(PeriodView, required=True)


def period_json(period: ledger.PeriodSpend) -> dict[str, Any]:
    return {"limit": period.limit_credits, "spent": period.spent_credits,
            "left": period.left_credits,
            "resets_at": period.resets_at.isoformat(timespec="seconds")}


def limits_json(view: ledger.LimitsView) -> dict[str, Any]:
    return {"time_zone": view.time_zone, "daily_credits": view.daily.limit_credits,
            "monthly_credits": view.monthly.limit_credits,
            "day": period_json(view.daily), "month": period_json(view.monthly)}


# -- exports and statements (issue 10, branch exports) ---------------------------------------

DAY = {"pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", "example": "2026-12-01"}


class RangeQuery(Schema):
    """A range of the account's calendar days (its time zone), both ends included."""

    class Meta:
        unknown = EXCLUDE

    from_ = fields.String(data_key="from", validate=validate.Regexp(
        DAY["pattern"], error="a date as YYYY-MM-DD"), metadata=DAY)
    to = fields.String(validate=validate.Regexp(DAY["pattern"], error="a date as YYYY-MM-DD"),
                       metadata=DAY)


class ExportQuery(RangeQuery):
    format = fields.String(load_default="csv", validate=validate.OneOf(["csv", "json"]))


class StatementMovement(Schema):
    id = fields.String(required=True, metadata=TRANSACTION_ID)
    time = fields.String(required=True, metadata={"description": "UTC, ISO 8601"})
    kind = fields.String(required=True, validate=validate.OneOf(["top_up", "charge", "adjustment"]))
    description = fields.String(required=True)
    amount = fields.Integer(required=True, metadata={"description": "credits; a charge is "
                                                     "negative"})
    balance_after = fields.Integer(required=True)
    task_id = fields.String(required=True, allow_none=True, metadata=TASK_ID)


class Statement(Schema):
    from_ = fields.String(required=True, data_key="from", metadata=DAY)
    to = fields.String(required=True, metadata=DAY)
    time_zone = fields.String(required=True, metadata={
        "description": "whose calendar days `from` and `to` are"})
    opening_balance = fields.Integer(required=True, metadata={
        "description": "the balance before the first day"})
    movements = fields.List(fields.Nested(StatementMovement), required=True, metadata={
        "description": "oldest first"})
    total_in = fields.Integer(required=True)
    total_out = fields.Integer(required=True, metadata={
        "description": "credits charged, as a positive number"})
    closing_balance = fields.Integer(required=True, metadata={
        "description": "opening_balance + total_in - total_out: the balance after the last "
                       "day (the live balance when `to` is today)"})


def movement_json(t: ledger.TransactionView, ids: PublicIds) -> dict[str, Any]:
    return {"id": ids.transaction(t.id), "time": t.created_at, "kind": t.kind,
            "description": t.description, "amount": t.amount_credits,
            "balance_after": t.balance_after_credits,
            "task_id": None if t.task_id is None else ids.task(t.task_id)}
# -- usage per day and model ------------------------------------------------------------------
# Appended for issue 10 (branch usage).

class UsageCounts(Schema):
    predictions = fields.Integer(required=True, metadata={
        "description": "Predictions charged (tasks settled)"})
    items = fields.Integer(required=True, metadata={
        "description": "Items predicted in them: the rows charged for"})
    credits = fields.Integer(required=True, metadata={
        "description": "Credits charged: the charges of the credit history, direct ones too"})


class UsageRowView(UsageCounts):
    date = fields.String(metadata={
        "description": "group_by=day: the account's calendar day (YYYY-MM-DD)",
        "example": "2026-12-01"})
    model_id = fields.Integer(allow_none=True, metadata={
        "description": "group_by=model: the model; null for direct charges outside a task"})
    model = fields.String(allow_none=True, metadata={"description": "group_by=model: its name"})


class UsageResult(Schema):
    from_ = fields.String(data_key="from", required=True, metadata={"example": "2026-12-01"})
    to = fields.String(required=True, metadata={"example": "2026-12-31"})
    group_by = fields.String(required=True, validate=validate.OneOf(["day", "model"]))
    time_zone = fields.String(required=True, metadata={
        "description": "The account's time zone: the days are its calendar days"})
    data = fields.List(fields.Nested(UsageRowView), required=True, metadata={
        "description": "day: every day of the range in order, zeros included; model: every "
                       "model charged in the range"})
    total = fields.Nested(UsageCounts, required=True)
