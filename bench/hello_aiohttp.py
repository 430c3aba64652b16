"""The framework's ceiling: aiohttp answering a small JSON from a bare handler, nothing else.

It reads the request body (as a real handler must) and answers the same shape of route as
ML Cabinet's predict, so the load generator does the same work against both. Uses uvloop when
it is importable and ML_CABINET_UVLOOP is not "0", as main.py does.

Run: .venv/bin/python bench/hello_aiohttp.py --port 8081
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os

from aiohttp import web


async def hello(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response({"hello": "world"})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args()
    if os.environ.get("ML_CABINET_UVLOOP", "1") != "0":
        with contextlib.suppress(ImportError):
            import uvloop

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    app = web.Application()
    app.router.add_post("/api/v1/predict", hello)
    app.router.add_get("/healthz", hello)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
