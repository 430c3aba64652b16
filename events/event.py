"""The event base class and the envelope a stored event travels in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar


@dataclass(frozen=True, kw_only=True)
class Event:
    """A fact that happened. Subclasses name themselves with a stable type name:

    class CreditsDeposited(Event, type_name="CreditsDeposited", schema_version=1): ...
    """

    type_name: ClassVar[str]
    schema_version: ClassVar[int]
    composite: ClassVar[bool] = False

    def __init_subclass__(cls, type_name: str = "", schema_version: int = 1, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        # The stored name must never follow a class rename, so it is explicit.
        cls.type_name = type_name or cls.__name__
        cls.schema_version = schema_version
        cls.composite = cls.parts is not Event.parts

    def parts(self) -> Sequence[Event]:
        """The facts this event records, as projectors fold them: itself, unless it is a
        composite, one row of the log (one hash, one leaf) for facts that always happen
        together, which projectors see as those facts, each at the composite's position."""
        return (self,)


@dataclass(frozen=True, kw_only=True)
class Metadata:
    """Who caused an event and under which client operation id."""

    operation_id: str | None = None
    actor: str | None = None

    def to_dict(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.operation_id is not None:
            out["operation_id"] = self.operation_id
        if self.actor is not None:
            out["actor"] = self.actor
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Metadata:
        return cls(operation_id=data.get("operation_id"), actor=data.get("actor"))


@dataclass(frozen=True, kw_only=True)
class RecordedEvent:
    """An event as the log holds it: its place in the log and in its stream."""

    position: int
    stream_id: str
    version: int
    event: Event
    metadata: Metadata
    recorded_at: datetime
    hash: str


def projected(appended: Sequence[RecordedEvent]) -> Sequence[RecordedEvent]:
    """The events as projectors see them: each composite as its parts, which share its
    place in the log (position, version, hash) and its metadata. The same list when there
    is none (the usual case: no copy)."""
    if not any(recorded.event.composite for recorded in appended):
        return appended
    last = _last_projected[0] if _last_projected else None  # one read: a pair, whole
    if last is not None and last[0] is appended:  # the append's projectors, then its
        return last[1]  # caller: the same list, made once
    found = [_at_place_of(recorded, part) for recorded in appended
             for part in recorded.event.parts()]
    _last_projected[:] = [(appended, found)]  # holding the list: no other can take its id
    return found


_last_projected: list[tuple[Sequence[RecordedEvent], list[RecordedEvent]]] = []


def _at_place_of(recorded: RecordedEvent, part: Event) -> RecordedEvent:
    if part is recorded.event:
        return recorded
    return RecordedEvent(position=recorded.position, stream_id=recorded.stream_id,
                         version=recorded.version, event=part, metadata=recorded.metadata,
                         recorded_at=recorded.recorded_at, hash=recorded.hash)
