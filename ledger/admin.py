"""AdminService: the operator console's use cases. Each write is one transaction that reads
the account, decides and appends, like the charges, so no interleaving of requests or
processes can take an account's available balance below zero or suspend it twice.

The operator role itself is granted and revoked only from the command line
(`python -m ledger admin grant USERNAME`), never through the API."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from events import Event, Metadata, SqlSession
from ledger import account as decide
from ledger import admin_queries, queries
from ledger.account import Account
from ledger.admin_queries import AdminUser, LedgerTotals, OperatorAction
from ledger.control import Operation, record_operation, replay_operation
from ledger.credential_cache import TTL_S, put_newest
from ledger.errors import AccountNotFound, NotAnOperator
from ledger.events import OperatorRoleGranted, OperatorRoleRevoked
from ledger.service import LedgerService, account_stream
from ledger.views import (
    Page,
    TaskView,
    TopUpOutcome,
    TransactionView,
    stored_top_up,
    top_up_from_stored,
)


@dataclass(frozen=True, kw_only=True)
class UserHistory:
    user: AdminUser
    transactions: Page[TransactionView]
    tasks: Page[TaskView]
    actions: Page[OperatorAction]


class AdminService:
    def __init__(self, ledger: LedgerService) -> None:
        self.ledger = ledger
        # user id -> (generation word, flags, read at): the flags are checked on every
        # request, so they ride on the credential cache's generation word (every suspend,
        # resume, grant and revoke bumps it), costing no database trip until one changes.
        self._flags: OrderedDict[int, tuple[bytes, tuple[bool, bool], float]] = OrderedDict()
        self.store = ledger.store

    def _now(self) -> str:
        return self.store.clock().isoformat(timespec="microseconds")

    async def adjust(self, operator_id: int, user_id: int, amount_credits: int, reason: str,
                     operation_id: str | None = None) -> TopUpOutcome:
        """Credit (positive) or debit (negative) an account with a reason. A repeated
        operation id (the operator's Idempotency-Key) returns the first outcome unchanged."""
        op = Operation(user_id=operator_id, operation_id=operation_id or uuid.uuid4().hex,
                       kind="adjustment",
                       fingerprint=f"user={user_id} amount={amount_credits!r} "
                                   f"reason={reason!r}")

        async def work(s: SqlSession) -> TopUpOutcome:
            if (stored := await replay_operation(s.db, op)) is not None:
                return top_up_from_stored(stored)
            account = await queries.load_account(s.db, user_id)
            new = decide.adjust(account, amount_credits, reason, operator_id)
            recorded = await s.append(account_stream(user_id), account.version, new,
                                      Metadata(operation_id=op.operation_id,
                                               actor=f"operator:{operator_id}"))
            outcome = TopUpOutcome(
                transaction=await queries.get_transaction(s.db, user_id, recorded[-1].position),
                balance=await queries.get_balance(s.db, user_id))
            await record_operation(s.db, op, created_at=self._now(),
                                   outcome=stored_top_up(outcome))
            return outcome

        return await self.store.transact(work)

    async def suspend(self, operator_id: int, user_id: int, reason: str) -> AdminUser:
        """Stop the account now: its open holds are released (their tasks fail, uncharged)
        in the same append, and every credential of it is refused from the next request."""
        await self._append(operator_id, user_id,
                           lambda account: decide.suspend(account, reason, operator_id))
        return await self.user(user_id)

    async def resume(self, operator_id: int, user_id: int, reason: str) -> AdminUser:
        await self._append(operator_id, user_id,
                           lambda account: decide.resume(account, reason, operator_id))
        return await self.user(user_id)

    async def _append(self, operator_id: int, user_id: int,
                      decision: Callable[[Account], list[Event]]) -> None:
        async def work(s: SqlSession) -> None:
            account = await queries.load_account(s.db, user_id)
            await s.append(account_stream(user_id), account.version, decision(account),
                           Metadata(actor=f"operator:{operator_id}"))

        # Flags cached here and in every process carry the word this changes.
        await self.ledger.transact_credentials(work)

    async def set_role(self, username: str, operator: bool, by: str) -> bool:
        """Grant or revoke the operator role (the command line's use case); False when the
        account already had that role, so nothing was appended."""
        async def work(s: SqlSession) -> bool:
            user_id = await queries.find_user_id(s.db, username)
            if user_id is None:
                raise AccountNotFound(f"no account named {username!r}")
            is_operator, _ = await admin_queries.flags_of(s.db, user_id)
            if is_operator == operator:
                if not operator:
                    raise NotAnOperator(f"{username!r} is not an operator")
                return False
            account = await queries.load_account(s.db, user_id)
            event = (OperatorRoleGranted(user_id=user_id, granted_by=by) if operator
                     else OperatorRoleRevoked(user_id=user_id, revoked_by=by))
            await s.append(account_stream(user_id), account.version, [event],
                           Metadata(actor=f"cli:{by}"))
            return True

        return await self.ledger.transact_credentials(work)

    # -- reads -----------------------------------------------------------------------------

    async def flags(self, user_id: int) -> tuple[bool, bool]:
        """(is_operator, suspended): a primary-key read, cached while no process has changed
        a credential or a flag since (the generation word, ledger/credential_cache.py)."""
        word = self.ledger.credentials.word()  # read BEFORE the database, as the cache does
        hit = self._flags.get(user_id)
        if (word is not None and hit is not None and hit[0] == word
                and time.monotonic() - hit[2] <= TTL_S):
            return hit[1]
        flags = await admin_queries.flags_of(self.store.read_db(), user_id)
        if word is not None:
            put_newest(self._flags, user_id, (word, flags, time.monotonic()))
        return flags

    async def exists(self, user_id: int) -> bool:
        return await queries.get_account_row(self.store.read_db(), user_id) is not None

    async def users(self, *, q: str = "", limit: int = 20,
                    starting_after: int | None = None) -> Page[AdminUser]:
        return await admin_queries.list_users(self.store.read_db(), self.store.clock(), q=q,
                                              limit=limit, starting_after=starting_after)

    async def user(self, user_id: int) -> AdminUser:
        found = await admin_queries.get_user(self.store.read_db(), self.store.clock(), user_id)
        if found is None:
            raise AccountNotFound(f"no account {user_id}")
        return found

    async def history(self, user_id: int, limit: int = 20) -> UserHistory:
        user = await self.user(user_id)
        return UserHistory(
            user=user,
            transactions=await self.ledger.transactions_page(user_id, limit=limit),
            tasks=await self.ledger.tasks_page(user_id, limit=limit),
            actions=await admin_queries.list_actions(self.store.read_db(), user_id=user_id,
                                                     limit=limit))

    async def actions(self, *, limit: int = 20, starting_after: int | None = None
                      ) -> Page[OperatorAction]:
        return await admin_queries.list_actions(self.store.read_db(), limit=limit,
                                                starting_after=starting_after)

    async def totals(self) -> LedgerTotals:
        # On the background connection: the sums of the system side read every system
        # posting (about 1 s at 4.4M), and no request's read may wait behind that.
        return await admin_queries.totals(self.store.background_db(), self.store.clock())
