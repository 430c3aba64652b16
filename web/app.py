"""The composition root: create_app wires the store, services, sessions, pages and API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp_session import AbstractStorage
from aiohttp_session import setup as setup_sessions
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from events import SqlEventStore, StoreCorrupted, StoreError, StoreUnavailable
from events.generation import Generation
from events.leases import FileLiveness, LeaseLiveness, Liveness
from ledger import (
    AccountNotFound,
    KeyService,
    LedgerService,
    Passwords,
    UserService,
    ledger_store_at,
)
from ledger.admin import AdminService
from ledger.errors import UnknownHold
from ledger.queries import open_holds
from ledger.shared import LoginAttempts, shared_secret
from ledger.verifier import LogVerifier, StartupCheck, check_at_start, load_state
from ml import MLModelManager, MLService, catalogue
from ml.manifest import LazyOnnx
from web import i18n, lean, metrics, middlewares
from web.auth import account_flags, csrf_token, page_user
from web.config import Config
from web.devices import DeviceCookies
from web.keys import (
    ADMIN,
    API_KEYS,
    CONFIG,
    DEVICES,
    LEDGER,
    LIVENESS,
    ML,
    MODELS,
    PUBLIC_IDS,
    SESSIONS,
    STORE,
    THROTTLE,
    USERS,
    VERIFIER,
)
from web.public_ids import PublicIds
from web.routes import setup_routes
from web.sealing import sealing_ctx
from web.sessions import SharedKeyCookieStorage
from web.throttle import LoginThrottle
from web.throttle_db import SharedLoginThrottle

HERE = Path(__file__).parent
log = logging.getLogger("ml_cabinet")
# The ONNX sessions opening in the background; web/server.py stops the service (exit 4) if
# one cannot open, as a bad manifest stops the start.
MODELS_OPENING = web.AppKey("models_opening", asyncio.Task)


async def services_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open the store, recover from a crash, and close everything on the way out."""
    config = app[CONFIG]
    store = ledger_store_at(config.store_at,
                            synchronous=config.synchronous)  # type: ignore[arg-type]
    await store.open()
    liveness = liveness_for(config, store)
    generation: Generation | None = None
    try:
        if config.verify_on_start:
            await check_log(store)
        if SESSIONS in app:  # PostgreSQL: one cookie key for every process, in the database
            key = await shared_secret(store.read_db(), "session_key")
            app[SESSIONS].use_key(key)
            app[DEVICES].use_key(key)
            app[PUBLIC_IDS].use_key(key)
        ledger = LedgerService(store, owner=liveness.owner)
        if (generation := ledger.generation) is not None:
            # PostgreSQL: the credential cache's LISTENer, before the lease it vouches
            # beside (a lease without a watcher row stops the others' caches a beat).
            await generation.start()
        owner = await liveness.start()
        assert owner == ledger.owner
        passwords = Passwords.cheap() if config.cheap_password_hashing else Passwords()
        app[STORE], app[LEDGER], app[LIVENESS] = store, ledger, liveness
        app[USERS] = UserService(ledger, passwords)
        app[API_KEYS] = KeyService(ledger)
        app[ADMIN] = AdminService(ledger)
        executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="predict")
        app[ML] = MLService(ledger, app[MODELS], executor,
                            one_transaction=config.one_transaction)
        try:
            await sweep_orphaned_holds(ledger, liveness, stale_after_s=config.stale_hold_s)
        except StoreUnavailable as error:  # a full or read-only disk: still serve reads
            log.warning("holds of interrupted tasks stay held until writes work: %s", error)
        sweeper = asyncio.create_task(sweep_forever(ledger, liveness, app[ML], config),
                                      name="hold-sweeper")
        verifier = app[VERIFIER] = LogVerifier(store, config.verify_rate, owner=owner)
        await verifier.load()
        tasks = [sweeper]
        if config.verify_rate > 0:
            tasks.append(asyncio.create_task(verifier.run_forever(), name="log-verifier"))
        yield
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # A hung model must not hang the shutdown: its task is released at the next start.
        executor.shutdown(wait=False, cancel_futures=True)
        await release_own_holds(ledger)
    finally:
        await liveness.stop()  # before the store closes: a lease is given up through it
        if generation is not None:  # after the lease: a lease without a watcher row stops
            await generation.stop()  # the others' caches (events/pg_generation.py)
        await store.close()


