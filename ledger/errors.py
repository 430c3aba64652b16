"""The ledger's named errors; the web layer maps each to one HTTP answer."""


class LedgerError(Exception):
    """Base of every error a ledger use case raises on purpose."""

    code = "ledger_error"


class InvalidAmount(LedgerError):
    code = "validation_error"


class BalanceLimitExceeded(LedgerError):
    code = "balance_limit_exceeded"


class InsufficientCredits(LedgerError):
    code = "insufficient_balance"

    def __init__(self, available_credits: int, cost_credits: int) -> None:
        super().__init__(f"available {available_credits} credits do not cover {cost_credits}")
        self.available_credits = available_credits
        self.cost_credits = cost_credits


class AccountNotFound(LedgerError):
    code = "account_not_found"


class UsernameTaken(LedgerError):
    code = "username_taken"


class InvalidCredentials(LedgerError):
    code = "invalid_credentials"


class UnknownHold(LedgerError):
    """Settling or releasing a hold that is not open: each hold resolves exactly once."""

    code = "unknown_hold"


class IdempotencyConflict(LedgerError):
    """The operation id was used before for a different request."""

    code = "idempotency_key_reused"


class OperationInProgress(LedgerError):
    """The operation id belongs to a request that is still running."""

    code = "request_in_progress"


class InvalidSetting(LedgerError):
    """A time zone or a limit that cannot be set; `field` names it."""

    code = "validation_error"

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


class SuspendedAccount(LedgerError):
    """The account is suspended by an operator: nothing is done for it until it is resumed."""

    code = "account_suspended"


class SuspensionConflict(LedgerError):
    """Suspending an account that is suspended, or resuming one that is not."""

    code = "suspension_conflict"


class NotAnOperator(LedgerError):
    """Revoking a role the account does not have (granting it twice is a no-op)."""

    code = "not_an_operator"


class AdjustmentBelowZero(InsufficientCredits):
    """An operator's debit larger than the available balance (a request error: 422)."""
