"""People: registration, login, tokens, and the seed's User, Transaction and UserService.

Password hashes are argon2id, computed in a worker thread so the event loop never stalls.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import argon2

from events import SqlDatabase, SqlSession
from ledger import admin_queries, control, queries, security_log
from ledger.credentials import Credential, InvalidInput
from ledger.errors import (
    AccountNotFound,
    InsufficientCredits,
    InvalidCredentials,
    SuspendedAccount,
)
from ledger.service import LedgerService
from ledger.usernames import normalize_username
from ledger.views import (
    BalanceView,
    IssuedToken,
    Page,
    RegisteredUser,
    TopUpOutcome,
    TransactionView,
)

MIN_PASSWORD, MAX_PASSWORD = 8, 256


def check_password(password: str) -> None:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput("password", f"{MIN_PASSWORD}–{MAX_PASSWORD} characters")
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("password", "a password is text; it cannot hold lone surrogates"
                           ) from None


class Passwords:
    """argon2id hashing off the event loop, with a dummy hash so unknown users cost the same."""

    # Each hash takes 64 MiB by default: two at a time bound the memory a flood of sign-ups
    # or logins can take, whatever the machine's core count.
    WORKERS = 2

    def __init__(self, hasher: argon2.PasswordHasher | None = None) -> None:
        self.hasher = hasher or argon2.PasswordHasher()
        self._pool = ThreadPoolExecutor(self.WORKERS, thread_name_prefix="argon2")
        # Made on a pool thread (argon2 lets go of the GIL): ~0.2 s that start-up need not
        # wait for. The first login of an unknown user waits for it, as any login waits.
        self._dummy_hash = self._pool.submit(self.hasher.hash, secrets.token_urlsafe(16))

    @classmethod
    def cheap(cls) -> Passwords:
        """Fast parameters for tests only."""
        return cls(argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))

    async def hash(self, password: str) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        def run() -> bool:
            try:
                return self.hasher.verify(stored_hash or self._dummy_hash.result(), password)
            except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError,
                    UnicodeEncodeError):
                return False

        ok = await asyncio.get_running_loop().run_in_executor(self._pool, run)
        return ok and stored_hash is not None

    def needs_rehash(self, stored_hash: str) -> bool:
        return self.hasher.check_needs_rehash(stored_hash)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class UserService:
    """The seed's UserService: register, login, add_balance, get_user_balance, and tokens."""

    def __init__(
        self, ledger: LedgerService, passwords: Passwords, *,
        api_token_ttl: timedelta = timedelta(hours=24),
        session_ttl: timedelta = timedelta(days=7),
    ) -> None:
        self.ledger = ledger
        self.passwords = passwords
        self.ttl = {"api": api_token_ttl, "session": session_ttl}

    @property
    def _db(self) -> SqlDatabase:
        return self.ledger.store.read_db()

    async def register(self, username: str, password: str) -> RegisteredUser:
        username = normalize_username(username)  # the spelling kept; found by username_key
        check_password(password)
        return await self.ledger.open_account(username, await self.passwords.hash(password))

    async def authenticate(self, username: str, password: str) -> int:
        """The user id, or InvalidCredentials, the same for an unknown user and a bad password."""
        user_id = await queries.find_user_id(self._db, username) if isinstance(
            username, str) else None
        stored = None if user_id is None else await control.password_hash_of(self._db, user_id)
        # Verified first, always: an unknown user costs one argon2 run, like a wrong password.
        verified = await self.passwords.verify(stored, password)
        if user_id is None or not verified:
            raise InvalidCredentials("wrong username or password")
        assert stored is not None
        if (await admin_queries.flags_of(self._db, user_id))[1]:  # told only to the owner
            raise SuspendedAccount("this account is suspended by an operator")
        if self.passwords.needs_rehash(stored):
            await self._store_hash(user_id, await self.passwords.hash(password))
        return user_id

    async def _store_hash(self, user_id: int, password_hash: str) -> None:
        async def work(s: SqlSession) -> None:
            await control.set_password_hash(s.db, user_id, password_hash,
                                            self.ledger.store.clock().isoformat())

        await self.ledger.store.transact(work)

    async def login(self, username: str, password: str, kind: str = "api",
                    client: str | None = None) -> IssuedToken:
        return await self.issue_token(await self.authenticate(username, password), kind,
                                      client)

    async def issue_token(self, user_id: int, kind: str, client: str | None = None
                          ) -> IssuedToken:
        """A new login token; with `client`, the sign-in goes into the security log too."""
        token = secrets.token_urlsafe(32)
        now = self.ledger.store.clock()
        expires_at = now + self.ttl[kind]

        async def work(s: SqlSession) -> None:
            await control.add_token(s.db, token_digest(token), user_id, kind, now.isoformat(),
                                    expires_at.isoformat())
            if client is not None:
                await security_log.record(s.db, user_id=user_id, kind="login", client=client,
                                          at=now, detail="page" if kind == "session" else "api")

        await self.ledger.store.transact(work)
        return IssuedToken(user_id=user_id, access_token=token, token_type="bearer",
                           expires_at=expires_at.isoformat(timespec="seconds"))

    async def user_for_token(self, token: str, kind: str = "api") -> int | None:
        credential = await self.credential_for_token(token, kind)
        return None if credential is None else credential.user_id

    async def credential_for_token(self, token: str, kind: str = "api") -> Credential | None:
        """The token's credential, or None when it is unknown, revoked or expired. From this
        process's cache when no credential changed anywhere since it was read (see
        ledger/credential_cache.py), else from the database."""
        digest, now = token_digest(token), self.ledger.store.clock()
        cache = self.ledger.credentials
        if (hit := cache.get(kind, digest, now)) is not None:
            return hit.credential
        word = cache.word()  # before the read: a revocation after it changes the word
        row = await control.find_token(self._db, digest, kind)
        if row is None:
            return None
        expires_at = datetime.fromisoformat(row["expires_at"])
        if expires_at <= now:
            return None
        credential = Credential(user_id=int(row["user_id"]),
                                kind="token" if kind == "api" else "session",
                                token_digest=digest)
        cache.put(kind, digest, credential, expires_at=expires_at, word=word)
        return credential

    async def change_password(self, credential: Credential, current_password: str,
                              new_password: str, client: str) -> int:
        """Set a new password and revoke every other login session and token (API keys stay:
        they are separate credentials); the number revoked. A wrong current password is
        InvalidCredentials and changes nothing."""
        if not isinstance(current_password, str) or len(current_password) > MAX_PASSWORD:
            raise InvalidInput("current_password", "the password you sign in with")
        check_password(new_password)
        stored = await control.password_hash_of(self._db, credential.user_id)
        if not await self.passwords.verify(stored, current_password):
            raise InvalidInput("current_password", "this is not your current password")
        new_hash = await self.passwords.hash(new_password)

        async def work(s: SqlSession) -> int:
            now = self.ledger.store.clock()
            await control.set_password_hash(s.db, credential.user_id, new_hash, now.isoformat())
            revoked = await control.revoke_user_tokens(s.db, credential.user_id,
                                                       now.isoformat(), credential.token_digest)
            await security_log.record(s.db, user_id=credential.user_id, client=client, at=now,
                                      kind="password_changed",
                                      detail=f"{revoked} other sessions and tokens ended")
            return revoked

        return await self.ledger.transact_credentials(work)

    async def logout_all(self, user_id: int, client: str) -> int:
        """End every login session and token of the user, this one too; API keys stay."""
        async def work(s: SqlSession) -> int:
            now = self.ledger.store.clock()
            revoked = await control.revoke_user_tokens(s.db, user_id, now.isoformat(), None)
            await security_log.record(s.db, user_id=user_id, kind="logout_all", client=client,
                                      at=now, detail=f"{revoked} sessions and tokens ended")
            return revoked

        return await self.ledger.transact_credentials(work)

    async def security_events(self, user_id: int, *, limit: int = 20,
                              starting_after: int | None = None
                              ) -> Page[security_log.SecurityEvent]:
        return await security_log.page(self._db, user_id, limit=limit,
                                       starting_after=starting_after)

    async def logout(self, token: str) -> None:
        async def work(s: SqlSession) -> None:
            await control.revoke_token(s.db, token_digest(token),
                                       self.ledger.store.clock().isoformat())

        await self.ledger.transact_credentials(work)

    async def add_balance(
        self, user_id: int, amount: int, operation_id: str | None = None
    ) -> TopUpOutcome:
        return await self.ledger.top_up(user_id, amount, operation_id)

    async def get_user_balance(self, user_id: int) -> BalanceView:
        return await self.ledger.get_balance(user_id)

    async def get_user(self, user_id: int) -> User:
        try:
            profile = await self.ledger.profile(user_id)
        except AccountNotFound:
            raise InvalidCredentials("no such user") from None
        return User(id=user_id, username=profile.username,
                    balance=profile.balance.balance_credits, created_at=profile.created_at,
                    users=self)


