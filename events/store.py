"""The EventStore protocol every store implements, and the session a write runs in."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from events.codec import EventCodec
from events.event import Event, Metadata, RecordedEvent
from events.projection import Projector
from events.rows import StoredRow
from events.sql import SqlDatabase

if TYPE_CHECKING:  # events/generation.py names this module's SqlSession
    from events.generation import Generation

T = TypeVar("T")
S = TypeVar("S", bound="Session", contravariant=True)


class Session(Protocol):
    """What a write may do, inside one transaction that commits or rolls back whole."""

    async def stream_version(self, stream_id: str) -> int: ...

    async def read_stream(self, stream_id: str) -> list[RecordedEvent]: ...

    async def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[Event],
        metadata: Metadata = ...,
    ) -> list[RecordedEvent]: ...


class EventStore(Protocol):
    """An append-only log of events, with per-stream versions and a global position."""

    async def transact(self, work: Callable[[Session], Awaitable[T]]) -> T:
        """Run `work` as one transaction; its appends are durable when this returns."""
        ...

    async def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[Event],
        metadata: Metadata = ...,
    ) -> list[RecordedEvent]: ...

    def read_stream(self, stream_id: str, from_version: int = 1) -> AsyncIterator[RecordedEvent]:
        ...

    def read_all(self, from_position: int = 1) -> AsyncIterator[RecordedEvent]: ...

    async def head_position(self) -> int: ...


class SqlSession(Session, Protocol):
    """A write transaction of a store whose projections live in SQL tables beside the log.
    `memo` is kept from job to job of one batch (one transaction), and rolled back with a
    job that fails: what a job knows of the database (a next id) for the jobs after it."""

    @property
    def db(self) -> SqlDatabase: ...

    @property
    def memo(self) -> dict[str, Any]: ...

    def read_in_write(self, stream_id: str, version: int,
                      facts: Mapping[str, Any] | None = None) -> None:
        """The stream's version as the log holds it, read in this write (so the next append
        need not ask), and `facts` of its state then, for that append's projectors."""
        ...


class SqlEventStore(Protocol):
    """A store with SQL projections: what the ledger needs, whichever database runs it."""

    codec: EventCodec
    projectors: tuple[Projector, ...]
    clock: Callable[[], datetime]

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def transact(self, work: Callable[[SqlSession], Awaitable[T]]) -> T: ...

    def read_db(self) -> SqlDatabase: ...

    def background_db(self) -> SqlDatabase:
        """For long reads over whole tables (the verifier's walk and checks, the admin
        ledger totals): apart from the connection requests share, so no request queues
        behind one."""
        ...

    def credential_generation(self, owner: str) -> Generation | None:
        """A word that changes in every process when a credential ends (events/generation.py),
        or None when the store cannot keep one. `owner` names this process (its lease)."""
        ...

    def read_rows(self, from_position: int = 1) -> AsyncIterator[StoredRow]: ...

    def read_all(self, from_position: int = 1) -> AsyncIterator[RecordedEvent]: ...

    async def head_position(self) -> int: ...

    async def rebuild_projections(self) -> int: ...

    async def integrity_problem(self, bounded: bool = False) -> str | None:
        """What the database itself finds damaged (beneath the hash chain), or None."""
        ...
