"""Serving: the runner main.py uses, with a clean stop on SIGTERM or SIGINT and a quiet,
well-dressed reply to requests that are not HTTP/1.1.

A stop closes the listening socket, lets requests in flight finish for up to
`ML_CABINET_SHUTDOWN_GRACE_SECONDS`, cancels the rest, then
runs the app's cleanup: the holds this process still has are released as events, the writer
commits what is queued and the store closes (web/app.py services_ctx).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from http import HTTPStatus

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from web.app import MODELS_OPENING
from web.config import Config
from web.logs import AccessLog, flush_access_lines
from web.middlewares import SECURITY_HEADERS
from web.workers import WorkerLink

log = logging.getLogger("ml_cabinet")


class QuietRequestHandler(RequestHandler):
    """aiohttp logs a request it cannot parse as an ERROR with a traceback, and answers
    without the app's headers. Scanners and HTTP/2 clients send those all day: one warning
    line each, and a 400 with the same security headers as every other reply."""

    def handle_error(self, request: BaseRequest, status: int = 500,
                     exc: BaseException | None = None, message: str | None = None
                     ) -> web.StreamResponse:
        if status >= 500:  # our own failure: keep aiohttp's full report
            response = super().handle_error(request, status, exc, message)
        else:
            reason = " ".join(str(exc if exc is not None else message).split())[:200]
            self.logger.warning("malformed request from %s: %s", request.remote, reason)
            if request.writer.output_size > 0:
                raise ConnectionError("a reply was already under way")
            phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ \
                else "Bad Request"
            response = web.Response(status=status, text=f"{status} {phrase}\n")
            response.force_close()
        response.headers.update(SECURITY_HEADERS)
        response.headers["Cache-Control"] = "no-store"
        return response


class QuietServer(web.Server):
    def __call__(self) -> RequestHandler:
        return QuietRequestHandler(self, loop=self._loop, **self._kwargs)


class CabinetRunner(web.AppRunner):
    """The app's runner, serving each connection with QuietRequestHandler."""

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()
        return QuietServer(plain.request_handler, request_factory=plain.request_factory,
                           handler_cancellation=plain.handler_cancellation,
                           loop=asyncio.get_running_loop(), **plain._kwargs)


async def serve(app: web.Application, config: Config, shown: str,
                link: WorkerLink | None = None) -> None:
    """Serve until SIGTERM or SIGINT, then stop cleanly (see the module docstring). A worker
    of `main.py --workers N` (web/workers.py) shares the port with its siblings, tells its
    supervisor when it serves, and stops as on SIGTERM when the supervisor is gone."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = CabinetRunner(app, access_log_class=AccessLog,
                           shutdown_timeout=config.shutdown_grace_s)
    try:
        await runner.setup()  # opens the store, checks the log, sweeps: may raise
        settle_gc()
        await web.TCPSite(runner, config.host, config.port,
                          reuse_port=link is not None).start()
        log.info("ML Cabinet on http://%s:%s (database %s)", config.host, config.port, shown)
        if link is not None:
            link.ready()
            loop.add_reader(link.fileno(), supervisor_gone, loop, link, stop)
        await until_stopped(stop, app.get(MODELS_OPENING))
        log.info("stopping: requests in flight get %.0f s to finish", config.shutdown_grace_s)
    finally:
        await runner.cleanup()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        flush_access_lines()  # the last replies' lines, before "stopped cleanly"
    log.info("stopped cleanly")


# Requests make many short-lived containers; at Python's default of 700 net allocations a
# young collection ran every request or two, and each full one walked every model, template
# and catalog loaded at start-up. (A cycle still goes at the next collection.)
GC_YOUNG_THRESHOLD = 20_000


def settle_gc() -> None:
    """After start-up: what is loaded by now lives as long as the process, so it moves out
    of the collector's sight (gc.freeze), and young collections run far less often."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


async def until_stopped(stop: asyncio.Event, opening: asyncio.Task[None] | None) -> None:
    """Until SIGTERM or SIGINT; sooner, raising its ManifestError, if an ONNX session that
    opens in the background cannot (web/app.py models_ctx): main.py then exits 4."""
    stopping = asyncio.ensure_future(stop.wait())
    try:
        if opening is not None:
            await asyncio.wait({stopping, opening}, return_when=asyncio.FIRST_COMPLETED)
            if opening.done() and not opening.cancelled():
                opening.result()  # raises what stopped the opening
        await stopping
    finally:
        stopping.cancel()


def supervisor_gone(loop: asyncio.AbstractEventLoop, link: WorkerLink,
                    stop: asyncio.Event) -> None:
    """The link reads end-of-file: the supervisor died without stopping us. Stop as on
    SIGTERM (once: the socket stays readable)."""
    loop.remove_reader(link.fileno())
    log.warning("the supervisor is gone: stopping")
    stop.set()
