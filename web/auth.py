"""Who is asking: bearer tokens for the API, encrypted cookie sessions and CSRF for pages.

A cookie session holds only a server-side session token and a CSRF token; the token is
checked against the database on every request, so logout takes effect at once.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from aiohttp import web
from aiohttp_session import get_session, new_session

from ledger import Credential
from web.keys import ACCOUNT_FLAGS, ADMIN, API_KEYS, CREDENTIAL, USER_ID, USERS
from web.problems import Problem

UNAUTHORIZED = Problem(401, "unauthorized", "Authentication required",
                       "send Authorization: Bearer <token> from POST /api/v1/auth/login",
                       headers={"WWW-Authenticate": "Bearer"})


def bearer_token(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 200:
        return None
    return token


INSUFFICIENT_SCOPE = Problem(403, "insufficient_scope", "This key may only read",
                             "a 'read' key can read the balance, history, models and tasks; "
                             "predicting and topping up need a 'predict' key or a login")
LOGIN_REQUIRED = Problem(403, "login_required", "This needs a login, not an API key",
                         "managing keys, the password and limits needs a login token from "
                         "POST /api/v1/auth/login or a signed-in page")
KEY_PREFIX = "mlc_"


async def api_credential(request: web.Request) -> Credential:
    """What authenticated the request, a login token or an API key, or 401 problem+json.
    Read from the database each time: a logout or a revoked key is refused at once."""
    if CREDENTIAL in request:
        return request[CREDENTIAL]
    token = bearer_token(request)
    credential = None
    if token is not None and token.startswith(KEY_PREFIX):
        credential = await request.app[API_KEYS].credential_for(token)
    if token is not None and credential is None:  # a login token may start so, once in 2^24
        credential = await request.app[USERS].credential_for_token(token, "api")
    if credential is None:
        raise UNAUTHORIZED
    if (await account_flags(request, credential.user_id))[1]:
        raise ACCOUNT_SUSPENDED
    request[CREDENTIAL], request[USER_ID] = credential, credential.user_id
    return credential


ACCOUNT_SUSPENDED = Problem(401, "account_suspended", "This account is suspended",
                            "an operator suspended this account: its sessions, tokens and "
                            "keys are refused until it is resumed")


async def account_flags(request: web.Request, user_id: int) -> tuple[bool, bool]:
    """(is_operator, suspended), read from the database once per request, so a suspension
    or a revoked role holds in every process from the next request on."""
    cached = request.get(ACCOUNT_FLAGS)
    if cached is None or cached[0] != user_id:
        cached = request[ACCOUNT_FLAGS] = (user_id, *await request.app[ADMIN].flags(user_id))
    return bool(cached[1]), bool(cached[2])


async def api_user(request: web.Request, scope: str = "read") -> int:
    """The caller's user id, when its credential may `scope` ('read' or 'predict')."""
    credential = await api_credential(request)
    if scope == "predict" and credential.scope != "predict":
        raise INSUFFICIENT_SCOPE
    return credential.user_id


async def require_login(request: web.Request) -> Credential:
    """A login token's credential; an API key gets 403 login_required."""
    credential = await api_credential(request)
    if not credential.is_login:
        raise LOGIN_REQUIRED
    return credential


async def page_credential(request: web.Request) -> Credential | None:
    """The signed-in page session's credential (for a password change that keeps it)."""
    session = await get_session(request)
    token = session.get("token")
    if not isinstance(token, str):
        return None
    credential = await request.app[USERS].credential_for_token(token, "session")
    if credential is None or (await account_flags(request, credential.user_id))[1]:
        return None
    return credential


async def page_user(request: web.Request) -> int | None:
    if USER_ID in request:
        return request[USER_ID]
    session = await get_session(request)
    token = session.get("token")
    user_id = None
    if isinstance(token, str):
        user_id = await request.app[USERS].user_for_token(token, "session")
    if user_id is not None and (await account_flags(request, user_id))[1]:
        user_id = None  # a suspended account's session reads as signed out
    request[USER_ID] = user_id
    return user_id


async def csrf_token(request: web.Request) -> str:
    session = await get_session(request)
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


async def check_csrf(request: web.Request, form: Any) -> None:
    """Every form POST carries the session's CSRF token; anything else is refused with 403."""
    sent = form.get("csrf_token") if form is not None else None
    expected = (await get_session(request)).get("csrf")
    if not (isinstance(sent, str) and isinstance(expected, str)
            and hmac.compare_digest(sent.encode(), expected.encode())):
        raise web.HTTPForbidden(text="The form has expired or did not come from this site. "
                                     "Reload the page and try again.")


async def start_session(request: web.Request, user_id: int, client: str | None = None
                        ) -> None:
    """A fresh session at login: a new cookie, a new CSRF token, a new server-side token.
    With `client`, the sign-in goes into the security log."""
    issued = await request.app[USERS].issue_token(user_id, "session", client)
    session = await new_session(request)
    session["token"] = issued.access_token
    session["csrf"] = secrets.token_urlsafe(32)
    request[USER_ID] = user_id


async def end_session(request: web.Request) -> None:
    session = await get_session(request)
    token = session.get("token")
    if isinstance(token, str):
        await request.app[USERS].logout(token)
    session.invalidate()
    request[USER_ID] = None
