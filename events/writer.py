"""Group commit, as both SQL stores do it: one writer task per store takes the queued jobs
and commits up to `max_batch` of them in one transaction. `transact` returns after COMMIT."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from events.errors import StoreUnavailable
from events.event import Event, Metadata, RecordedEvent
from events.store import SqlSession

T = TypeVar("T")


@dataclass
class Job:
    work: Callable[[SqlSession], Awaitable[Any]]
    future: asyncio.Future[Any] = field(default_factory=lambda: asyncio.get_running_loop()
                                        .create_future())


Outcome = tuple[Job, Any, BaseException | None]


def settle(outcomes: Sequence[Outcome]) -> None:
    """Hand each job its result or its error (a job already answered stays as it is)."""
    for job, result, error in outcomes:
        if job.future.done():
            continue
        if error is None:
            job.future.set_result(result)
        else:
            job.future.set_exception(error)


class GroupCommit:
    """The queue and the writer task; a store supplies `_commit(batch)`."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Job | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    @property
    def max_batch(self) -> int:
        raise NotImplementedError

    async def _commit(self, batch: list[Job]) -> None:
        raise NotImplementedError

    def _start_writer(self, name: str) -> None:
        self._task = asyncio.create_task(self._write_loop(), name=name)

    async def _stop_writer(self) -> None:
        """Let the writer commit what it has, then fail whatever queued behind the stop."""
        try:
            if self._task is not None:
                await self._queue.put(None)
                await asyncio.shield(self._task)
        finally:
            self._task = None
            while not self._queue.empty():  # jobs queued behind the stop: fail, never hang
                late = self._queue.get_nowait()
                if late is not None and not late.future.done():
                    late.future.set_exception(StoreUnavailable("the event store is closed"))

    async def transact(self, work: Callable[[SqlSession], Awaitable[T]]) -> T:
        if self._task is None or self._task.done():
            raise StoreUnavailable("the event store is not open")
        job = Job(work)
        # The job runs to the end even if the caller goes away; its error is then dropped.
        job.future.add_done_callback(lambda f: f.cancelled() or f.exception())
        await self._queue.put(job)
        result: T = await asyncio.shield(job.future)
        return result

    async def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[Event],
        metadata: Metadata = Metadata(),  # noqa: B008 - frozen, so sharing is safe
    ) -> list[RecordedEvent]:
        async def work(session: SqlSession) -> list[RecordedEvent]:
            return await session.append(stream_id, expected_version, events, metadata)

        return await self.transact(work)

    async def _write_loop(self) -> None:
        while True:
            job = await self._queue.get()
            if job is None:
                return
            batch = [job]
            while len(batch) < self.max_batch and not self._queue.empty():
                more = self._queue.get_nowait()
                if more is None:
                    await self._commit(batch)
                    return
                batch.append(more)
            await self._commit(batch)
