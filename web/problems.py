"""RFC 9457 problem details, and the one table that maps domain errors to HTTP answers."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from events import ConcurrencyError, StoreCorrupted, StoreError, StoreUnavailable
from ledger import (
    AccountNotFound,
    BalanceLimitExceeded,
    IdempotencyConflict,
    InsufficientCredits,
    InvalidAmount,
    InvalidCredentials,
    InvalidInput,
    InvalidSetting,
    KeyNotFound,
    OperationInProgress,
    TooManyKeys,
    UnknownHold,
    UsernameTaken,
)
from ledger.errors import (
    AdjustmentBelowZero,
    NotAnOperator,
    SuspendedAccount,
    SuspensionConflict,
)
from ml import (
    AmbiguousDecimalComma,
    BadCsv,
    BadCsvHeader,
    EmptyInput,
    ModelNotFound,
    NoValidData,
    TooManyItems,
)

PROBLEM_JSON = "application/problem+json"

class LedgerDamaged(StoreError):
    """The verifier found the log broken: no write is built on a history that is not true."""

    def __init__(self, position: int, reason: str) -> None:
        super().__init__(f"the event log is broken at position {position}: {reason}")
        self.position = position


# error class -> (HTTP status, code, title)
ERRORS: dict[type[Exception], tuple[int, str, str]] = {
    InvalidAmount: (422, "validation_error", "The request is not valid"),
    InvalidInput: (422, "validation_error", "The request is not valid"),
    InvalidSetting: (422, "validation_error", "The request is not valid"),
    BalanceLimitExceeded: (422, "balance_limit_exceeded", "The balance would be too large"),
    InsufficientCredits: (402, "insufficient_balance", "Not enough credits"),
    UsernameTaken: (409, "username_taken", "This username is taken"),
    InvalidCredentials: (401, "invalid_credentials", "Wrong username or password"),
    AccountNotFound: (401, "unauthorized", "Authentication required"),
    IdempotencyConflict: (422, "idempotency_key_reused", "Idempotency key reused"),
    OperationInProgress: (409, "request_in_progress", "The first request is still running"),
    ModelNotFound: (404, "model_not_found", "No such model"),
    KeyNotFound: (404, "key_not_found", "No such key"),
    TooManyKeys: (409, "too_many_keys", "Too many live keys"),
    EmptyInput: (422, "empty_input", "No data"),
    TooManyItems: (413, "too_many_items", "Too many items"),
    NoValidData: (422, "no_valid_data", "No valid data"),
    BadCsv: (422, "bad_csv", "The file is not readable as CSV"),
    BadCsvHeader: (422, "bad_csv_header", "The CSV header does not fit the model"),
    AmbiguousDecimalComma: (422, "ambiguous_decimal_comma",
                            "A comma could be a decimal mark or a separator"),
    StoreUnavailable: (503, "service_unavailable", "The service cannot write right now"),
    # Only another process can move a stream under us; a retry reads it afresh.
    ConcurrencyError: (503, "service_unavailable", "The service was busy; retry"),
    StoreCorrupted: (503, "service_unavailable", "The service cannot write right now"),
    LedgerDamaged: (503, "ledger_damaged", "The ledger is damaged; it is read-only"),
    # The hold went before the model finished: another process took this one for dead and
    # failed the task (nothing charged); a retry with the same key gets that stored reply.
    UnknownHold: (503, "service_unavailable", "The task was interrupted; nothing was charged"),
    AdjustmentBelowZero: (422, "insufficient_balance",
                          "The debit would take the available balance below zero"),
    SuspendedAccount: (401, "account_suspended", "This account is suspended"),
    SuspensionConflict: (409, "suspension_conflict", "The account is already in that state"),
    NotAnOperator: (409, "not_an_operator", "The account is not an operator"),
}


class Problem(Exception):
    """An HTTP error answered as problem+json. Raise it from any API handler."""

    def __init__(self, status: int, code: str, title: str, detail: str = "",
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail or title)
        self.status_code, self.headers = status, headers or {}
        self.code, self.title, self.detail, self.extra = code, title, detail, extra

    def body(self) -> dict[str, Any]:
        return {"type": f"/problems/{self.code.replace('_', '-')}", "title": self.title,
                "status": self.status_code, "detail": self.detail, "code": self.code,
                **self.extra}

    def response(self, body: dict[str, Any] | None = None) -> web.Response:
        """The answer; `body` is this problem's body in the caller's language when given."""
        return web.Response(status=self.status_code, text=json.dumps(body or self.body()),
                            content_type=PROBLEM_JSON, headers=self.headers)


def problem_for(exc: Exception) -> Problem | None:
    """The problem a domain error stands for, or None when it is not one of ours."""
    for cls in type(exc).__mro__:
        if cls in ERRORS:
            status, code, title = ERRORS[cls]
            return Problem(status, code, title, str(exc), headers=_headers(exc), **_extra(exc))
    return None


def _headers(exc: Exception) -> dict[str, str] | None:
    if isinstance(exc, StoreUnavailable | StoreCorrupted | ConcurrencyError | OperationInProgress):
        return {"Retry-After": "1"}
    return None


def _extra(exc: Exception) -> dict[str, Any]:
    if isinstance(exc, NoValidData):
        return {"invalid": exc.invalid}
    if isinstance(exc, InsufficientCredits):
        return {"available": exc.available_credits, "cost": exc.cost_credits}
    if isinstance(exc, TooManyItems):
        return {"max_items": exc.max_items}
    if isinstance(exc, InvalidInput | InvalidSetting):
        return {"errors": {exc.field: [str(exc)]}}
    if isinstance(exc, InvalidAmount):
        return {"errors": {"amount": [str(exc)]}}
    if isinstance(exc, LedgerDamaged):
        return {"position": exc.position}
    if isinstance(exc, AmbiguousDecimalComma):
        return {"fragment": exc.fragment}
    return {}


def http_problem(exc: web.HTTPException) -> Problem:
    """aiohttp's own errors (404, 405, 413…) in the same problem+json shape."""
    codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large",
             415: "unsupported_media_type", 400: "bad_request"}
    code = codes.get(exc.status, "http_error")
    headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
    return Problem(exc.status, code, exc.reason, exc.text or exc.reason, headers=headers or None)
