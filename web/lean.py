"""The short middleware chain for the bearer-token API's hot routes.

Every request passes eight middlewares; three of them (cookie sessions, the Jinja2 context
with its page processors, the gzip of static files) do nothing for a JSON call authenticated
by a bearer token but still cost a coroutine frame and their checks each, and the language
middleware reads the query and the cookies that an API reply never depends on. For the
routes named in LEAN_ROUTES this middleware, first in the app's list, runs the parts that do
matter itself, with the same code: the request id, the API's language (Accept-Language
only, as `i18n.negotiate` does for the API), the request metrics (`metrics.count_requests`),
the one error middleware (`middlewares.errors`: problem+json in the request's language) and
the read-only guard once the log is damaged, then calls the route's handler directly. Every
other request, and any route not named here, takes the full chain. The security headers and
X-Request-Id are added on response prepare (middlewares.add_headers) either way.

A route may join LEAN_ROUTES only if its handler never reads the cookie session, a CSRF token
or renders a template (tests/e2e/test_lean_api.py checks the replies stay the same).
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from web import i18n, metrics, middlewares
from web.keys import REQUEST_ID

LEAN_ROUTES = frozenset({
    "api_predict", "api_balance", "api_top_up", "api_me", "api_models", "api_tasks",
    "api_task", "api_transactions",
})


@web.middleware
async def lean_api(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.match_info.route.name not in LEAN_ROUTES:
        return await handler(request)
    sent = request.headers.get("X-Request-Id", "")
    request[REQUEST_ID] = (sent if middlewares.REQUEST_ID_RE.fullmatch(sent)
                           else middlewares.new_request_id())
    accept = request.headers.get("Accept-Language")  # most programs send none: English
    request[i18n.LANG] = i18n.negotiate(query=None, cookie=None, accept_language=accept,
                                        api=True) if accept else i18n.DEFAULT_LANGUAGE
    return await metrics.count_requests(request, _answered)


async def _answered(request: web.Request) -> web.StreamResponse:
    return await middlewares.errors(request, _served)


async def _served(request: web.Request) -> web.StreamResponse:
    return await middlewares.read_only_when_damaged(request, request.match_info.handler)
