"""API keys: named, scoped credentials for programs, separate from the password.

The secret (`mlc_` + 256 random bits) is shown once; only its SHA-256 is kept, in the
control-plane table `api_key_secrets`. What a key is (name, scope, masked form, limit, expiry,
revocation) are events in the account stream (KeyCreated, KeyRevoked), folded into the
`api_keys` projection, so the auditor sees them and a replay rebuilds them.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from events import Metadata, SqlDatabase, SqlSession
from ledger import queries, security_log
from ledger.account import MAX_BALANCE_CREDITS
from ledger.credentials import Credential, InvalidInput
from ledger.errors import LedgerError
from ledger.events import KeyCreated, KeyRevoked
from ledger.service import LedgerService, account_stream

KEY_PREFIX = "mlc_"
KEY_ID_RE = re.compile(r"key_[0-9a-f]{16}")
SCOPES = ("read", "predict")
MAX_NAME = 64
MAX_EXPIRES_IN_DAYS = 3650
# Bounds the rows one user can make; revoked and expired keys do not count.
MAX_LIVE_KEYS = 50
# last_used_at is kept to the minute: at most one write per key per minute, not one a request.
LAST_USED_RESOLUTION = timedelta(minutes=1)

KEYS_CONTROL_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_key_secrets (
    key_hash     TEXT    PRIMARY KEY,
    key_id       TEXT    NOT NULL UNIQUE,
    user_id      INTEGER NOT NULL,
    last_used_at TEXT
);
"""


class TooManyKeys(LedgerError):
    code = "too_many_keys"


class KeyNotFound(LedgerError):
    code = "key_not_found"


@dataclass(frozen=True, kw_only=True)
class KeyView:
    id: str
    name: str
    scope: str
    prefix: str
    last4: str
    monthly_limit_credits: int | None
    created_at: str
    expires_at: str | None
    revoked_at: str | None
    last_used_at: str | None


@dataclass(frozen=True, kw_only=True)
class IssuedKey:
    """A new key and its secret, which nothing will show again."""

    view: KeyView
    key: str = field(repr=False)


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def check_new_key(name: object, scope: object, expires_in_days: object,
                  monthly_limit_credits: object) -> str:
    """The cleaned name, or InvalidInput naming the field (the API's schema checks the same)."""
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME or any(
            not ch.isprintable() for ch in name):
        raise InvalidInput("name", f"1–{MAX_NAME} printable characters")
    if scope not in SCOPES:
        raise InvalidInput("scope", "'predict' or 'read'")
    if expires_in_days is not None and (type(expires_in_days) is not int or not (
            1 <= expires_in_days <= MAX_EXPIRES_IN_DAYS)):
        raise InvalidInput("expires_in_days", f"a whole number from 1 to {MAX_EXPIRES_IN_DAYS}")
    if monthly_limit_credits is not None and (type(monthly_limit_credits) is not int or not (
            0 <= monthly_limit_credits <= MAX_BALANCE_CREDITS)):
        raise InvalidInput("monthly_limit_credits",
                           f"a whole number from 0 to {MAX_BALANCE_CREDITS}")
    return name.strip()


def _view(row: dict[str, object]) -> KeyView:
    limit = row["monthly_limit_credits"]
    return KeyView(
        id=str(row["id"]), name=str(row["name"]), scope=str(row["scope"]),
        prefix=str(row["prefix"]), last4=str(row["last4"]),
        monthly_limit_credits=None if limit is None else int(str(limit)),
        created_at=str(row["created_at"]),
        expires_at=None if row["expires_at"] is None else str(row["expires_at"]),
        revoked_at=None if row["revoked_at"] is None else str(row["revoked_at"]),
        last_used_at=None if row.get("last_used_at") is None else str(row["last_used_at"]))


_SELECT = ("SELECT k.*, s.last_used_at FROM api_keys k "
           "LEFT JOIN api_key_secrets s ON s.key_id = k.id ")


