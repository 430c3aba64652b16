"""The access line: one record a request with its method, path, status, duration and ids, in
the text format (the same text logging.Formatter writes) and in JSON-log mode."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from web.keys import REQUEST_ID, USER_ID
from web.logs import (
    MAX_DEFER_S,
    AccessLog,
    JsonFormatter,
    LineHandler,
    TextFormatter,
    sole_line_handler,
)

FORMAT = "%(asctime)s %(levelname)s %(message)s"


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def kept() -> Iterator[Kept]:
    logger = logging.getLogger("test.access")
    handler = Kept()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)


def one_request(kept: Kept, path: str = "/api/v1/predict?secret=x") -> logging.LogRecord:
    request = make_mocked_request("POST", path)
    request[REQUEST_ID], request[USER_ID] = "ab12", 7
    AccessLog(logging.getLogger("test.access"), "").log(request, web.Response(status=402),
                                                         0.01234)
    assert len(kept.records) == 1
    return kept.records[0]


def test_one_line_a_request_with_its_fields(kept: Kept) -> None:
    record = one_request(kept)
    assert record.getMessage().endswith('"POST /api/v1/predict" 402 12.3ms id=ab12')
    fields = record.__dict__
    assert (fields["method"], fields["path"], fields["status"], fields["duration_ms"],
            fields["request_id"], fields["user_id"]) == ("POST", "/api/v1/predict", 402,
                                                          12.3, "ab12", 7)
    assert "secret" not in record.getMessage()  # the query string is never logged


def test_the_text_format_is_loggings_own(kept: Kept) -> None:
    record = one_request(kept)
    cached = TextFormatter(FORMAT)
    assert cached.format(record) == logging.Formatter(FORMAT).format(record)
    record.created += 1.5  # a new second: the time's text is made again
    record.msecs = 500.0
    assert cached.format(record) == logging.Formatter(FORMAT).format(record)


def test_json_mode_carries_every_field(kept: Kept) -> None:
    entry = json.loads(JsonFormatter().format(one_request(kept)))
    assert entry["method"] == "POST" and entry["path"] == "/api/v1/predict"
    assert entry["status"] == 402 and entry["duration_ms"] == 12.3
    assert entry["request_id"] == "ab12" and entry["user_id"] == 7
    assert {"time", "level", "logger", "message"} <= entry.keys()


def test_nothing_is_made_when_info_is_off(kept: Kept) -> None:
    logging.getLogger("test.access").setLevel(logging.WARNING)
    request = make_mocked_request("GET", "/healthz")
    AccessLog(logging.getLogger("test.access"), "").log(request, web.Response(), 0.001)
    assert kept.records == []


# -- the deferred path: main.py's LineHandler alone on the way ---------------------------------

class Seen(TextFormatter):
    """The text format, keeping each record it formats."""

    def __init__(self) -> None:
        super().__init__(FORMAT)
        self.records: list[logging.LogRecord] = []

    def format(self, record: logging.LogRecord) -> str:
        self.records.append(record)
        return super().format(record)


class Writes(io.StringIO):
    """A stream that counts its writes, or fails every one of them."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.calls, self.fail = 0, fail

    def write(self, text: str) -> int:
        self.calls += 1
        if self.fail:
            raise OSError(28, "No space left on device")
        return super().write(text)


@pytest.fixture
def line_logger() -> Iterator[tuple[logging.Logger, LineHandler, Writes, Seen]]:
    # A logger of its own, outside logging's tree: pytest hangs its capture handlers on every
    # logger of the tree that does not propagate.
    logger = logging.Logger("test.access.lines", logging.INFO)
    stream, formatter = Writes(), Seen()
    handler = LineHandler(stream)
    handler.setFormatter(formatter)
    logger.addHandler(handler)
    yield logger, handler, stream, formatter


def log_one(logger: logging.Logger, path: str = "/api/v1/predict?secret=x",
            request_id: str = "ab12") -> None:
    request = make_mocked_request("POST", path)
    request[REQUEST_ID], request[USER_ID] = request_id, 7
    AccessLog(logger, "").log(request, web.Response(status=402), 0.01234)


async def test_a_deferred_line_is_the_record_logging_would_have_made(line_logger) -> None:
    logger, _, stream, formatter = line_logger
    log_one(logger)
    (record,) = formatter.records
    made = logging.LogRecord(logger.name, logging.INFO, record.pathname, 0, record.msg,
                             record.args, None)
    made.__dict__.update(request_id="ab12", user_id=7, method="POST", route=record.route,
                         path="/api/v1/predict", status=402, duration_ms=12.3,
                         remote=record.remote)
    timing = {"created", "msecs", "relativeCreated"}
    assert {k: v for k, v in record.__dict__.items() if k not in timing | {"message",
                                                                           "asctime"}} \
        == {k: v for k, v in made.__dict__.items() if k not in timing}
    assert record.msecs == int((record.created - int(record.created)) * 1000)
    assert abs(record.created - made.created) < 5 and record.relativeCreated > 0
    await asyncio.sleep(0)  # one turn of the event loop: the deferred write has run
    assert stream.getvalue() == logging.Formatter(FORMAT).format(record) + "\n"


