"""Writes tests/data/v1_ledger.db with the code of the first release (commit efce416).

Run from a checkout of that commit: `python /path/to/make_v1_ledger.py OUT.db`. The file is
committed, so tests can prove that a database written by the previous version still opens,
serves and audits clean after the events and tables it holds changed shape.
"""

from __future__ import annotations

import asyncio
import sys

from ledger import LedgerService, Passwords, UserService, ledger_store
from ledger.control import Operation
from ml import MLModelManager, MLService, default_models


async def main(path: str) -> None:
    store = ledger_store(path)
    await store.open()
    try:
        ledger = LedgerService(store, owner="v1-writer")
        users = UserService(ledger, Passwords.cheap())
        ml = MLService(ledger, MLModelManager(default_models()))
        ada = await users.register("ada", "correct horse battery")
        bob = await users.register("bob", "another fine password")
        await users.login("ada", "correct horse battery", "api")
        await ledger.top_up(ada["id"], 100, "api:topup-1")
        await ledger.top_up(ada["id"], 100, "api:topup-1")  # a retry: charged once
        await ml.process_task(ada["id"], 1, [1.5, 2, "oops", True], "api:predict-1")
        await ml.process_task(ada["id"], 2, "1, 2, 3", as_text=True)
        await ml.process_task(bob["id"], 1, [1, 2, 3])  # rejected: no credits
        await ledger.top_up(bob["id"], 5)
        await ledger.withdraw(bob["id"], 2, "Charge")
        # A task interrupted by a crash: its hold stays open until a sweeper releases it.
        draft_op = Operation(user_id=ada["id"], operation_id="api:predict-2", kind="predict",
                             fingerprint="f")
        from ledger import TaskDraft
        await ledger.submit_task(ada["id"], TaskDraft(
            model_id=1, input_data=[4.0], input_indexes=[0], invalid=[], cost_credits=1),
            draft_op)
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
