"""The event base class and the envelope a stored event travels in."""

from __future__ import annotations

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

    def __init_subclass__(cls, type_name: str = "", schema_version: int = 1, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        # The stored name must never follow a class rename, so it is explicit.
        cls.type_name = type_name or cls.__name__
        cls.schema_version = schema_version


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
