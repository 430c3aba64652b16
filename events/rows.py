"""The stored form of an event, shared by every store, and sealing it into the chain."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from events.codec import EventCodec, canonical_json, fast_loads
from events.event import Event, Metadata, RecordedEvent
from events.hashing import chain_hash

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, kw_only=True)
class StoredRow:
    """One row of the `events` table, exactly as its hash covers it."""

    position: int
    stream_id: str
    version: int
    type_name: str
    schema_version: int
    data_json: str
    metadata_json: str
    recorded_at: str
    hash: str

    def expected_hash(self, previous_hash: str) -> str:
        return chain_hash(
            previous_hash, position=self.position, stream_id=self.stream_id,
            version=self.version, type_name=self.type_name,
            schema_version=self.schema_version, data_json=self.data_json,
            metadata_json=self.metadata_json, recorded_at=self.recorded_at,
        )

    def to_recorded(self, codec: EventCodec) -> RecordedEvent:
        return RecordedEvent(
            position=self.position, stream_id=self.stream_id, version=self.version,
            event=codec.decode(self.type_name, self.schema_version, self.data_json),
            metadata=Metadata.from_dict(fast_loads(self.metadata_json)),
            recorded_at=datetime.fromisoformat(self.recorded_at), hash=self.hash,
        )


def seal(
    codec: EventCodec,
    *,
    previous_hash: str,
    position: int,
    stream_id: str,
    version: int,
    event: Event,
    metadata: Metadata,
    recorded_at: datetime,
) -> StoredRow:
    """Encode an event and chain it onto the previous hash."""
    return seal_texts(codec, previous_hash=previous_hash, position=position,
                      stream_id=stream_id, version=version, event=event,
                      metadata_json=metadata_text(metadata), recorded_at=stored_time(recorded_at))


def metadata_text(metadata: Metadata) -> str:
    return canonical_json(metadata.to_dict())


def stored_time(recorded_at: datetime) -> str:
    return recorded_at.astimezone(UTC).isoformat(timespec="microseconds")


_last_projected: list[tuple[datetime, str]] = []  # the instant last asked for, its text


def projected_time(recorded: RecordedEvent) -> str:
    """recorded_at as projections store it (isoformat, microseconds). Every event of one
    append carries the same datetime object and each projector asks (14 isoformat calls a
    prediction), so the last text is kept: by identity, never by equality (two equal
    instants in different zones have different texts)."""
    at = recorded.recorded_at
    if _last_projected and _last_projected[0][0] is at:
        return _last_projected[0][1]
    text = at.isoformat(timespec="microseconds")
    _last_projected[:] = [(at, text)]
    return text


def appended_time(stored: str) -> datetime:
    """The instant of an append from its text, `stored_time`'s: projected_time is told that
    text too, so the projectors of the append do not write it again (an isoformat is 2 µs,
    in the write's lock). stored_time writes UTC with microseconds, and such a text reads
    back to an instant whose isoformat is that same text (tests/unit/test_stored_event.py)."""
    at = datetime.fromisoformat(stored)
    _last_projected[:] = [(at, stored)]
    return at


def seal_texts(
    codec: EventCodec,
    *,
    previous_hash: str,
    position: int,
    stream_id: str,
    version: int,
    event: Event,
    metadata_json: str,
    recorded_at: str,
) -> StoredRow:
    """seal, given the metadata's and the time's stored text: the same for every event of
    one append, so an append encodes them once."""
    type_name, schema_version, data_json = codec.encode(event)
    return StoredRow(
        position=position, stream_id=stream_id, version=version, type_name=type_name,
        schema_version=schema_version, data_json=data_json, metadata_json=metadata_json,
        recorded_at=recorded_at,
        hash=chain_hash(previous_hash, position=position, stream_id=stream_id,
                        version=version, type_name=type_name, schema_version=schema_version,
                        data_json=data_json, metadata_json=metadata_json,
                        recorded_at=recorded_at))
