"""Event codec: a registry of type names, JSON encoding, and upcasters for old schemas."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable
from typing import Any

import orjson

from events.event import Event

_LONG_DIGITS = re.compile(r"[0-9]{19}")
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class UnknownEventType(Exception):
    """The log holds a type name this codec was not told about."""


def _json_text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


# orjson (pinned 3.13.0) writes what json.dumps writes above, byte for byte, except: NaN and
# infinities (null, where json refuses), floats below 1e-4 (0.00001 or 1e-7 where json
# writes 1e-05 or 1e-07), and what it refuses (integers beyond 64 bits, lone surrogates,
# keys that are not text). A sweep of 1,000,000 random doubles and every m×10^e found no
# other difference (tests/unit/test_canonical_json.py keeps checking, over arbitrary event
# payloads). So an orjson text is kept only when it holds neither shape (a null only where
# the value holds no NaN or infinity: then each null is a None); the rest, and
# anything orjson refuses, is written by json.dumps. Dataclasses, datetimes and subclasses
# of str/int/dict/list are handed back to json too (orjson would write them; json refuses
# or writes them its own way). Enums and UUIDs, which orjson writes and json refuses, are
# not values an event field holds (they are typed as JSON).
_ORJSON = (orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS
           | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS)
_NULL = b"null"


def _all_finite(value: Any) -> bool:
    """No NaN or infinity anywhere in `value`: then every `null` orjson wrote is a None,
    which json writes as null too (asked only of a text holding a null: a None field, such
    as an event's `key_id`, sends every such event here). Scalars are tested inline, by
    exact type: an event's rows are mostly numbers, and one call a leaf was most of the
    check's cost. Anything else, containers and subclasses alike, is walked by a call."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        items: Any = value.values()
    elif isinstance(value, list | tuple):
        items = value
    else:
        return True
    for item in items:
        kind = type(item)
        if kind is float:
            if not math.isfinite(item):
                return False
        elif not (kind is int or kind is str or kind is bool or item is None
                  or _all_finite(item)):
            return False
    return True


def _orjson_is_exact(value: Any, text: bytes) -> bool:
    # Two substring searches, not one regex (e-|0\.0000): bytes' `in` skips along the text
    # at C speed, a regex tries the alternation at every offset (twice the time on an
    # event's text, and every event is checked in the write's lock).
    if b"e-" in text or b"0.0000" in text:
        return False
    return _NULL not in text or _all_finite(value)


def canonical_bytes(value: Any) -> bytes:
    """canonical_json(value).encode(), without the round trip through str."""
    try:
        text = orjson.dumps(value, option=_ORJSON)
    except TypeError:
        return _json_text(value).encode()
    return text if _orjson_is_exact(value, text) else _json_text(value).encode()


def canonical_json(value: Any) -> str:
    """One text for one value: sorted keys, no spaces, no NaN. Hashes are taken over it.
    By orjson where it writes the very bytes json.dumps writes (see above)."""
    try:
        text = orjson.dumps(value, option=_ORJSON)
    except TypeError:
        return _json_text(value)
    return text.decode() if _orjson_is_exact(value, text) else _json_text(value)


def fast_loads(text: str) -> Any:
    """json.loads, by orjson where it gives the same value (3x quicker on the audit's replay).
    What orjson refuses and json reads (lone surrogates, NaN) goes to json, and so does any
    text with a run of 19 digits: orjson turns integers beyond 64 bits into floats without a
    word. So every stored text decodes exactly as before. Only decoding: the text that is
    hashed is still written by canonical_json."""
    if _LONG_DIGITS.search(text):
        return json.loads(text)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def survives_json(value: Any) -> bool:
    """Whether `fast_loads(canonical_json(value))` gives back `value` itself, type for type:
    None, bools, ints, finite floats (their shortest text reads back as the same double),
    texts, and lists of them. Not tuples (they come back lists), dicts (they come back with
    their keys sorted), NaN or infinities (refused), subclasses, or anything else."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return True
    if kind is float:
        return math.isfinite(value)
    if kind is not list:
        return False
    for item in value:  # the scalars inline: a task's rows are mostly numbers
        kind = type(item)
        if kind is float:
            if not math.isfinite(item):
                return False
        elif not (kind is int or kind is str or kind is bool or item is None
                  or survives_json(item)):
            return False
    return True


_FIELD_NAMES: dict[type[Event], tuple[str, ...]] = {}
_FIELD_SETS: dict[type[Event], frozenset[str]] = {}


def _field_names(cls: type[Event]) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
        _FIELD_SETS[cls] = frozenset(names)
    return names


def _fields(event: Event) -> dict[str, Any]:
    """The event's fields by name, to read, never to change. A dataclass without slots keeps
    exactly its fields in its __dict__, which is then read in place (a copy field by field
    cost 1.5 µs an event, in the write's lock); anything else there (an attribute set past
    the dataclass, a slotted subclass) and they are copied by name, as always."""
    names = _field_names(type(event))
    data: dict[str, Any] | None = getattr(event, "__dict__", None)
    if data is not None and data.keys() == _FIELD_SETS[type(event)]:
        return data
    return {name: getattr(event, name) for name in names}


class EventCodec:
    """Maps event classes to stable names and back, upcasting old schema versions on read."""

    def __init__(self) -> None:
        self._types: dict[str, type[Event]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}

    def register(self, *classes: type[Event]) -> None:
        for cls in classes:
            known = self._types.get(cls.type_name)
            if known is not None and known is not cls:
                raise ValueError(f"event type name {cls.type_name!r} is registered twice")
            self._types[cls.type_name] = cls

    def register_upcaster(self, type_name: str, from_version: int, upcast: Upcaster) -> None:
        """`upcast` turns the data of `from_version` into the data of `from_version + 1`."""
        self._upcasters[(type_name, from_version)] = upcast

    def encode(self, event: Event) -> tuple[str, int, str]:
        if self._types.get(event.type_name) is not type(event):
            raise UnknownEventType(event.type_name)
        # The fields as they are (_fields): asdict() deep-copies every value, which for a
        # task of 1,000 rows cost half the request. The JSON text (and so the hash) is the same.
        try:
            text = canonical_json(_fields(event))
        except TypeError:  # a nested dataclass: asdict() turns it into a dict
            text = canonical_json(dataclasses.asdict(event))
        return event.type_name, event.schema_version, text

    def as_stored(self, event: Event, data_json: str) -> Event:
        """The event a decode of its own stored text (`encode(event)`'s) gives: `event`
        itself when every field survives JSON unchanged (survives_json), else decoded."""
        for name in _field_names(type(event)):
            if not survives_json(getattr(event, name)):
                return self.decode(event.type_name, event.schema_version, data_json)
        return event

    def decode(self, type_name: str, schema_version: int, data_json: str) -> Event:
        cls = self._types.get(type_name)
        if cls is None:
            raise UnknownEventType(type_name)
        data = fast_loads(data_json)
        version = schema_version
        while version < cls.schema_version:
            data = self._upcasters[(type_name, version)](data)
            version += 1
        return cls(**data)