@dataclass(kw_only=True)
class User:
    """The seed's User. Its balance is a snapshot; every change goes through an event."""

    id: int
    username: str
    balance: int
    created_at: str = ""
    users: UserService = field(repr=False, compare=False)

    @classmethod
    async def create(cls, users: UserService, username: str, password: str) -> User:
        opened = await users.register(username, password)
        return await users.get_user(opened.id)

    @classmethod
    async def get(cls, users: UserService, username: str, password: str) -> User | None:
        try:
            return await users.get_user(await users.authenticate(username, password))
        except InvalidCredentials:
            return None

    async def check_password(self, password: str) -> bool:
        try:
            return await self.users.authenticate(self.username, password) == self.id
        except InvalidCredentials:
            return False

    async def add_balance(self, amount: int) -> None:
        outcome = await self.users.add_balance(self.id, amount)
        self.balance = outcome.balance.balance_credits

    async def subtract_balance(self, amount: int) -> bool:
        try:
            outcome = await self.users.ledger.withdraw(self.id, amount, "Charge")
        except InsufficientCredits:
            return False
        self.balance = outcome.balance.balance_credits
        return True


@dataclass(frozen=True, kw_only=True)
class Transaction:
    """The seed's Transaction: one credit movement, read from the transactions projection."""

    id: int
    user_id: int
    amount: int
    timestamp: str
    description: str
    kind: str
    balance_after: int
    task_id: int | None

    @classmethod
    async def create(
        cls, ledger: LedgerService, user_id: int, amount: int, description: str
    ) -> Transaction:
        """A positive amount is a top-up, a negative one a direct charge; both are events."""
        if amount >= 0:
            outcome = await ledger.top_up(user_id, amount, description=description)
        else:
            outcome = await ledger.withdraw(user_id, -amount, description)
        return cls._from_view(user_id, outcome.transaction)

    @classmethod
    async def get_user_transactions(cls, ledger: LedgerService, user_id: int
                                    ) -> list[Transaction]:
        """Newest first. Reads go through the ledger: no caller holds a connection."""
        views = await ledger.all_transactions(user_id)
        return [cls._from_view(user_id, view) for view in views]

    @classmethod
    def _from_view(cls, user_id: int, view: TransactionView) -> Transaction:
        return cls(id=view.id, user_id=user_id, amount=view.amount_credits,
                   timestamp=view.created_at, description=view.description,
                   kind=view.kind, balance_after=view.balance_after_credits,
                   task_id=view.task_id)


__all__ = ["Passwords", "Transaction", "User", "UserService"]
