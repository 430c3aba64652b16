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

from web.keys import USER_ID, USERS
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


async def api_user(request: web.Request) -> int:
    """The caller's user id, or 401 problem+json."""
    token = bearer_token(request)
    user_id = None if token is None else await request.app[USERS].user_for_token(token, "api")
    if user_id is None:
        raise UNAUTHORIZED
    request[USER_ID] = user_id
    return user_id


async def page_user(request: web.Request) -> int | None:
    if USER_ID in request:
        return request[USER_ID]
    session = await get_session(request)
    token = session.get("token")
    user_id = None
    if isinstance(token, str):
        user_id = await request.app[USERS].user_for_token(token, "session")
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


async def start_session(request: web.Request, user_id: int) -> None:
    """A fresh session at login: a new cookie, a new CSRF token, a new server-side token."""
    issued = await request.app[USERS].issue_token(user_id, "session")
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
