"""Operator metrics in the Prometheus text format (GET /metrics) and the readiness check.

One registry per app (tests make many apps). Business counters (credits topped up and
charged, predictions, items) start from the ledger's totals when the app starts and then add
the events this process commits (the store's commit observer), so they never go backwards
across a restart. /metrics is never public: it needs `ML_CABINET_METRICS_TOKEN` as a Bearer
token, or is served on its own port (`ML_CABINET_METRICS_PORT`); with neither, it is a 404.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from events import RecordedEvent, StoreError
from ledger.events import (
    CreditsAdjusted,
    CreditsDeposited,
    CreditsWithdrawn,
    HoldSettled,
    TaskCompleted,
    TaskFailed,
    TaskRejected,
    TaskSubmitted,
)
from ledger.totals import LedgerTotals, ledger_totals, open_holds, pending_task_models
from web.keys import CONFIG, STORE, VERIFIER
from web.throttle import Throttle

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
READY_PROBE_TIMEOUT_S = 2.0  # a writer that does not answer in this long is not ready


class Metrics:
    """Every metric of one app, in its own registry."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter("mlc_http_requests", "HTTP requests by route name, method "
                                "and status", ["route", "method", "status"], registry=r)
        self.latency = Histogram("mlc_http_request_duration_seconds", "Time to answer, by "
                                 "route name", ["route"], buckets=LATENCY_BUCKETS_S, registry=r)
        self.batch_jobs = Histogram("mlc_write_batch_jobs", "Jobs per group commit",
                                    buckets=BATCH_BUCKETS, registry=r)
        self.commit_seconds = Histogram("mlc_write_commit_seconds", "Time per group commit",
                                        buckets=LATENCY_BUCKETS_S, registry=r)
        self.queue_depth = Gauge("mlc_write_queue_depth", "Writes waiting for the writer",
                                 registry=r)
        self.open_holds = Gauge("mlc_open_holds", "Holds not yet settled or released "
                                "(every process)", registry=r)
        self.open_hold_credits = Gauge("mlc_open_hold_credits", "Credits in open holds",
                                       registry=r)
        self.predictions = Counter("mlc_predictions", "Prediction tasks by model id and "
                                   "final status", ["model", "status"], registry=r)
        self.items_predicted = Counter("mlc_items_predicted", "Rows the models predicted "
                                       "(and were charged for)", registry=r)
        self.charged_credits = Counter("mlc_credits_charged", "Credits charged", registry=r)
        self.topped_up_credits = Counter("mlc_credits_topped_up", "Credits topped up",
                                         registry=r)
        self.login_failures = Counter("mlc_login_failures", "Logins with a wrong username "
                                      "or password", registry=r)
        self.login_throttled = Counter("mlc_login_throttled", "Login attempts refused by the "
                                       "throttle (429)", registry=r)
        self.adjustments = Counter("mlc_adjustments", "Operator adjustments by direction "
                                   "(credit or debit)", ["direction"], registry=r)
        self.adjusted_credits = Counter("mlc_credits_adjusted", "Credits operators credited "
                                        "or debited, by direction", ["direction"], registry=r)
        self.verified_through = Gauge("mlc_verifier_verified_through", "Last log position "
                                      "the background verifier vouched for", registry=r)
        self.verifier_pass_position = Gauge("mlc_verifier_pass_position", "Where the "
                                            "verifier's current full pass is", registry=r)
        self.ledger_damaged = Gauge("mlc_ledger_damaged", "1 once the verifier found a "
                                    "break in the hash chain", registry=r)
        self.verifier_last_full_pass = Gauge("mlc_verifier_last_full_pass_timestamp_seconds",
                                             "When the last full pass ended (0: never)",
                                             registry=r)
        self._pending_models: dict[int, int] = {}  # task id -> model id, until it ends
        # labels() hashes and checks its values on every call; each request reuses the
        # child it made the first time (the same children prometheus_client keeps anyway).
        self._request_children: dict[tuple[str, str, int], Any] = {}
        self._latency_children: dict[str, Any] = {}
        self._prediction_children: dict[tuple[str, str], Any] = {}

    def request_done(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        counter = self._request_children.get(key)
        if counter is None:
            counter = self._request_children[key] = self.requests.labels(route, method,
                                                                         str(status))
        counter.inc()
        latency = self._latency_children.get(route)
        if latency is None:
            latency = self._latency_children[route] = self.latency.labels(route)
        latency.observe(seconds)

    # -- the ledger's counters -------------------------------------------------------------

    def start_from(self, totals: LedgerTotals, pending: dict[int, int]) -> None:
        self.topped_up_credits.inc(totals.topped_up_credits)
        self.charged_credits.inc(totals.charged_credits)
        self.items_predicted.inc(totals.items_predicted)
        for (model_id, status), count in totals.predictions.items():
            self.predictions.labels(str(model_id), status).inc(count)
        for direction, (count, amount_credits) in totals.adjustments.items():
            self.adjustments.labels(direction).inc(count)
            self.adjusted_credits.labels(direction).inc(amount_credits)
        self._pending_models.update(pending)

    def batch_committed(self, jobs: int, seconds: float) -> None:
        self.batch_jobs.observe(jobs)
        self.commit_seconds.observe(seconds)

    def events_committed(self, events: Sequence[RecordedEvent]) -> None:
        for recorded in events:
            for fact in recorded.event.parts():  # a task completed at once: its four
                self._count(fact)

    def _count(self, event: object) -> None:
        if isinstance(event, CreditsDeposited):
            self.topped_up_credits.inc(event.amount_credits)
        elif isinstance(event, HoldSettled | CreditsWithdrawn):
            self.charged_credits.inc(event.amount_credits)
        elif isinstance(event, CreditsAdjusted):
            direction = "debit" if event.amount_credits < 0 else "credit"
            self.adjustments.labels(direction).inc()
            self.adjusted_credits.labels(direction).inc(abs(event.amount_credits))
        elif isinstance(event, TaskSubmitted):
            self._pending_models[event.task_id] = event.model_id
        elif isinstance(event, TaskRejected):
            self._predicted(str(event.model_id), "rejected")
        elif isinstance(event, TaskCompleted | TaskFailed):
            model = self._pending_models.pop(event.task_id, None)
            status = "completed" if isinstance(event, TaskCompleted) else "failed"
            # A task another process submitted after this one started: its model is not known.
            self._predicted("unknown" if model is None else str(model), status)
            if isinstance(event, TaskCompleted):
                self.items_predicted.inc(sum(o is not None for o in event.output_data))

    def _predicted(self, model: str, status: str) -> None:
        # As request_done does: the labelled child made once, not labels() a prediction.
        counter = self._prediction_children.get((model, status))
        if counter is None:
            counter = self._prediction_children[model, status] = self.predictions.labels(
                model, status)
        counter.inc()

    # -- read at each scrape ---------------------------------------------------------------

    async def refresh(self, app: web.Application) -> None:
        store = app[STORE]
        self.queue_depth.set(getattr(store, "queue_depth", 0))
        try:
            holds = await open_holds(store.read_db())
            self.open_holds.set(holds.holds)
            self.open_hold_credits.set(holds.held_credits)
        except StoreError:  # the database is down: the last values stay
            pass
        verifier = app.get(VERIFIER)
        if verifier is not None:
            health = verifier.health()
            self.verified_through.set(health["verified_through"])
            self.verifier_pass_position.set(health["pass_position"])
            self.ledger_damaged.set(0 if health["first_break"] is None else 1)
            self.verifier_last_full_pass.set(_timestamp(health["last_full_pass_at"]))


def _timestamp(iso: Any) -> float:
    try:
        return datetime.fromisoformat(str(iso)).timestamp() if iso else 0.0
    except ValueError:
        return 0.0


METRICS = web.AppKey("metrics", Metrics)
MAIN_APP = web.AppKey("main_app", web.Application)  # the metrics port's app serves this one


def route_name(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.name if resource is not None and resource.name else "unmatched"


@web.middleware
async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost: sees the status the error middleware chose."""
    started, status = time.perf_counter(), 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = 499  # the client went away (or the shutdown's grace ran out)
        raise
    finally:
        request.app[METRICS].request_done(route_name(request), request.method, status,
                                          time.perf_counter() - started)


class MeteredThrottle:
    """The login throttle, counting the failures it hears and the attempts it refuses."""

    def __init__(self, inner: Throttle, metrics: Metrics) -> None:
        self.inner, self.metrics = inner, metrics

    async def retry_after(self, username: str, client: str, device: str | None = None) -> int:
        wait = await self.inner.retry_after(username, client, device)
        if wait:
            self.metrics.login_throttled.inc()
        return wait

    async def failed(self, username: str, client: str, device: str | None = None) -> None:
        self.metrics.login_failures.inc()
        await self.inner.failed(username, client, device)

    async def succeeded(self, username: str, client: str, device: str | None = None) -> None:
        await self.inner.succeeded(username, client, device)


async def metrics_ctx(app: web.Application) -> AsyncIterator[None]:
    """After the store opened (and swept): the ledger's totals, then the commit observer."""
    store = app[STORE]
    db = store.read_db()
    metrics = app[METRICS]
    metrics.start_from(await ledger_totals(db), await pending_task_models(db))
    store.observer = metrics  # type: ignore[attr-defined]
    side = await _start_metrics_port(app)
    yield
    if side is not None:
        await side.cleanup()


async def _start_metrics_port(app: web.Application) -> web.AppRunner | None:
    config = app[CONFIG]
    if config.metrics_port is None:
        return None
    side_app = web.Application()
    side_app[MAIN_APP] = app
    side_app.router.add_get("/metrics", _side_scrape)
    runner = web.AppRunner(side_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, config.host, config.metrics_port).start()
    return runner


async def _side_scrape(request: web.Request) -> web.Response:
    return await _scrape(request.app[MAIN_APP], request)


def _authorized(app: web.Application, request: web.Request) -> bool:
    token = app[CONFIG].metrics_token
    if token is None:
        return True
    sent = request.headers.get("Authorization", "")
    return hmac.compare_digest(sent.encode(), f"Bearer {token}".encode())


async def _scrape(app: web.Application, request: web.Request) -> web.Response:
    if not _authorized(app, request):
        return web.Response(status=401, text="401: a metrics token is required\n",
                            headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    metrics = app[METRICS]
    await metrics.refresh(app)
    return web.Response(body=generate_latest(metrics.registry),
                        headers={"Content-Type": CONTENT_TYPE_LATEST,
                                 "Cache-Control": "no-store"})


async def metrics_page(request: web.Request) -> web.Response:
    """GET /metrics on the main port: only with a token; with a port of its own, not here."""
    if request.app[CONFIG].metrics_token is None:
        raise web.HTTPNotFound()
    return await _scrape(request.app, request)


async def ready(request: web.Request) -> web.Response:
    """Readiness: 200 when a write goes through the writer now; 503 when the store cannot
    take writes (closed, unreachable, locked for longer than the probe's timeout) or the log
    is damaged (writes answer 503 ledger_damaged)."""
    app = request.app
    problem = None
    if (verifier := app.get(VERIFIER)) is not None and verifier.broken is not None:
        problem = "ledger_damaged"
    else:
        try:
            await asyncio.wait_for(app[STORE].transact(_probe), READY_PROBE_TIMEOUT_S)
        except (StoreError, TimeoutError):
            problem = "store_unavailable"
    return web.json_response({"status": "ready" if problem is None else problem},
                             status=200 if problem is None else 503)


async def _probe(session: Any) -> None:
    await session.db.fetchone("SELECT 1 AS one")
