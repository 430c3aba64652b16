"""A streamed export that fails after it began is cut, never ended: the client sees a broken
transfer, not a short file that looks whole. (The real aiohttp server and client.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientPayloadError, web

from web.exports import stream


async def failing_chunks() -> AsyncIterator[bytes]:
    yield b"id,amount\r\n1,5\r\n"
    yield b"2,-3\r\n"
    raise RuntimeError("the database went away")


async def whole_chunks() -> AsyncIterator[bytes]:
    yield b"id,amount\r\n1,5\r\n"
    yield b"2,-3\r\n"


async def failing(request: web.Request) -> web.StreamResponse:
    return await stream(request, failing_chunks(), "text/csv", "cut.csv")


async def whole(request: web.Request) -> web.StreamResponse:
    return await stream(request, whole_chunks(), "text/csv", "whole.csv")


async def test_a_failure_mid_stream_cuts_the_connection(aiohttp_client: Any) -> None:
    app = web.Application()
    app.router.add_get("/cut", failing)
    app.router.add_get("/whole", whole)
    client = await aiohttp_client(app)

    complete = await client.get("/whole")
    assert await complete.read() == b"id,amount\r\n1,5\r\n2,-3\r\n"
    assert complete.headers["Content-Disposition"] == 'attachment; filename="whole.csv"'

    cut = await client.get("/cut")
    assert cut.status == 200  # the headers had gone out
    with pytest.raises(ClientPayloadError):
        await cut.read()
