"""The framework's ceiling: aiohttp answering a small JSON from a bare handler, nothing else.

It reads the request body (as a real handler must) and answers the same shape of route as
ML Cabinet's predict, so the load generator does the same work against both. Uses uvloop when
it is importable and ML_CABINET_UVLOOP is not "0", as main.py does.

With `--workers N` it forks N − 1 copies before serving, and all N share the port with
SO_REUSEPORT, as `main.py --workers N` does: the same number of processes on both sides.

Run: .venv/bin/python bench/hello_aiohttp.py --port 8081 [--workers N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal

from aiohttp import web


async def hello(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response({"hello": "world"})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    children = []
    for _ in range(args.workers - 1):
        pid = os.fork()
        if pid == 0:
            serve(args.port, reuse_port=True)
            os._exit(0)
        children.append(pid)
    try:
        serve(args.port, reuse_port=args.workers > 1)
    finally:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)


def serve(port: int, *, reuse_port: bool) -> None:
    if os.environ.get("ML_CABINET_UVLOOP", "1") != "0":
        with contextlib.suppress(ImportError):
            import uvloop

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    app = web.Application()
    app.router.add_post("/api/v1/predict", hello)
    app.router.add_get("/healthz", hello)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None,
                reuse_port=reuse_port)


if __name__ == "__main__":
    main()
