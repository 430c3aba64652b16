"""The request id, the security headers, and the one error middleware."""

from __future__ import annotations

import itertools
import logging
import re
import uuid

import aiohttp_jinja2
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.typedefs import Handler

from events import StoreError
from ledger import LedgerError
from ml import MlError
from web.i18n import translator
from web.keys import REQUEST_ID, VERIFIER
from web.messages import localize, localize_problem
from web.problems import PROBLEM_JSON, LedgerDamaged, Problem, http_problem, problem_for

log = logging.getLogger("ml_cabinet")

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
       "object-src 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    # No page uses any of these; a script injected despite the CSP gets none of them either.
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=(), "
                          "interest-cohort=()",
    "Server": "ML Cabinet",  # no name or version of the software underneath
}
# Static files are asked for by content-hashed URLs (?v=...): a new release is a new URL.
STATIC_MAX_AGE = "public, max-age=31536000, immutable"
COMPRESSIBLE = (".css", ".js", ".svg", ".json", ".html", ".txt")
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")


def is_api(request: web.Request) -> bool:
    return request.path.startswith(("/api/", "/healthz", "/readyz", "/metrics"))


# A request id is 32 hex digits: a random half per process and a counter, unique without a
# system call for randomness on every request (uuid4 cost 50-70 µs a call under load).
_ID_PREFIX, _ID_COUNT = uuid.uuid4().hex[:16], itertools.count(1)


def new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNT) & 0xFFFF_FFFF_FFFF_FFFF:016x}"


@web.middleware
async def request_id(request: web.Request, handler: Handler) -> web.StreamResponse:
    sent = request.headers.get("X-Request-Id", "")
    request[REQUEST_ID] = sent if REQUEST_ID_RE.fullmatch(sent) else new_request_id()
    return await handler(request)


async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every response, error pages and static files included."""
    response.headers.update(SECURITY_HEADERS)
    response.headers["X-Request-Id"] = request.get(REQUEST_ID) or new_request_id()
    if request.path.startswith("/static/"):
        static_caching(request, response)
    else:  # API replies and pages: per user, with session cookies and CSRF tokens
        response.headers.setdefault("Cache-Control", "no-store")


def static_caching(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """A year for a content-hashed URL, revalidation (the ETag) for a bare one; an error
    (a name that is not there) is never kept."""
    if response.status not in (200, 206, 304):
        response.headers["Cache-Control"] = "no-store"
    else:
        response.headers["Cache-Control"] = STATIC_MAX_AGE if "v" in request.query else (
            "no-cache")


@web.middleware
async def compress_static(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Text files gzip-compressed for clients that accept it. Decided before the file is
    opened, so not for a byte range (its offsets count stored bytes), a HEAD, or a
    conditional request (a 304 must carry no body, not even an empty gzip stream)."""
    response = await handler(request)
    if not (request.path.startswith("/static/") and request.path.endswith(COMPRESSIBLE)):
        return response
    response.headers["Vary"] = "Accept-Encoding"  # caches keep both forms apart
    if (request.method == "GET" and "gzip" in request.headers.get("Accept-Encoding", "").lower()
            and not any(h in request.headers for h in ("Range", "If-None-Match",
                                                       "If-Modified-Since"))):
        response.enable_compression(web.ContentCoding.gzip)
    return response


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Problem as problem:
        return await render(request, problem)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return await render(request, http_problem(exc))
    except (LedgerError, MlError, StoreError) as exc:
        mapped = problem_for(exc)
        if mapped is None:
            log.exception("unmapped domain error")
            mapped = Problem(500, "internal_error", "Something went wrong on our side")
        return await render(request, mapped)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return await render(request, Problem(
            500, "internal_error", "Something went wrong on our side",
            f"quote request id {request.get(REQUEST_ID)} when you report it"))


@web.middleware
async def read_only_when_damaged(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Once the verifier finds a break, reads go on (they show what the log holds) and every
    write answers 503 ledger_damaged naming the first bad position."""
    verifier = request.app.get(VERIFIER)
    if (verifier is not None and verifier.broken is not None
            and request.method not in ("GET", "HEAD", "OPTIONS")):
        raise LedgerDamaged(verifier.broken.position, verifier.broken.reason)
    return await handler(request)


async def render(request: web.Request, problem: Problem) -> web.StreamResponse:
    tr = translator(request)
    if is_api(request):  # the same code, type and fields in every language
        return problem.response(localize_problem(tr, problem.body()))
    # aiohttp's bare "404: Not Found" says nothing the page's own sentence does not say better
    bare = problem.detail in (f"{problem.status_code}: {problem.title}", problem.title)
    detail = "" if bare else problem.detail
    context = {"status": problem.status_code, "title": localize(tr, problem.title),
               "detail": localize(tr, detail if problem.status_code < 500 else problem.title)}
    try:
        response = aiohttp_jinja2.render_template("error.html", request, context,
                                                  status=problem.status_code)
    except Exception:  # the page itself failed (the database is down): plain text will do
        log.exception("error page failed")
        return web.Response(status=problem.status_code, text=problem.title)
    response.headers.update(problem.headers)
    if problem.status_code == 503:
        response.headers["Content-Type"] = "text/html; charset=utf-8"
    return response


class RequestLog(AbstractAccessLogger):
    """One line per request, with its id, so a user's report can be found in the log."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info('%s "%s %s" %s %.1fms id=%s', request.remote, request.method,
                         request.path_qs[:200], response.status, time * 1000,
                         request.get(REQUEST_ID, "-"))


__all__ = ["PROBLEM_JSON", "RequestLog", "add_headers", "errors", "request_id"]
