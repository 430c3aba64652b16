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
    InvalidSetting,
    LedgerError,
    OperationInProgress,
    UnknownHold,
    UsernameTaken,
)
from ledger.keys import IssuedKey, KeyNotFound, KeyService, KeyView, TooManyKeys
from ledger.limits import Limits, PeriodSpend
from ledger.security_log import SecurityEvent
from ledger.service import LedgerService, ModelRun, TaskDraft, TaskTicket
from ledger.spend import KeyLimit
from ledger.store import is_database_url, ledger_store, ledger_store_at, postgres_ledger_store
from ledger.users import Passwords, Transaction, User, UserService
from ledger.views import (
    BalanceView,
    IssuedToken,
    JsonValue,
    LimitsView,
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
    "InvalidSetting",
    "IssuedKey",
    "IssuedToken",
    "JsonValue",
    "KeyLimit",
    "KeyNotFound",
    "KeyService",
    "KeyView",
    "LedgerError",
    "LedgerService",
    "Limits",
    "LimitsView",
    "ModelRun",
    "Operation",
    "OperationInProgress",
    "Page",
    "Passwords",
    "PeriodSpend",
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
