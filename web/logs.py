"""Log lines: plain text by default, or one JSON object per line (ML_CABINET_LOG_FORMAT=json).

The access line carries the request id (also sent back as X-Request-Id), the user id when
the request was authenticated, the route's name, the status and the duration. It never
carries headers, bodies or the query string: that is where passwords, tokens, API keys and
session cookies travel.

Access lines reach stderr together (LineHandler.defer): each is formatted once its reply has
been sent, and a callback queued behind the loop's work already waiting writes all that
waited in one system call (at 50 connections ~14 lines a write). A line written at once
cannot be lost once its reply is out; a deferred one waits for that callback (3.6 ms median,
38 ms at the 99th percentile at 50 connections, when the loop runs a batch of writes first),
and a kill -9 in that window loses it. A clean stop, and logging at exit, write everything.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import threading
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


# A deferred line waits at most about this long for its write: an iteration of the loop can
# last tens of milliseconds while a batch of writes runs on it, and a kill -9 takes what waits.
MAX_DEFER_S = 0.005


class LineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """logging's StreamHandler, plus lines handed over with `defer`: those are kept and
    written together at the end of the event loop's iteration, or sooner once the first has
    waited MAX_DEFER_S (or by the next record written the usual way, or by flush(), which
    logging calls at exit), so the lines of one handler stay in the order they were made.
    `defer` is called from the event loop's thread; records from any thread go to emit."""

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        self._deferred: list[str] = []
        self._first_at = 0.0  # when the first line waiting was made (record.created)

    def defer(self, record: logging.LogRecord) -> None:
        """As handle(record), but written once this event-loop iteration is over. The caller
        has checked that nothing filters it (sole_line_handler)."""
        try:
            line = self.format(record) + self.terminator
        except Exception:  # as emit does: a bad record is reported, the request goes on
            self.handleError(record)
            return
        with self.lock:  # type: ignore[union-attr]
            self._deferred.append(line)
            first = len(self._deferred) == 1
            if first:
                self._first_at = record.created
            elif record.created - self._first_at > MAX_DEFER_S:
                self.flush()  # the loop is busy: write what waited (the callback finds none)
                return
        if first:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no event loop here: write it now
                self.flush()

    def emit(self, record: logging.LogRecord) -> None:
        if self._deferred:  # the lines made before this one go first
            self.flush()
        super().emit(record)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            lines, self._deferred = self._deferred, []
            try:
                if lines and self.stream:
                    self.stream.write("".join(lines))
                super().flush()
            except Exception:  # a full disk or a closed pipe must not break the event loop
                self.handleError(logging.makeLogRecord(
                    {"msg": "%d deferred log lines not written", "args": (len(lines),)}))


def sole_line_handler(logger: logging.Logger, level: int) -> LineHandler | None:
    """The LineHandler that `logger.handle` would hand a record of `level` to, when it is
    the only handler it would reach and nothing filters on the way; else None."""
    if logger.disabled or logger.filters:
        return None
    found: LineHandler | None = None
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if found is not None or type(handler) is not LineHandler:
                return None
            found = handler
        current = current.parent if current.propagate else None
    if found is None or found.filters or level < found.level:
        return None
    return found


def flush_access_lines() -> None:
    """Write the lines the root's LineHandler keeps (at a clean stop; it never raises)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, LineHandler):
            handler.flush()


def setup_logging(log_format: str, level: int = logging.INFO) -> None:
    """The root handler on stderr, in the chosen format (replacing any earlier one)."""
    handler = LineHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter(
        "%(asctime)s %(levelname)s %(message)s"))
    flush_access_lines()  # kept lines go out before their handler does
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
    (which no format shows). When the line goes to the LineHandler alone (main.py's set-up)
    the record is a copy of one made earlier on this thread with the time set anew (what
    LogRecord does differs only in the time), and it is written at the end of the loop's
    iteration; any other set-up gets a fresh record through `logger.handle`."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):
            return
        remote, request_id = request.remote, request.get(REQUEST_ID, "-")
        args = (remote, request.method, request.path[:200], response.status, time * 1000,
                request_id)
        fields = {"request_id": request_id, "user_id": request.get(USER_ID),
                  "method": request.method, "route": _route(request), "path": request.path,
                  "status": response.status, "duration_ms": round(time * 1000, 1),
                  "remote": remote}
        handler = sole_line_handler(logger, logging.INFO)
        if handler is None or logging.getLogRecordFactory() is not logging.LogRecord:
            record = logging.getLogRecordFactory()(
                logger.name, logging.INFO, __file__, 0, ACCESS_LINE, args, None)
            record.__dict__.update(fields)
            logger.handle(record)
            return
        handler.defer(_access_record(logger.name, args, fields))


_ACCESS_RECORDS: dict[tuple[str, int, str], dict[str, Any]] = {}
# A forked child (main.py --workers) has a process id and name of its own.
os.register_at_fork(after_in_child=_ACCESS_RECORDS.clear)


def _access_record(name: str, args: tuple[Any, ...], fields: dict[str, Any]
                   ) -> logging.LogRecord:
    """LogRecord(name, INFO, this file, 0, ACCESS_LINE, args, None) with `fields`, from a
    template: everything LogRecord computes but the time depends only on the logger's name,
    the thread and the process (tests/unit/test_access_log.py compares the two)."""
    thread = threading.current_thread()
    key = (name, thread.ident or 0, thread.name)
    template = _ACCESS_RECORDS.get(key)
    if template is None:
        if len(_ACCESS_RECORDS) > 64:  # threads come and go; a handful is the normal case
            _ACCESS_RECORDS.clear()
        template = _ACCESS_RECORDS[key] = logging.LogRecord(
            name, logging.INFO, __file__, 0, ACCESS_LINE, (), None).__dict__
    record = logging.LogRecord.__new__(logging.LogRecord)
    values = record.__dict__ = template.copy()
    values.update(fields)
    now = _clock()
    values["args"], values["created"] = args, now
    values["msecs"] = int((now - int(now)) * 1000) + 0.0  # as LogRecord does
    values["relativeCreated"] = (now - _LOGGING_START) * 1000
    return record


_clock = time.time
_LOGGING_START: float = logging._startTime  # type: ignore[attr-defined]  # LogRecord's origin
