"""The cookie storage whose key comes from the database, for processes on PostgreSQL.

Every process must encrypt cookies with one key, or a user logged in through one process is a
stranger to the next. On SQLite the key is a file beside the database (Config.session_key);
on PostgreSQL it is a shared secret read when the store opens, after the app is built.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp_session import AbstractStorage, Session
from aiohttp_session.cookie_storage import EncryptedCookieStorage


class SharedKeyCookieStorage(AbstractStorage):
    """EncryptedCookieStorage, once `use_key` has given it the key."""

    def __init__(self, **cookie: Any) -> None:
        super().__init__(**cookie)
        self._cookie = cookie
        self._inner: EncryptedCookieStorage | None = None

    def use_key(self, key: bytes) -> None:
        self._inner = EncryptedCookieStorage(key, **self._cookie)

    def _storage(self) -> EncryptedCookieStorage:
        if self._inner is None:  # only before start-up finished: no request gets here
            raise RuntimeError("the session key has not been read from the database yet")
        return self._inner

    async def load_session(self, request: web.Request) -> Session:
        return await self._storage().load_session(request)

    async def save_session(
        self, request: web.Request, response: web.StreamResponse, session: Session
    ) -> None:
        await self._storage().save_session(request, response, session)
