"""In process: the web layer's per-request pieces that branch webfast made cheaper, each next to
the code it replaced (written out here as it was), in one run, interleaved.

Run: .venv/bin/python bench/web_levers.py [--calls 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import logging
import sys
import tempfile
import timeit
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from ml.service import _printable, fingerprint
from web import schemas
from web.bodies import load
from web.keys import REQUEST_ID, USER_ID
from web.logs import AccessLog, TextFormatter, _route
from web.predict_body import predict_body
from web.public_ids import TASK, PublicIdCodec

BODY = {"model_id": 1, "data": [1.5, -2.25, 3.0, 4.125, 5.5, 6.0, 7.75, 8.0, 9.5, 10.25]}
FORMAT = "%(asctime)s %(levelname)s %(message)s"


class OldCodec(PublicIdCodec):
    """The round function as it was: hmac.new per call."""

    def __init__(self, key: bytes) -> None:
        super().__init__(key)
        self._round_keys = [hmac.new(key, f"ml-cabinet public ids round {n}".encode(),
                                     hashlib.sha256).digest() for n in range(4)]

    def _f(self, round_no: int, half: int) -> int:
        digest = hmac.new(self._round_keys[round_no], half.to_bytes(4, "big"),
                          hashlib.sha256).digest()
        return int.from_bytes(digest[:4], "big")


class Peer:
    """A connection's far end, without a mock's attribute machinery in the timings."""

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default


def old_fingerprint(model_id: int, items: list[Any]) -> str:
    text = json.dumps([model_id, [_printable(item) for item in items]], default=repr,
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


class OldAccessLog(AccessLog):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        fields = {"request_id": request.get(REQUEST_ID, "-"), "user_id": request.get(USER_ID),
                  "method": request.method, "route": _route(request), "path": request.path,
                  "status": response.status, "duration_ms": round(time * 1000, 1),
                  "remote": request.remote}
        self.logger.info('%s "%s %s" %s %.1fms id=%s', request.remote, request.method,
                         request.path[:200], response.status, time * 1000,
                         fields["request_id"], extra=fields)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    schema = schemas.PredictRequest()
    old_ids, new_ids = OldCodec(b"k" * 32), PublicIdCodec(b"k" * 32)
    assert old_ids.encode(TASK, 77) == new_ids.encode(TASK, 77)
    items = list(BODY["data"])  # type: ignore[call-overload]
    raw = json.dumps(BODY).encode()
    with tempfile.TemporaryDirectory() as scratch:
        stream = (Path(scratch) / "access.log").open("w")
        pairs: list[tuple[str, logging.Formatter]] = [
            ("old", logging.Formatter(FORMAT)), ("new", TextFormatter(FORMAT))]
        loggers = {}
        for name, formatter in pairs:
            handler = logging.StreamHandler(stream)
            handler.setFormatter(formatter)
            logger = logging.getLogger(f"bench.access.{name}")
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
            logger.propagate = False
            loggers[name] = logger
        request = make_mocked_request("POST", "/api/v1/predict", transport=Peer())
        request[REQUEST_ID], request[USER_ID] = "ab12", 7
        reply = web.Response()
        old_log, new_log = OldAccessLog(loggers["old"], ""), AccessLog(loggers["new"], "")
        cases = [
            ("predict body: marshmallow → usual-shape check",
             lambda: load(schema, BODY), lambda: predict_body(BODY)),
            ("read_json's lone-surrogate re-encode (skipped without a \\u escape)",
             lambda: json.dumps(json.loads(raw), ensure_ascii=False).encode(),
             lambda: b"\\u" in raw),
            ("public task id: hmac.new rounds → padded-key states",
             lambda: old_ids.encode(TASK, 12345), lambda: new_ids.encode(TASK, 12345)),
            ("request fingerprint: json.dumps → plain numbers",
             lambda: old_fingerprint(1, items), lambda: fingerprint(1, items)),
            ("access line: logger.info(extra=) → record + handle, time text per second",
             lambda: old_log.log(request, reply, 0.0012),
             lambda: new_log.log(request, reply, 0.0012)),
        ]
        for title, old, new in cases:
            figures = []
            for _ in range(args.rounds):
                for fn in (old, new):
                    figures.append(timeit.timeit(fn, number=args.calls) / args.calls * 1e6)
            olds, news = sorted(figures[0::2]), sorted(figures[1::2])
            print(f"{title}: {olds[len(olds) // 2]:.2f} → {news[len(news) // 2]:.2f} µs a call")
        stream.close()


if __name__ == "__main__":
    main()