async def test_the_lines_of_one_loop_iteration_are_one_write_in_order(
        line_logger, monkeypatch: pytest.MonkeyPatch) -> None:
    # The three lines are made at one instant, as on a quiet loop: on a loaded machine three
    # mocked requests can take longer than MAX_DEFER_S, and that flush has a test of its own.
    monkeypatch.setattr("web.logs._clock", lambda: 1_700_000_000.0)
    logger, _, stream, _ = line_logger
    for request_id in ("first", "second", "third"):
        log_one(logger, request_id=request_id)
    assert stream.getvalue() == ""  # nothing until the iteration is over
    await asyncio.sleep(0)
    lines = stream.getvalue().splitlines()
    assert [line.rsplit("id=", 1)[1] for line in lines] == ["first", "second", "third"]
    assert stream.calls == 1
    assert all('"POST /api/v1/predict" 402 12.3ms' in line for line in lines)


async def test_a_record_written_at_once_comes_after_the_deferred_lines(line_logger) -> None:
    logger, _, stream, _ = line_logger
    log_one(logger, request_id="earlier")
    logger.warning("the verifier found a break")
    lines = stream.getvalue().splitlines()
    assert lines[0].endswith("id=earlier") and lines[1].endswith("found a break")


async def test_flush_writes_what_is_deferred(line_logger) -> None:
    # logging.shutdown (at exit) and web/server.py's stop call flush(): a clean stop loses
    # no line even when the loop never turns again.
    logger, handler, stream, _ = line_logger
    log_one(logger, request_id="last")
    handler.flush()
    assert stream.getvalue().endswith("id=last\n")


async def test_a_failing_stream_is_reported_not_raised(line_logger, capsys) -> None:
    logger, handler, _, _ = line_logger
    handler.setStream(Writes(fail=True))
    log_one(logger)
    await asyncio.sleep(0)  # the write fails in the loop's callback and is reported
    assert "No space left on device" in capsys.readouterr().err
    log_one(logger)  # and the next line is tried again, not refused
    handler.flush()


def test_any_other_set_up_gets_loggings_own_path(line_logger) -> None:
    logger, handler, stream, _ = line_logger
    assert sole_line_handler(logger, logging.INFO) is handler
    kept = Kept()
    logger.addHandler(kept)  # a second handler (pytest's caplog is one)
    try:
        assert sole_line_handler(logger, logging.INFO) is None
        log_one(logger)  # written at once, to both, as logging does
        assert len(kept.records) == 1 and stream.getvalue().endswith("id=ab12\n")
    finally:
        logger.removeHandler(kept)
    logger.addFilter(lambda record: False)  # a filter on the logger decides
    assert sole_line_handler(logger, logging.INFO) is None
    logger.filters.clear()
    handler.setLevel(logging.WARNING)
    assert sole_line_handler(logger, logging.INFO) is None


async def test_a_failing_log_loses_no_reply(line_logger, aiohttp_server, aiohttp_client
                                            ) -> None:
    """Through aiohttp's own request handler: the line's write fails, the replies arrive and
    the connection stays usable."""
    logger, handler, _, formatter = line_logger
    handler.setStream(Writes(fail=True))

    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/", hello)
    client = await aiohttp_client(await aiohttp_server(app, access_log_class=AccessLog,
                                                       access_log=logger))
    for _ in range(3):
        response = await client.get("/")
        assert response.status == 200 and await response.json() == {"ok": True}
    assert len(formatter.records) == 3  # each reply's line was made (and its write failed)


async def test_a_busy_loop_does_not_keep_a_line_waiting_for_long(line_logger) -> None:
    # An iteration that runs a batch of writes can last tens of milliseconds: a line made
    # MAX_DEFER_S after the first one waiting writes both, without waiting for the loop.
    logger, handler, stream, _ = line_logger
    log_one(logger, request_id="first")
    handler._first_at -= MAX_DEFER_S * 2  # the first line has waited: as if the loop were busy
    log_one(logger, request_id="second")
    assert [line.rsplit("id=", 1)[1] for line in stream.getvalue().splitlines()] == [
        "first", "second"]
    await asyncio.sleep(0)  # the iteration's own write finds nothing more
    assert stream.calls == 1