class KeyService:
    """Create, list, revoke and authenticate API keys; each write is one transaction."""

    def __init__(self, ledger: LedgerService) -> None:
        self.ledger = ledger

    def _now(self) -> datetime:
        return self.ledger.store.clock()

    async def create(self, user_id: int, *, name: str, scope: str,
                     expires_in_days: int | None = None,
                     monthly_limit_credits: int | None = None,
                     client: str = "unknown") -> IssuedKey:
        name = check_new_key(name, scope, expires_in_days, monthly_limit_credits)
        secret = KEY_PREFIX + secrets.token_urlsafe(32)  # 32 bytes: 256 bits
        key_id = "key_" + secrets.token_hex(8)
        now = self._now()
        expires_at = None if expires_in_days is None else (
            now + timedelta(days=expires_in_days)).isoformat(timespec="seconds")
        created = KeyCreated(user_id=user_id, key_id=key_id, name=name, scope=scope,
                             prefix=secret[:8], last4=secret[-4:],
                             monthly_limit_credits=monthly_limit_credits, expires_at=expires_at)

        async def work(s: SqlSession) -> KeyView:
            live = await s.db.fetchone(
                "SELECT COUNT(*) AS n FROM api_keys WHERE user_id = ? AND revoked_at IS NULL "
                "AND (expires_at IS NULL OR expires_at > ?)",
                (user_id, now.isoformat(timespec="seconds")))
            if live is not None and int(live["n"]) >= MAX_LIVE_KEYS:
                raise TooManyKeys(f"at most {MAX_LIVE_KEYS} live keys; revoke one first")
            account = await queries.load_account(s.db, user_id)
            await s.append(account_stream(user_id), account.version, [created],
                           Metadata(actor=f"user:{user_id}"))
            await s.db.execute("INSERT INTO api_key_secrets VALUES (?, ?, ?, NULL)",
                               (key_digest(secret), key_id, user_id))
            await security_log.record(s.db, user_id=user_id, kind="key_created", client=client,
                                      detail=f"{key_id} {name!r} ({scope})", at=now)
            return await self._get(s.db, user_id, key_id)

        return IssuedKey(view=await self.ledger.store.transact(work), key=secret)

    async def revoke(self, user_id: int, key_id: str, client: str = "unknown") -> KeyView:
        """Another user's key is reported as absent, like one that does not exist."""
        async def work(s: SqlSession) -> KeyView:
            found = await self._find(s.db, user_id, key_id)
            if found is None:
                raise KeyNotFound(f"there is no key {key_id[:40]}")
            if found.revoked_at is not None:
                return found  # revoking twice changes nothing and writes nothing
            account = await queries.load_account(s.db, user_id)
            await s.append(account_stream(user_id), account.version,
                           [KeyRevoked(user_id=user_id, key_id=key_id, reason="revoked")],
                           Metadata(actor=f"user:{user_id}"))
            await security_log.record(s.db, user_id=user_id, kind="key_revoked", client=client,
                                      detail=f"{key_id} {found.name!r}", at=self._now())
            return await self._get(s.db, user_id, key_id)

        return await self.ledger.transact_credentials(work)

    async def list(self, user_id: int) -> list[KeyView]:
        """Newest first, revoked ones included (they say so)."""
        rows = await self.ledger.store.read_db().fetchall(
            _SELECT + "WHERE k.user_id = ? ORDER BY k.position DESC", (user_id,))
        return [_view(r) for r in rows]

    async def find(self, user_id: int, key_id: str) -> KeyView | None:
        return await self._find(self.ledger.store.read_db(), user_id, key_id)

    @staticmethod
    async def _find(db: SqlDatabase, user_id: int, key_id: str) -> KeyView | None:
        if not KEY_ID_RE.fullmatch(key_id):
            return None
        row = await db.fetchone(_SELECT + "WHERE k.id = ? AND k.user_id = ?", (key_id, user_id))
        return None if row is None else _view(row)

    async def _get(self, db: SqlDatabase, user_id: int, key_id: str) -> KeyView:
        found = await self._find(db, user_id, key_id)
        assert found is not None, f"key {key_id} was just written"
        return found

    async def credential_for(self, key: str) -> Credential | None:
        """The key's credential, or None when it is unknown, revoked or expired. From this
        process's cache when no credential changed anywhere since it was read (a revocation
        bumps the shared generation: ledger/credential_cache.py), else from the database."""
        if not key.startswith(KEY_PREFIX):
            return None
        digest, now = key_digest(key), self._now()
        cache = self.ledger.credentials
        if (hit := cache.get("key", digest, now)) is not None:
            if await self._touch(digest, hit.last_used_at, now):
                cache.used("key", digest, _minute(now))
            return hit.credential
        word = cache.word()  # before the read: a revocation after it changes the word
        row = await self.ledger.store.read_db().fetchone(
            "SELECT k.id, k.user_id, k.scope, k.monthly_limit_credits, k.expires_at, "
            "s.last_used_at FROM api_key_secrets s JOIN api_keys k ON k.id = s.key_id "
            "WHERE s.key_hash = ? AND k.revoked_at IS NULL", (digest,))
        expires_at = None if row is None or row["expires_at"] is None else (
            datetime.fromisoformat(row["expires_at"]))
        if row is None or (expires_at is not None and expires_at <= now):
            return None
        touched = await self._touch(digest, row["last_used_at"], now)
        limit = row["monthly_limit_credits"]
        credential = Credential(user_id=int(row["user_id"]), kind="key", key_id=str(row["id"]),
                                scope=str(row["scope"]),
                                monthly_limit_credits=None if limit is None else int(limit))
        cache.put("key", digest, credential, expires_at=expires_at, word=word,
                  last_used_at=_minute(now) if touched else row["last_used_at"])
        return credential

    async def _touch(self, digest: str, last_used_at: str | None, now: datetime) -> bool:
        """Write the key's last-use minute unless it is written already; whether it wrote."""
        minute = _minute(now)
        if last_used_at is not None and last_used_at >= minute:
            return False

        async def work(s: SqlSession) -> None:
            # The WHERE makes processes touching one key in the same minute write once.
            await s.db.execute("UPDATE api_key_secrets SET last_used_at = ? WHERE key_hash = ? "
                               "AND (last_used_at IS NULL OR last_used_at < ?)",
                               (minute, digest, minute))

        await self.ledger.store.transact(work)
        return True


def _minute(now: datetime) -> str:
    return now.replace(second=0, microsecond=0).isoformat(timespec="minutes")
