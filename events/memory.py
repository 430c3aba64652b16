"""An in-memory event store for unit tests; it honours the same contract as SQLite."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

from events.codec import EventCodec
from events.errors import ConcurrencyError
from events.event import Event, Metadata, RecordedEvent
from events.hashing import GENESIS_HASH
from events.rows import Clock, StoredRow, seal, utc_now

T = TypeVar("T")


class InMemorySession:
    def __init__(self, store: InMemoryEventStore) -> None:
        self._store = store
        self.rows: list[StoredRow] = list(store.rows)

    async def stream_version(self, stream_id: str) -> int:
        return sum(1 for row in self.rows if row.stream_id == stream_id)

    async def read_stream(self, stream_id: str) -> list[RecordedEvent]:
        codec = self._store.codec
        return [row.to_recorded(codec) for row in self.rows if row.stream_id == stream_id]

    async def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[Event],
        metadata: Metadata = Metadata(),  # noqa: B008 - frozen, so sharing is safe
    ) -> list[RecordedEvent]:
        if await self.stream_version(stream_id) != expected_version:
            raise ConcurrencyError(stream_id, expected_version)
        now = self._store.clock()
        sealed = []
        for offset, event in enumerate(events, start=1):
            row = seal(
                self._store.codec,
                previous_hash=self.rows[-1].hash if self.rows else GENESIS_HASH,
                position=len(self.rows) + 1, stream_id=stream_id,
                version=expected_version + offset, event=event, metadata=metadata,
                recorded_at=now,
            )
            self.rows.append(row)
            sealed.append(row.to_recorded(self._store.codec))
        return sealed


class InMemoryEventStore:
    """Keeps rows in a list; a transaction works on a copy and swaps it in on success."""

    def __init__(self, codec: EventCodec, clock: Clock = utc_now) -> None:
        self.codec = codec
        self.clock = clock
        self.rows: list[StoredRow] = []
        self._lock = asyncio.Lock()

    async def transact(self, work: Callable[[InMemorySession], Awaitable[T]]) -> T:
        async with self._lock:
            session = InMemorySession(self)
            result = await work(session)
            self.rows = session.rows
            return result

    async def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[Event],
        metadata: Metadata = Metadata(),  # noqa: B008
    ) -> list[RecordedEvent]:
        async def work(session: InMemorySession) -> list[RecordedEvent]:
            return await session.append(stream_id, expected_version, events, metadata)

        return await self.transact(work)

    async def read_stream(
        self, stream_id: str, from_version: int = 1
    ) -> AsyncIterator[RecordedEvent]:
        for row in list(self.rows):
            if row.stream_id == stream_id and row.version >= from_version:
                yield row.to_recorded(self.codec)

    async def read_all(self, from_position: int = 1) -> AsyncIterator[RecordedEvent]:
        # Clamped: a position before the first means all of them, as in SQLite's `>=`.
        for row in list(self.rows[max(from_position, 1) - 1:]):
            yield row.to_recorded(self.codec)

    async def head_position(self) -> int:
        return len(self.rows)
