"""GET /metrics as an operator scrapes it: exact counts after a known sequence of requests,
counters that survive a restart, and never served without the token (or its own port)."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient
from cabinet_http import api_signup
from prometheus_client.parser import text_string_to_metric_families
from test_api_verifier import tamper_with_a_deposit

from web.app import create_app
from web.config import Config
from web.keys import ADMIN, STORE, VERIFIER

TOKEN = "operators-only-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PASSWORD = "correct horse battery"
ClientFactory = Callable[[Any], Coroutine[Any, Any, TestClient[Any, Any]]]


def values(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def one(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
        **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


async def scrape(client: TestClient[Any, Any]) -> dict[tuple[str, frozenset[tuple[str, str]]],
                                                      float]:
    reply = await client.get("/metrics", headers=AUTH)
    assert reply.status == 200, await reply.text()
    assert reply.content_type == "text/plain"
    return values(await reply.text())


async def known_sequence(client: TestClient[Any, Any]) -> None:
    """Two accounts, 150 credits topped up, one prediction of 2 rows, one refused for lack
    of credits, six wrong passwords and one attempt the throttle refuses."""
    for name in ("ada", "bob"):
        made = await client.post("/api/v1/auth/register",
                                 json={"username": name, "password": PASSWORD})
        assert made.status == 201
    tokens = {}
    for name in ("ada", "bob"):
        login = await client.post("/api/v1/auth/login",
                                  json={"username": name, "password": PASSWORD})
        tokens[name] = {"Authorization": f"Bearer {(await login.json())['access_token']}"}
    for amount in (100, 50):
        added = await client.post("/api/v1/balance/top-up", json={"amount": amount},
                                  headers=tokens["ada"])
        assert added.status == 201
    predicted = await client.post("/api/v1/predict", headers=tokens["ada"],
                                  json={"model_id": 1, "data": [1.5, 2, "oops"]})
    assert predicted.status == 200 and (await predicted.json())["cost"] == 2
    refused = await client.post("/api/v1/predict", headers=tokens["bob"],
                                json={"model_id": 1, "data": [1]})
    assert refused.status == 402
    for _ in range(6):  # the sixth failure locks the pair
        wrong = await client.post("/api/v1/auth/login",
                                  json={"username": "nobody", "password": "not it at all"})
        assert wrong.status == 401
    throttled = await client.post("/api/v1/auth/login",
                                  json={"username": "nobody", "password": "not it at all"})
    assert throttled.status == 429


async def test_a_scrape_counts_exactly_what_happened(config: Config,
                                                     aiohttp_client: ClientFactory) -> None:
    client = await aiohttp_client(create_app(dataclasses.replace(config, metrics_token=TOKEN)))
    await known_sequence(client)
    found = await scrape(client)
    assert one(found, "mlc_credits_topped_up_total") == 150
    assert one(found, "mlc_credits_charged_total") == 2
    assert one(found, "mlc_items_predicted_total") == 2
    assert one(found, "mlc_predictions_total", model="1", status="completed") == 1
    assert one(found, "mlc_predictions_total", model="1", status="rejected") == 1
    assert one(found, "mlc_login_failures_total") == 6
    assert one(found, "mlc_login_throttled_total") == 1
    assert one(found, "mlc_http_requests_total", route="api_top_up", method="POST",
               status="201") == 2
    assert one(found, "mlc_http_requests_total", route="api_login", method="POST",
               status="401") == 6
    assert one(found, "mlc_http_request_duration_seconds_count", route="api_predict") == 2
    assert one(found, "mlc_open_holds") == 0 and one(found, "mlc_open_hold_credits") == 0
    assert one(found, "mlc_ledger_damaged") == 0
    assert one(found, "mlc_write_queue_depth") == 0
    # 2 accounts + 2 tokens... each write is one job; every job went through a commit.
    assert one(found, "mlc_write_batch_jobs_sum") >= 8
    assert one(found, "mlc_write_commit_seconds_count") >= 1


async def test_the_ledger_counters_do_not_go_back_after_a_restart(
        config: Config, aiohttp_client: ClientFactory) -> None:
    metered = dataclasses.replace(config, metrics_token=TOKEN)
    first = await aiohttp_client(create_app(metered))
    await known_sequence(first)
    await first.close()
    again = await aiohttp_client(create_app(metered))
    found = await scrape(again)
    assert one(found, "mlc_credits_topped_up_total") == 150
    assert one(found, "mlc_credits_charged_total") == 2
    assert one(found, "mlc_items_predicted_total") == 2
    assert one(found, "mlc_predictions_total", model="1", status="completed") == 1
    assert one(found, "mlc_predictions_total", model="1", status="rejected") == 1
    # Request counts are this process's own: the new one has served only the scrape.
    assert one(found, "mlc_http_requests_total", route="api_top_up", method="POST",
               status="201") == 0


async def test_without_the_token_nothing_is_told(config: Config,
                                                 aiohttp_client: ClientFactory) -> None:
    client = await aiohttp_client(create_app(dataclasses.replace(config, metrics_token=TOKEN)))
    for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"},
                    {"Authorization": TOKEN}):
        refused = await client.get("/metrics", headers=headers)
        assert refused.status == 401
        assert "mlc_" not in await refused.text()
    unconfigured = await aiohttp_client(create_app(config))
    assert (await unconfigured.get("/metrics", headers=AUTH)).status == 404


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_on_a_port_of_its_own_the_public_port_does_not_serve_it(
        config: Config, aiohttp_client: ClientFactory) -> None:
    port = free_port()
    client = await aiohttp_client(create_app(dataclasses.replace(
        config, metrics_port=port, host="127.0.0.1")))
    assert (await client.get("/metrics")).status == 404
    await client.get("/api/v1/models")
    async with aiohttp.ClientSession() as http, http.get(
            f"http://127.0.0.1:{port}/metrics") as reply:
        assert reply.status == 200
        found = values(await reply.text())
    assert one(found, "mlc_http_requests_total", route="api_models", method="GET",
               status="200") == 1


async def test_ready_while_the_store_takes_writes_and_not_once_the_log_is_damaged(
        config: Config, aiohttp_client: ClientFactory) -> None:
    client = await aiohttp_client(create_app(dataclasses.replace(config, metrics_token=TOKEN)))
    await api_signup(client, "alice", top_up=100)
    assert (await client.get("/api/v1/healthz")).status == 404  # liveness is not under /api
    ready = await client.get("/readyz")
    assert ready.status == 200 and (await ready.json()) == {"status": "ready"}
    assert ready.headers["Cache-Control"] == "no-store"
    verifier = client.app[VERIFIER]
    verifier.min_pass_interval_s = 0
    await tamper_with_a_deposit(config)
    await verifier.step(rows=1_000)
    damaged = await client.get("/readyz")
    assert damaged.status == 503 and (await damaged.json())["status"] == "ledger_damaged"
    assert (await client.get("/healthz")).status == 200  # alive: reads are still served
    assert one(await scrape(client), "mlc_ledger_damaged") == 1


async def test_not_ready_when_the_store_is_closed(config: Config,
                                                  aiohttp_client: ClientFactory) -> None:
    client = await aiohttp_client(create_app(config))
    await client.app[STORE].close()
    reply = await client.get("/readyz")
    assert reply.status == 503 and (await reply.json())["status"] == "store_unavailable"
    assert (await client.get("/healthz")).status == 200


async def test_operator_adjustments_are_counted_and_kept_across_a_restart(
        config: Config, aiohttp_client: ClientFactory) -> None:
    metered = dataclasses.replace(config, metrics_token=TOKEN)
    client = await aiohttp_client(create_app(metered))
    user = await api_signup(client, "alice", top_up=100)
    olga = await api_signup(client, "olga")
    assert await client.app[ADMIN].set_role("olga", True, "test")
    for amount, key in ((25, "a1"), (-10, "a2"), (25, "a1")):  # the last one is a replay
        adjusted = await client.post(f"/api/v1/admin/users/{user.id}/adjustments",
                                     json={"amount_credits": amount, "reason": "goodwill"},
                                     headers={**olga.auth, "Idempotency-Key": key})
        assert adjusted.status in (200, 201), await adjusted.text()
    for scraped in (await scrape(client), None):
        if scraped is None:  # the same numbers from the ledger after a restart
            await client.close()
            scraped = await scrape(await aiohttp_client(create_app(metered)))
        assert one(scraped, "mlc_adjustments_total", direction="credit") == 1
        assert one(scraped, "mlc_adjustments_total", direction="debit") == 1
        assert one(scraped, "mlc_credits_adjusted_total", direction="credit") == 25
        assert one(scraped, "mlc_credits_adjusted_total", direction="debit") == 10
