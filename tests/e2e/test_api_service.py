"""The service around the API: liveness, the OpenAPI document, the docs page, request ids."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient
from cabinet_http import api_signup, expect_problem
from schemathesis.specs.openapi.definitions import OPENAPI_30_VALIDATOR

Client = TestClient[Any, Any]


async def test_healthz_answers_ok(client: Client) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    health = await response.json()
    assert health["status"] == "ok" and health["first_break"] is None
    assert isinstance(health["verified_through"], int)


async def test_openapi_is_a_valid_openapi_3_document(client: Client) -> None:
    response = await client.get("/api/openapi.json")

    assert response.status == 200
    spec = await response.json()
    assert spec["openapi"].startswith("3.")
    errors = [f"{'/'.join(map(str, e.instance_path))}: {e}"
              for e in OPENAPI_30_VALIDATOR.iter_errors(spec)]
    assert errors == []


async def test_openapi_describes_every_api_route_of_the_running_app(client: Client) -> None:
    spec = await (await client.get("/api/openapi.json")).json()

    served = {(route.method.lower(), route.resource.canonical)
              for route in client.app.router.routes()
              if route.resource is not None and route.method != "HEAD"
              and route.resource.canonical.startswith(("/api/v1/", "/healthz"))}
    described = {(method, path) for path, operations in spec["paths"].items()
                 for method in operations}

    assert len(served) >= 12, served
    assert served <= described


async def test_openapi_refers_only_to_schemas_it_defines(client: Client) -> None:
    text = await (await client.get("/api/openapi.json")).text()
    spec = await (await client.get("/api/openapi.json")).json()

    referred = set(re.findall(r'"#/components/schemas/([^"]+)"', text))

    assert {"PredictResult", "ProblemView", "TopUpResult"} <= referred
    assert referred <= set(spec["components"]["schemas"])


async def test_docs_page_loads_its_script_and_styles_from_this_server(
        client: Client) -> None:
    response = await client.get("/docs")

    assert response.status == 200
    html = await response.text()
    assert '<script src="/static/docs.js?v=' in html  # content-hashed: cached a year
    assert 'data-spec-url="/api/openapi.json"' in html
    assert not re.search(r'(src|href)="(https?:)?//', html), "no third-party assets"
    for asset, kind in (("/static/docs.js", "javascript"), ("/static/style.css", "css")):
        served = await client.get(asset)
        assert served.status == 200, asset
        assert kind in served.content_type
        assert len(await served.read()) > 1000


async def test_every_response_carries_a_request_id(client: Client) -> None:
    alice = await api_signup(client, "alice")
    responses = [
        await client.get("/healthz"),
        await client.get("/api/v1/me", headers=alice.auth),
        await client.get("/api/v1/me"),
        await client.get("/api/v1/nowhere"),
        await client.get("/"),
        await client.get("/static/style.css"),
        await client.get("/no-such-page"),
    ]
    ids = [r.headers.get("X-Request-Id") for r in responses]
    assert all(ids), ids
    assert len(set(ids)) == len(ids)


async def test_a_request_id_sent_by_the_client_is_echoed(client: Client) -> None:
    sent = await client.get("/healthz", headers={"X-Request-Id": "trace-42.a_b"})
    unsafe = await client.get("/healthz", headers={"X-Request-Id": "bad id<script>"})

    assert sent.headers["X-Request-Id"] == "trace-42.a_b"
    assert re.fullmatch(r"[0-9a-f]{32}", unsafe.headers["X-Request-Id"])


async def test_unknown_api_routes_and_methods_answer_in_problem_json(client: Client) -> None:
    await expect_problem(await client.get("/api/v1/nowhere"), 404, "not_found")
    wrong_method = await client.delete("/api/v1/models")
    await expect_problem(wrong_method, 405, "method_not_allowed")
    assert "GET" in wrong_method.headers["Allow"]


async def test_api_answers_are_not_cached(client: Client) -> None:
    alice = await api_signup(client, "alice")
    response = await client.get("/api/v1/balance", headers=alice.auth)
    assert response.headers["Cache-Control"] == "no-store"
