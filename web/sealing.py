"""The sealing task: a signed checkpoint every N events or T seconds, in every process.

Processes sharing one log seal in turn: a seal's write is ordered by the store's write lock
and writes nothing if another process sealed since it was made (ledger/checkpoints.py), so
two processes sealing at once only make honest checkpoints; each reads the same key file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from aiohttp import web

from events import SqlEventStore, StoreError
from ledger import merkle_nodes
from ledger.checkpoints import Checkpointer, Signer, latest_checkpoint
from web.config import Config
from web.keys import CHECKPOINTS, CONFIG, NODES_BUILT, STORE

log = logging.getLogger("ml_cabinet")
# Between two slices of a seal's hashing (about 1.5 ms each): a request meets one slice, not
# one at each turn of the loop it needs; a seal of 6,000 events (a second of a loaded
# service: 24 slices of events, 24 blocks of nodes) spreads over about 0.3 s
# (BENCHMARKS.md, round 12).
SEAL_PAUSE_S = 0.005


async def sealing_ctx(app: web.Application) -> AsyncIterator[None]:
    """Load (or make) the signing key and seal in the background; runs after services_ctx."""
    config, store = app[CONFIG], app[STORE]
    signer = await asyncio.to_thread(Signer.from_file, config.signing_key_path)
    checkpointer = app[CHECKPOINTS] = Checkpointer(store, signer, pause_s=SEAL_PAUSE_S)
    try:
        await checkpointer.register_key()
    except StoreError as error:  # a read-only disk: the key is listed at its first seal
        log.warning("the signing key is not listed yet: %s", error)
    built = app[NODES_BUILT] = asyncio.Event()
    sealer = asyncio.create_task(seal_forever(store, checkpointer, config, built),
                                 name="sealer")
    yield
    sealer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sealer


async def seal_if_due(store: SqlEventStore, checkpointer: Checkpointer, config: Config,
                      seconds_since_last_seal: float) -> bool:
    """Seal when `checkpoint_every` events wait, or any wait and the interval has passed."""
    latest = await latest_checkpoint(store.read_db())
    waiting = await store.head_position() - (latest.position if latest else 0)
    if waiting >= config.checkpoint_every or (
            waiting > 0 and seconds_since_last_seal >= config.checkpoint_seconds):
        await checkpointer.seal()
        return True
    return False


async def seal_forever(store: SqlEventStore, checkpointer: Checkpointer, config: Config,
                       built: asyncio.Event) -> None:
    last = time.monotonic()
    try:  # an old log's Merkle nodes, built once in the background (batches, resumable)
        await merkle_nodes.build(store)
    except StoreError as error:
        log.warning("merkle nodes not built yet: %s", error)
    except Exception:  # a log with a gap, say: the sealer goes on (each seal builds again)
        log.exception("merkle nodes not built")
    finally:
        built.set()  # tests that count a start's work wait for this background pass
    while True:
        await asyncio.sleep(min(config.checkpoint_seconds, 1.0))  # a timer, not a sync
        try:
            if await seal_if_due(store, checkpointer, config, time.monotonic() - last):
                last = time.monotonic()
        except StoreError as error:
            log.warning("checkpoint skipped: %s", error)
        except Exception:  # the sealer must outlive any one bad seal
            log.exception("checkpoint failed")
