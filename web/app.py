"""The composition root: create_app wires the store, services, sessions, pages and API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp_session import setup as setup_sessions
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from events import StoreCorrupted, StoreError, StoreUnavailable
from events.instances import InstanceRegistry
from events.verify import verify_chain
from ledger import AccountNotFound, LedgerService, Passwords, UserService, ledger_store
from ml import MLModelManager, MLService, catalogue
from web import middlewares
from web.auth import csrf_token, page_user
from web.config import Config
from web.keys import CONFIG, LEDGER, ML, MODELS, OPENAPI, STORE, THROTTLE, USERS
from web.openapi import build_openapi
from web.routes import setup_routes
from web.throttle import LoginThrottle

HERE = Path(__file__).parent
log = logging.getLogger("ml_cabinet")


async def services_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open the store, recover from a crash, and close everything on the way out."""
    config = app[CONFIG]
    store = ledger_store(config.db_path, synchronous=config.synchronous)  # type: ignore[arg-type]
    await store.open()
    instances = InstanceRegistry(config.db_path)
    try:
        if config.verify_on_start:
            await check_log(store)
        ledger = LedgerService(store, owner=instances.register())
        passwords = Passwords.cheap() if config.cheap_password_hashing else Passwords()
        app[STORE], app[LEDGER] = store, ledger
        app[USERS] = UserService(ledger, passwords)
        executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="predict")
        app[ML] = MLService(ledger, app[MODELS], executor)
        try:
            await sweep_orphaned_holds(ledger, instances)
        except StoreUnavailable as error:  # a full or read-only disk: still serve reads
            log.warning("holds of interrupted tasks stay held until writes work: %s", error)
        sweeper = asyncio.create_task(sweep_forever(ledger, instances, app[ML]),
                                      name="hold-sweeper")
        yield
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        # A hung model must not hang the shutdown: its task is released at the next start.
        executor.shutdown(wait=False, cancel_futures=True)
    finally:
        await store.close()
        instances.unregister()


# Another process sharing the file may die at any time; its holds are released this often.
SWEEP_EVERY_S = 30.0


async def sweep_orphaned_holds(
    ledger: LedgerService, instances: InstanceRegistry, ml: MLService | None = None
) -> None:
    running = (lambda task_id: True) if ml is None else ml.running.__contains__
    released = await ledger.release_orphaned_holds(instances.is_alive, running)
    if released:
        log.warning("released %d holds of tasks interrupted by a crash", released)


async def sweep_forever(
    ledger: LedgerService, instances: InstanceRegistry, ml: MLService
) -> None:
    while True:
        await asyncio.sleep(SWEEP_EVERY_S)  # a timer, not a synchronisation
        try:
            await sweep_orphaned_holds(ledger, instances, ml)
        except StoreError as error:
            log.warning("hold sweep skipped: %s", error)
        except Exception:  # the sweeper must outlive any one bad sweep
            log.exception("hold sweep failed")


async def check_log(store: Any) -> None:
    """A damaged log is not served as truth: refuse to start and say where it breaks."""
    integrity = await store.read_db().fetchall("PRAGMA quick_check")
    if [next(iter(r.values())) for r in integrity] != ["ok"]:
        raise StoreCorrupted(f"the database file is damaged: {integrity[:3]}")
    report = await verify_chain(store.read_rows())
    if report.first_break is not None:
        raise StoreCorrupted(f"the event log is broken at position "
                             f"{report.first_break.position}: {report.first_break.reason}")


async def page_context(request: web.Request) -> dict[str, Any]:
    # aiohttp-jinja2 runs this for every request; only pages need a user and a CSRF token.
    if request.path.startswith(("/api/", "/static/", "/healthz")):
        return {}
    user_id = await page_user(request)
    user = None
    if user_id is not None:
        try:
            profile = await request.app[LEDGER].profile(user_id)
            user = {"id": user_id, "username": profile.username}
        except AccountNotFound:  # a session that outlived its account shows as signed out
            pass
    return {"current_user": user, "csrf_token": await csrf_token(request)}


def credits(amount: int | None) -> str:
    return "—" if amount is None else f"{amount:,}"


def when(iso: str | None) -> str:
    """'2026-11-26T19:52:09.257964+00:00' → '2026-11-26 19:52:09 UTC'."""
    if not iso:
        return "—"
    try:
        moment = datetime.fromisoformat(iso).astimezone(UTC)
    except ValueError:
        return iso
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def create_app(config: Config | None = None, models: MLModelManager | None = None
               ) -> web.Application:
    config = config or Config.from_env()
    app = web.Application(client_max_size=config.max_body_bytes,
                          middlewares=[middlewares.request_id, middlewares.errors])
    app[CONFIG] = config
    # The code models and every manifest in the models folder; a bad manifest raises
    # ManifestError here, before anything is served.
    app[MODELS] = models or MLModelManager(catalogue(config.models_dir))
    app[THROTTLE] = LoginThrottle()
    app[OPENAPI] = build_openapi()
    setup_sessions(app, EncryptedCookieStorage(
        config.session_key(), cookie_name="mlc_session", httponly=True, samesite="Lax",
        secure=config.secure_cookies, max_age=7 * 24 * 3600))
    env = aiohttp_jinja2.setup(
        app, loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
        context_processors=[aiohttp_jinja2.request_processor, page_context])
    env.filters["credits"] = credits
    env.filters["when"] = when
    app.on_response_prepare.append(middlewares.add_headers)
    app.cleanup_ctx.append(services_ctx)
    setup_routes(app, HERE / "static")
    return app
