"""Who is asking: the credential a request authenticated with, and the input error type."""

from __future__ import annotations

from dataclasses import dataclass, field

from ledger.errors import LedgerError


class InvalidInput(LedgerError):
    code = "validation_error"

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


@dataclass(frozen=True, kw_only=True)
class Credential:
    """What authenticated a request. `kind`: 'session' (a page's cookie), 'token' (a login
    token from POST /auth/login) or 'key' (an API key, with its id, scope and monthly limit).
    `token_digest` names the session or login token itself, so a password change can keep it."""

    user_id: int
    kind: str
    key_id: str | None = None
    scope: str = "predict"  # login sessions and tokens may do everything a key may
    monthly_limit_credits: int | None = None
    token_digest: str | None = field(default=None, repr=False)

    @property
    def is_login(self) -> bool:
        return self.kind != "key"
