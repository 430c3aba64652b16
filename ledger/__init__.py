"""Credits: the account fold, pure decisions, projections, LedgerService and the audit.

The seed's User, Transaction and UserService live here, async, writing only through events.
"""

from ledger.control import Operation
from ledger.credentials import Credential, InvalidInput
from ledger.errors import (
    AccountNotFound,
    BalanceLimitExceeded,
    IdempotencyConflict,
    InsufficientCredits,
    InvalidAmount,
    InvalidCredentials,
    LedgerError,
    OperationInProgress,
    UnknownHold,
    UsernameTaken,
)
from ledger.keys import IssuedKey, KeyNotFound, KeyService, KeyView, TooManyKeys
from ledger.security_log import SecurityEvent
from ledger.service import LedgerService, TaskDraft, TaskTicket
from ledger.store import is_database_url, ledger_store, ledger_store_at, postgres_ledger_store
from ledger.users import Passwords, Transaction, User, UserService
from ledger.views import (
    BalanceView,
    IssuedToken,
    JsonValue,
    Page,
    Profile,
    RegisteredUser,
    TaskOutcome,
    TaskView,
    TopUpOutcome,
    TransactionView,
)

__all__ = [
    "AccountNotFound",
    "BalanceLimitExceeded",
    "BalanceView",
    "Credential",
    "IdempotencyConflict",
    "InsufficientCredits",
    "InvalidAmount",
    "InvalidCredentials",
    "InvalidInput",
    "IssuedKey",
    "IssuedToken",
    "JsonValue",
    "KeyNotFound",
    "KeyService",
    "KeyView",
    "LedgerError",
    "LedgerService",
    "Operation",
    "OperationInProgress",
    "Page",
    "Passwords",
    "Profile",
    "RegisteredUser",
    "SecurityEvent",
    "TaskDraft",
    "TaskOutcome",
    "TaskTicket",
    "TaskView",
    "TooManyKeys",
    "TopUpOutcome",
    "Transaction",
    "TransactionView",
    "UnknownHold",
    "User",
    "UserService",
    "UsernameTaken",
    "is_database_url",
    "ledger_store",
    "ledger_store_at",
    "postgres_ledger_store",
]
