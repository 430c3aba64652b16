"""Log lines: plain text by default, or one JSON object per line (ML_CABINET_LOG_FORMAT=json).

The access line carries the request id (also sent back as X-Request-Id), the user id when
the request was authenticated, the route's name, the status and the duration. It never
carries headers, bodies or the query string: that is where passwords, tokens, API keys and
session cookies travel.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from web.keys import REQUEST_ID, USER_ID

# The fields an access line adds to a record (logging's `extra`), in this order.
ACCESS_FIELDS = ("request_id", "user_id", "method", "route", "path", "status", "duration_ms",
                 "remote")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, and any access fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        for name in ACCESS_FIELDS:
            if name in record.__dict__:
                entry[name] = record.__dict__[name]
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """logging's own text format; the time's text is made once a second, not once a line
    (time.strftime was half of an access line's cost)."""

    def __init__(self, fmt: str) -> None:
        super().__init__(fmt)
        self._second, self._text = -1, ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        if second != self._second:
            self._second, self._text = second, time.strftime(
                self.default_time_format, self.converter(record.created))
        return f"{self._text},{int(record.msecs):03d}"  # as default_msec_format "%s,%03d"


def setup_logging(log_format: str, level: int = logging.INFO) -> None:
    """The root handler on stderr, in the chosen format (replacing any earlier one)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter(
        "%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


def _route(request: web.BaseRequest) -> str:
    # A request that could not be parsed never reached the router (match_info would raise).
    match_info = getattr(request, "_match_info", None)
    resource = None if match_info is None else match_info.route.resource
    return resource.name if resource is not None and resource.name else "unmatched"


ACCESS_LINE = '%s "%s %s" %s %.1fms id=%s'


class AccessLog(AbstractAccessLogger):
    """One line per request, with its id, so a user's report can be found in the log.

    The record is made here and handed to the logger's handlers, as `logger.info(...,
    extra=fields)` would, without the walk up the stack for the caller's file and line
    (which no format shows): a third of a line's cost."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):
            return
        remote, request_id = request.remote, request.get(REQUEST_ID, "-")
        record = logging.getLogRecordFactory()(
            logger.name, logging.INFO, __file__, 0, ACCESS_LINE,
            (remote, request.method, request.path[:200], response.status, time * 1000,
             request_id), None)
        record.__dict__.update(
            request_id=request_id, user_id=request.get(USER_ID), method=request.method,
            route=_route(request), path=request.path, status=response.status,
            duration_ms=round(time * 1000, 1), remote=remote)
        logger.handle(record)
