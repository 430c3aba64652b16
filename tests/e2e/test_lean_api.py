"""The hot API routes' short middleware chain (web/lean.py) answers exactly as the full chain
does: the same status, headers (security headers, Cache-Control, no cookie) and body, the
request id echoed or made, problem+json in the caller's language, the request counted."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.e2e.cabinet_http import ApiUser, api_signup
from web import lean
from web.app import create_app
from web.config import Config
from web.metrics import METRICS
from web.middlewares import SECURITY_HEADERS

Client = TestClient[Any, Any]
RU = {"Accept-Language": "ru-RU,ru;q=0.9"}
VARYING = {"date", "x-request-id", "content-length"}  # the rest must be the same


@pytest.fixture
async def both(tmp_path: Path, aiohttp_client: Any) -> tuple[Client, Client]:
    """The app as served (lean chain first) and the same app with every request on the
    full chain, each on its own file."""
    def config(name: str) -> Config:
        (tmp_path / name).mkdir()
        return Config(db_path=tmp_path / name / "cabinet.db", cheap_password_hashing=True)

    full_app = create_app(config("full"))
    full_app.middlewares.remove(lean.lean_api)
    return (await aiohttp_client(create_app(config("lean"))),
            await aiohttp_client(full_app))


async def answer(client: Client, method: str, path: str, user: ApiUser | None,
                 **kwargs: Any) -> tuple[int, dict[str, str], Any]:
    headers = {**(user.auth if user else {}), **kwargs.pop("headers", {})}
    async with client.request(method, path, headers=headers, **kwargs) as reply:
        body = await reply.json() if "json" in reply.content_type else await reply.text()
        kept = {k: v for k, v in reply.headers.items() if k.lower() not in VARYING}
        assert re.fullmatch(r"[0-9a-f]{32}|sent-id\.1", reply.headers["X-Request-Id"])
        return reply.status, kept, body


def without_ids(body: Any) -> Any:
    """A predict reply's task id and times differ between two files; the rest may not."""
    if isinstance(body, dict) and isinstance(body.get("task"), dict):
        body = {**body, "task": {k: v for k, v in body["task"].items()
                                 if k not in ("id", "created_at")}}
    return body


CALLS = [
    ("POST", "/api/v1/predict", False, {"json": {"model_id": 1, "data": [1]}, "headers": RU}),
    ("POST", "/api/v1/predict", True, {"json": {"model_id": "1", "data": 2}, "headers": RU}),
    ("POST", "/api/v1/predict", True, {"json": {"model_id": 1, "data": [1, "x"]}}),
    ("POST", "/api/v1/predict", True, {"json": {"model_id": 1, "data": ["x"]}, "headers": RU}),
    ("POST", "/api/v1/predict", True, {"data": "not json",
                                       "headers": {"Content-Type": "application/json"}}),
    ("POST", "/api/v1/predict", True, {"json": {"model_id": 99, "data": [1]}}),
    ("POST", "/api/v1/predict", True, {"json": {"model_id": 1, "data": [2]},
                                       "headers": {"X-Request-Id": "sent-id.1"}}),
    ("GET", "/api/v1/balance", True, {}),
    ("GET", "/api/v1/models", True, {"headers": RU}),
    ("GET", "/api/v1/tasks/tsk_nothere", True, {"headers": RU}),
    ("GET", "/api/v1/tasks?limit=0", True, {}),
    ("POST", "/api/v1/balance/top-up", True, {"json": {"amount": -5}, "headers": RU}),
    ("PUT", "/api/v1/predict", True, {}),  # not a route: the full chain's 405
]


async def test_lean_routes_answer_as_the_full_chain_does(both: tuple[Client, Client]) -> None:
    lean_client, full_client = both
    lean_user = await api_signup(lean_client, "ada", top_up=100)
    full_user = await api_signup(full_client, "ada", top_up=100)
    for method, path, signed_in, kwargs in CALLS:
        got = await answer(lean_client, method, path, lean_user if signed_in else None,
                           **{k: dict(v) if isinstance(v, dict) else v
                              for k, v in kwargs.items()})
        expected = await answer(full_client, method, path, full_user if signed_in else None,
                                **kwargs)
        assert (got[0], got[1], without_ids(got[2])) == (
            expected[0], expected[1], without_ids(expected[2])), (method, path, kwargs)
        assert SECURITY_HEADERS.items() <= got[1].items()
        assert "Set-Cookie" not in got[1]


async def test_the_request_id_is_echoed_and_the_request_counted(
        both: tuple[Client, Client]) -> None:
    client, _ = both
    user = await api_signup(client, "bob", top_up=100)
    metrics = client.server.app[METRICS]
    before = metrics.requests.labels("api_predict", "POST", "200")._value.get()
    reply = await client.post("/api/v1/predict", json={"model_id": 1, "data": [1]},
                              headers={**user.auth, "X-Request-Id": "sent-id.1"})
    assert reply.status == 200 and reply.headers["X-Request-Id"] == "sent-id.1"
    assert metrics.requests.labels("api_predict", "POST", "200")._value.get() == before + 1
    refused = await client.post("/api/v1/predict", json={"model_id": 1, "data": [1]},
                                headers={"Authorization": "Bearer nope", **RU})
    assert refused.status == 401 and refused.content_type == "application/problem+json"
    assert re.search("[а-яё]", (await refused.json())["title"], re.I)
    assert re.fullmatch(r"[0-9a-f]{32}", refused.headers["X-Request-Id"])


def test_every_lean_route_exists(tmp_path: Path) -> None:
    app = create_app(Config(db_path=tmp_path / "cabinet.db", cheap_password_hashing=True))
    assert set(app.router.named_resources()) >= lean.LEAN_ROUTES
