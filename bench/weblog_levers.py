"""In process: the pieces above the write that branch weblog made cheaper (issue 12, round 4),
each next to the code it replaced (written out here as it was), in one run, interleaved.

The access line is timed inside a running event loop, `--lines` lines a loop turn (at 50
connections the server wrote ~14 a turn), to a file, through main.py's logging set-up
(one handler on the root logger, the text format): before, a LogRecord made and handed to
logging.StreamHandler (one write a line); after, web/logs.py's AccessLog and LineHandler.

Run: .venv/bin/python bench/weblog_levers.py [--calls 20000] [--rounds 5] [--lines 14]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from ledger import TaskDraft
from ml.outputs import _column, _number
from ml.registry import default_models
from ml.rows import check_rows
from ml.service import _judged, _judged_each
from ml.validation import check_each, check_items
from web.keys import REQUEST_ID, USER_ID
from web.logs import ACCESS_LINE, AccessLog, LineHandler, TextFormatter, _route

FORMAT = "%(asctime)s %(levelname)s %(message)s"
ITEMS: list[object] = [1.5, -2.25, 3.0, 4.125, 5.5, 6.0, 7.75, 8.0, 9.5, 10.25]


class Peer:
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default


class BeforeAccessLog(AccessLog):
    """f06484d's AccessLog.log: a LogRecord from the factory, handed to logger.handle."""

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


async def answer(request: web.Request) -> web.Response:
    return web.Response()


def access_lines(handler: logging.Handler, access: AccessLog, lines: int, turns: int) -> float:
    """CPU µs a line: `lines` lines a loop turn, `turns` turns, with `handler` alone on root."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    request = make_mocked_request("POST", "/api/v1/predict", transport=Peer())
    request[REQUEST_ID], request[USER_ID] = "0123456789abcdef0123456789abcdef", 7
    reply = web.Response()

    async def run() -> float:
        app = web.Application()  # a real route, as the server's requests have (not a Mock)
        app.router.add_post("/api/v1/predict", answer, name="api_predict")
        request._match_info = await app.router.resolve(request)
        for _ in range(lines):  # the loop's own start-up and first-line costs, untimed
            access.log(request, reply, 0.0012)
        await asyncio.sleep(0)
        started = time.process_time()
        for _ in range(turns):
            for _ in range(lines):
                access.log(request, reply, 0.0012)
            await asyncio.sleep(0)  # the loop turns: LineHandler's write runs
        return (time.process_time() - started) / (turns * lines) * 1e6

    try:
        return asyncio.run(run())
    finally:
        root.handlers[:] = saved
        root.setLevel(level)


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--lines", type=int, default=14)
    args = parser.parse_args()
    spec = default_models()[0]
    checked = check_rows(spec.schema, ITEMS, source="json")
    draft = TaskDraft(model_id=spec.id, input_data=list(ITEMS),  # type: ignore[arg-type]
                      input_indexes=checked.indexes, invalid=[], cost_credits=10,
                      model_version=spec.version)
    outcomes = [float(x) * 2 for x in ITEMS]  # type: ignore[arg-type]
    cases: list[tuple[str, Callable[[], object], Callable[[], object]]] = [
        ("10 JSON numbers checked: item by item → plain_numbers",
         lambda: check_each(ITEMS), lambda: check_items(ITEMS)),
        ("a code model's 10 floats read: _number each → the list as is",
         lambda: [_number(v) for v in outcomes], lambda: _column(outcomes, 10)),
        ("a run of 10 floats judged: isinstance passes → all floats",
         lambda: _judged_each(spec, checked, draft, outcomes, None),
         lambda: _judged(spec, checked, draft, outcomes, None)),
    ]
    for title, old, new in cases:
        olds, news = [], []
        for _ in range(args.rounds):
            olds.append(timeit.timeit(old, number=args.calls) / args.calls * 1e6)
            news.append(timeit.timeit(new, number=args.calls) / args.calls * 1e6)
        print(f"{title}: {median(olds):.2f} → {median(news):.2f} µs a call")
    with tempfile.TemporaryDirectory() as scratch:
        stream = (Path(scratch) / "access.log").open("w")
        before, after = logging.StreamHandler(stream), LineHandler(stream)
        for handler in (before, after):
            handler.setFormatter(TextFormatter(FORMAT))
        logger = logging.getLogger("aiohttp.access")
        turns = max(1, args.calls // args.lines)
        olds, news = [], []
        for _ in range(args.rounds):
            olds.append(access_lines(before, BeforeAccessLog(logger, ""), args.lines, turns))
            news.append(access_lines(after, AccessLog(logger, ""), args.lines, turns))
        stream.close()
        print(f"access line, {args.lines} a loop turn: LogRecord + StreamHandler → template "
              f"record + LineHandler: {median(olds):.2f} → {median(news):.2f} µs a line")


if __name__ == "__main__":
    main()
