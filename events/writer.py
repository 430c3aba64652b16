"""Group commit, as both SQL stores do it: one writer task per store takes the queued jobs
and commits up to `max_batch` of them in one transaction. `transact` returns after COMMIT."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

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


class JobPoisoned(Exception):
    """A job failed in a way that took its whole transaction down."""

    def __init__(self, index: int, error: BaseException) -> None:
        super().__init__(str(error))
        self.index = index
        self.error = error


class JobFailed(JobPoisoned):
    """A job of a batch run without savepoints failed with its own error (a refused charge,
    a stale version) in a way only rolling the transaction back undoes (on PostgreSQL any
    such error, on SQLite one after the job changed rows): the transaction is rolled back,
    and the others run again without it."""


class CommitObserver(Protocol):
    """Told about every write, for metrics; it must be quick and must not raise."""

    def batch_committed(self, jobs: int, seconds: float) -> None:
        """A batch of `jobs` went through one commit (some jobs may have failed alone)."""

    def events_committed(self, events: Sequence[RecordedEvent]) -> None:
        """The events one job appended, once its transaction has committed."""


class _RecordingSession:
    """The job's session, keeping what it appended: a job rolled back (or re-run by a retry)
    must not count, so the events are reported only with the job's result."""

    def __init__(self, session: SqlSession) -> None:
        self._session = session
        self.db = session.db  # read at every statement: no __getattr__ on the hot path
        self.appended: list[RecordedEvent] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    async def append(self, stream_id: str, expected_version: int, events: Sequence[Event],
                     metadata: Metadata = Metadata()  # noqa: B008 - frozen
                     ) -> list[RecordedEvent]:
        recorded = await self._session.append(stream_id, expected_version, events, metadata)
        self.appended.extend(recorded)
        return recorded


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
        self.observer: CommitObserver | None = None

    @property
    def queue_depth(self) -> int:
        """Jobs waiting for the writer (the batch being committed is not counted)."""
        return self._queue.qsize()

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
        job = self._observed_job(work) if self.observer is not None else Job(work)
        # The job runs to the end even if the caller goes away; its error is then dropped.
        job.future.add_done_callback(lambda f: f.cancelled() or f.exception())
        await self._queue.put(job)
        result: T = await asyncio.shield(job.future)
        return result

    def _observed_job(self, work: Callable[[SqlSession], Awaitable[Any]]) -> Job:
        observer = self.observer
        assert observer is not None
        latest: list[_RecordingSession] = []  # a retried job runs its work again

        async def observed(session: SqlSession) -> Any:
            recording = _RecordingSession(session)
            latest[:] = [recording]
            return await work(recording)

        job = Job(observed)

        def report(future: asyncio.Future[Any]) -> None:
            # settle() resolves the future only after COMMIT: what is reported is in the log.
            if not future.cancelled() and future.exception() is None and latest:
                observer.events_committed(latest[0].appended)

        job.future.add_done_callback(report)
        return job

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
                    await self._timed_commit(batch)
                    return
                batch.append(more)
            await self._timed_commit(batch)

    async def _timed_commit(self, batch: list[Job]) -> None:
        started = time.perf_counter()
        await self._commit(batch)
        if self.observer is not None:
            self.observer.batch_committed(len(batch), time.perf_counter() - started)