async def models_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open the ONNX sessions off the event loop while the app serves: /healthz and the
    code models answer at once, a prediction of an ONNX model waits for its session."""
    manager = app[MODELS]
    lazy = [model for spec in manager.specs()
            if isinstance(model := manager.get_runtime(spec.id), LazyOnnx)]

    async def open_all() -> None:
        for model in lazy:
            await asyncio.to_thread(model.open)
        if lazy:
            log.info("models opened: %s", ", ".join(m.manifest.name for m in lazy))
        # The catalogs too, so that the first Russian page does not compile them (~50 ms).
        for lang in i18n.LANGUAGES:
            try:
                await asyncio.to_thread(i18n.translations, lang)
            except i18n.CatalogError as error:  # the pages in it say so, as before
                log.error("the %s catalog cannot be loaded: %s", lang, error)

    opening = app[MODELS_OPENING] = asyncio.create_task(open_all(), name="models-opening")
    yield
    opening.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):  # reported by serve()
        await opening


async def release_own_holds(ledger: LedgerService) -> None:
    """A clean stop leaves nothing for the next start's sweep: the requests in flight had
    the grace period to settle; the holds of those cut off are released now, as events."""
    released = 0
    try:
        for row in await open_holds(ledger.store.read_db()):
            if row["owner"] != ledger.owner:
                continue
            with contextlib.suppress(UnknownHold):  # settled by a write still in the queue
                await ledger.fail_task(row["user_id"], row["task_id"],
                                       "stopped: the service shut down while it ran")
                released += 1
    except Exception as error:  # the rest of the stop (lease, store) must still run
        log.warning("holds of this process stay for the next start's sweep: %s", error)
    if released:
        log.warning("released %d holds of predictions cut off by the shutdown", released)


def liveness_for(config: Config, store: SqlEventStore) -> Liveness:
    """File locks beside a SQLite file; leases in the database on PostgreSQL, where the
    processes may run on other machines."""
    if config.database_url:
        return LeaseLiveness(store.read_db, lease_s=config.lease_s)
    return FileLiveness(config.db_path)


async def sweep_orphaned_holds(
    ledger: LedgerService, liveness: Liveness, ml: MLService | None = None,
    stale_after_s: float = 120.0,
) -> None:
    running = (lambda task_id: True) if ml is None else ml.running.__contains__
    released = await ledger.release_orphaned_holds(
        liveness.is_alive, running, stale_after=timedelta(seconds=stale_after_s))
    if released:
        log.warning("released %d holds of tasks interrupted by a crash", released)


async def sweep_forever(
    ledger: LedgerService, liveness: Liveness, ml: MLService, config: Config
) -> None:
    """Another process sharing the database may die at any time; its holds go this often."""
    while True:
        await asyncio.sleep(config.sweep_s)  # a timer, not a synchronisation
        try:
            await sweep_orphaned_holds(ledger, liveness, ml, config.stale_hold_s)
            if isinstance(liveness, LeaseLiveness):
                await liveness.forget_the_long_dead()
        except StoreError as error:
            log.warning("hold sweep skipped: %s", error)
        except Exception:  # the sweeper must outlive any one bad sweep
            log.exception("hold sweep failed")


async def check_log(store: SqlEventStore) -> StartupCheck:
    """A damaged log is not served as truth: refuse to start and say where it breaks.

    Bounded: the file's structure where that is cheap, the verified mark, and the tail since
    it (ledger/verifier.py); the history before the mark is re-walked in the background."""
    # A log verified before gets the bounded structural check; a first start reads it all.
    verified_before = (await load_state(store.read_db())).mark_position > 0
    if (problem := await store.integrity_problem(bounded=verified_before)) is not None:
        raise StoreCorrupted(problem)
    checked = await check_at_start(store)
    if checked.first_break is not None:
        raise StoreCorrupted(f"the event log is broken at position "
                             f"{checked.first_break.position}: {checked.first_break.reason}")
    return checked


async def page_context(request: web.Request) -> dict[str, Any]:
    # aiohttp-jinja2 runs this for every request; only pages need a user and a CSRF token.
    if request.path.startswith(("/api/", "/static/", "/healthz", "/readyz", "/metrics")):
        return {"lang": i18n.request_language(request)}
    user_id = await page_user(request)
    user = None
    if user_id is not None:
        try:
            profile = await request.app[LEDGER].profile(user_id)
            is_operator, _ = await account_flags(request, user_id)
            user = {"id": user_id, "username": profile.username, "is_operator": is_operator}
        except AccountNotFound:  # a session that outlived its account shows as signed out
            pass
    return {"current_user": user, "csrf_token": await csrf_token(request),
            "lang": i18n.request_language(request)}


def create_app(config: Config | None = None, models: MLModelManager | None = None
               ) -> web.Application:
    config = config or Config.from_env()
    app = web.Application(client_max_size=config.max_body_bytes,
                          middlewares=[lean.lean_api,  # the hot API routes: a short chain
                                       metrics.count_requests, middlewares.request_id,
                                       middlewares.compress_static,
                                       i18n.language, middlewares.errors,
                                       middlewares.read_only_when_damaged])
    app[CONFIG] = config
    app[metrics.METRICS] = metrics.Metrics()
    # The code models and every manifest in the models folder; a bad manifest raises
    # ManifestError here, before anything is served.
    app[MODELS] = models or MLModelManager(catalogue(config.models_dir, lazy=True))
    # One process counts login failures in memory; many count them in the database.
    app[THROTTLE] = metrics.MeteredThrottle(
        SharedLoginThrottle(LoginAttempts(lambda: app[STORE].read_db()))
        if config.database_url else LoginThrottle(share=config.login_share),
        app[metrics.METRICS])
    cookie: dict[str, Any] = {"cookie_name": "mlc_session", "httponly": True,
                              "samesite": "Lax", "secure": config.secure_cookies,
                              "max_age": 7 * 24 * 3600}
    if config.database_url:  # the key is read from the database when the store opens
        shared = app[SESSIONS] = SharedKeyCookieStorage(**cookie)
        storage: AbstractStorage = shared
        app[DEVICES] = DeviceCookies()
        app[PUBLIC_IDS] = PublicIds()
    else:
        session_key = config.session_key()
        storage = EncryptedCookieStorage(session_key, **cookie)
        app[DEVICES] = DeviceCookies(session_key)
        app[PUBLIC_IDS] = PublicIds(session_key)
    setup_sessions(app, storage)
    env = aiohttp_jinja2.setup(
        app, loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
        context_processors=[aiohttp_jinja2.request_processor, page_context])
    i18n.install(env)  # _(), ngettext() and the locale-aware credits/when filters
    app.on_response_prepare.append(middlewares.add_headers)
    app.cleanup_ctx.append(services_ctx)
    app.cleanup_ctx.append(metrics.metrics_ctx)  # after the store opens, before it closes
    app.cleanup_ctx.append(sealing_ctx)  # signed checkpoints (web/sealing.py)
    app.cleanup_ctx.append(models_ctx)  # after services_ctx loaded the models
    setup_routes(app, HERE / "static")
    return app
