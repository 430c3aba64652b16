"""In process, no HTTP: CPU per charged prediction on the one-write and the two-phase path,
and CPU per login-token check with and without the credential cache.

16 concurrent clients, each its own user with 1,000,000 credits, 300 predictions of 10 numbers
each on model 1, on a fresh SQLite file (synchronous=FULL). CPU is `time.process_time()`
(every thread of this process), which moves less with the machine's load than wall time.

Run: .venv/bin/python bench/one_write_inproc.py
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from events.generation import SharedGeneration
from ledger import LedgerService, Passwords, UserService, ledger_store
from ml import MLModelManager, MLService, default_models

CLIENTS, PREDICTIONS, CHECKS = 16, 300, 3000


async def predictions(folder: Path, one_transaction: bool) -> str:
    store = ledger_store(folder / f"predict-{one_transaction}.db")
    await store.open()
    try:
        ledger = LedgerService(store)
        users = UserService(ledger, Passwords.cheap())
        ml = MLService(ledger, MLModelManager(default_models()),
                       one_transaction=one_transaction)
        ids = [(await users.register(f"user{k}", "correct horse")).id for k in range(CLIENTS)]
        for user_id in ids:
            await ledger.top_up(user_id, 1_000_000)

        async def client(user_id: int) -> None:
            for _ in range(PREDICTIONS):
                await ml.process_task(user_id, 1, [1.0] * 10)

        wall, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(client(user_id) for user_id in ids))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        await store.close()
    n = CLIENTS * PREDICTIONS
    path = "one write" if one_transaction else "two-phase"
    return f"{path:<10} {n / wall:7.0f} predictions/s  {cpu / n * 1e6:5.0f} µs CPU each"


async def token_checks(folder: Path) -> list[str]:
    store = ledger_store(folder / "tokens.db")
    await store.open()
    lines = []
    try:
        ledger = LedgerService(store)
        users = UserService(ledger, Passwords.cheap())
        await users.register("alice", "correct horse")
        token = (await users.login("alice", "correct horse")).access_token
        for label, word in (("no cache", None), ("cache", SharedGeneration(folder / "g"))):
            ledger.credentials._generation = word  # the cache with and without its word
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(CHECKS):
                assert await users.credential_for_token(token) is not None
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            lines.append(f"token check, {label:<8} {wall / CHECKS * 1e6:5.0f} µs wall  "
                         f"{cpu / CHECKS * 1e6:5.0f} µs CPU each")
    finally:
        await store.close()
    return lines


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="mlc-one-write-") as scratch:
        folder = Path(scratch)
        for one_transaction in (False, True):
            print(await predictions(folder, one_transaction), flush=True)
        for line in await token_checks(folder):
            print(line)


if __name__ == "__main__":
    asyncio.run(main())
