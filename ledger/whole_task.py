"""The shape of the hot path's append: one task decided in one write, which every projector
recognises to write each of its rows once. A module of its own, so that each projector's
module imports it once at load (a function-local import cost a microsecond a projector, on
every prediction, inside the write's lock)."""

from __future__ import annotations

from collections.abc import Sequence

from events import RecordedEvent
from ledger.events import (
    CreditsHeld,
    HoldReleased,
    HoldSettled,
    TaskCompleted,
    TaskFailed,
    TaskSubmitted,
)

_last_whole: list[tuple[Sequence[RecordedEvent], Sequence[RecordedEvent] | None]] = []


def whole_task(appended: Sequence[RecordedEvent]) -> Sequence[RecordedEvent] | None:
    """The append, when it is one task decided in one write (ledger.account's
    complete_at_once / fail_at_once): submitted, held, settled and completed, or held,
    released and failed. Projectors then write each row once, in its final state.
    Every projector asks of the same append (one list object): the last answer is kept, by
    identity, holding the list so that no other can take its id."""
    if len(appended) != 4:
        return None
    if _last_whole and _last_whole[0][0] is appended:
        return _last_whole[0][1]
    found = _whole_task(appended)
    _last_whole[:] = [(appended, found)]
    return found


def _whole_task(appended: Sequence[RecordedEvent]) -> Sequence[RecordedEvent] | None:
    submitted, held, resolved, finished = (r.event for r in appended)
    if not (isinstance(submitted, TaskSubmitted) and isinstance(held, CreditsHeld) and (
            (isinstance(resolved, HoldSettled) and isinstance(finished, TaskCompleted))
            or (isinstance(resolved, HoldReleased) and isinstance(finished, TaskFailed)))):
        return None
    if not submitted.task_id == held.task_id == resolved.task_id == finished.task_id:
        return None
    return appended
