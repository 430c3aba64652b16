"""Typed application keys: the app's resources, set up in cleanup contexts."""

from __future__ import annotations

import asyncio

from aiohttp import web

from events import SqlEventStore
from events.leases import Liveness
from ledger import Credential, KeyService, LedgerService, UserService
from ledger.admin import AdminService
from ledger.checkpoints import Checkpointer
from ledger.verifier import LogVerifier
from ml import MLModelManager, MLService
from web.config import Config
from web.devices import DeviceCookies
from web.public_ids import PublicIds
from web.sessions import SharedKeyCookieStorage
from web.throttle import Throttle

CONFIG = web.AppKey("config", Config)
STORE = web.AppKey[SqlEventStore]("store")
LEDGER = web.AppKey("ledger", LedgerService)
USERS = web.AppKey("users", UserService)
MODELS = web.AppKey("models", MLModelManager)
ML = web.AppKey("ml", MLService)
THROTTLE = web.AppKey[Throttle]("throttle")
OPENAPI = web.AppKey("openapi", dict)
LIVENESS = web.AppKey[Liveness]("liveness")
CHECKPOINTS = web.AppKey("checkpoints", Checkpointer)
# The first pass of the sealer: an old log's Merkle nodes built (web/sealing.py).
NODES_BUILT = web.AppKey("nodes_built", asyncio.Event)
API_KEYS = web.AppKey("api_keys", KeyService)
DEVICES = web.AppKey("devices", DeviceCookies)  # device cookies for the login throttle
# Opaque task and transaction ids (tsk_..., txn_...), keyed from the cookie key.
PUBLIC_IDS = web.AppKey("public_ids", PublicIds)
# The background re-walk of the chain; a break it finds stops writes (web/middlewares.py).
VERIFIER = web.AppKey("verifier", LogVerifier)
# Only on PostgreSQL: the cookie storage that gets its key from the database at start-up.
SESSIONS = web.AppKey("sessions", SharedKeyCookieStorage)

# Per-request values set by the middlewares.
REQUEST_ID = web.RequestKey("request_id", str)
USER_ID = web.RequestKey[int | None]("user_id")
# What authenticated an API request (a login token or an API key, its scope, id and limit).
CREDENTIAL = web.RequestKey("credential", Credential)
# The operator console's use cases (ledger/admin.py); the role is checked on every request.
ADMIN = web.AppKey("admin", AdminService)
# (user id, is_operator, suspended) of the request's user, read once per request.
ACCOUNT_FLAGS = web.RequestKey("account_flags", tuple)
