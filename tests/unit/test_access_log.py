"""The access line: one record a request with its method, path, status, duration and ids, in
the text format (the same text logging.Formatter writes) and in JSON-log mode."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from web.keys import REQUEST_ID, USER_ID
from web.logs import AccessLog, JsonFormatter, TextFormatter

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
