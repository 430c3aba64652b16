"""An append hands its projectors the events it was given instead of decoding them back from
the text it just wrote, but only where that decode would give the very same values, type for
type (EventCodec.as_stored): projections must see what a replay of the log will see."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from events.codec import canonical_json, fast_loads, survives_json
from events.event import Metadata, RecordedEvent
from events.rows import _last_projected, appended_time, projected_time, stored_time
from ledger.events import CreditsHeld, TaskCompleted, TaskSubmitted, ledger_codec
from tests.unit.test_canonical_json import LEAVES  # the same leaves: surrogates, edge floats

PAYLOADS = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
    | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=16)


def identical(a: Any, b: Any) -> bool:
    """Equal, and of the same type all the way down (1 == 1.0 == True would not do)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(identical(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(identical(a[k], b[k]) for k in a)
    if isinstance(a, float):
        return a.hex() == b.hex()  # -0.0 is not 0.0
    return bool(a == b)


@settings(max_examples=1500, deadline=None)
@given(PAYLOADS)
def test_a_value_said_to_survive_json_reads_back_identical(value: Any) -> None:
    if survives_json(value):
        assert identical(fast_loads(canonical_json(value)), value)


def test_what_does_not_survive_json_is_not_said_to() -> None:
    for value in ((1, 2), {"b": 1, "a": 2}, [float("nan")], [float("inf")], [True, (1,)],
                  type("Text", (str,), {})("x"), [{"index": 0}]):
        assert not survives_json(value), value
    for value in ([1.0, -0.0, 0.1, 1e16, 5e-324, 2**70, "é\u2028", None, True], [[1, [2.5]]]):
        assert survives_json(value), value


def test_as_stored_gives_what_decoding_the_stored_text_gives() -> None:
    codec = ledger_codec()
    kept = [
        CreditsHeld(user_id=1, task_id=2, amount_credits=3, owner="p", key_id=None),
        TaskSubmitted(user_id=1, task_id=2, model_id=1, input_data=[1.0, -2.5, 3],
                      input_indexes=[0, 1, 2], invalid=[], cost_credits=3,
                      model_version=None),
        TaskCompleted(user_id=1, task_id=2, output_data=[2.0, None, 6], cost_credits=2,
                      unpredictable=[])]
    decoded = [  # a tuple, dicts: decoded, not kept
        TaskSubmitted(user_id=1, task_id=2, model_id=1, input_data=[(1, 2)],  # type: ignore[list-item]
                      input_indexes=[0], invalid=[{"index": 1, "error": "x"}],
                      cost_credits=1, model_version="v1"),
        TaskCompleted(user_id=1, task_id=2, output_data=[2.0], cost_credits=2,
                      unpredictable=[{"index": 0, "reason": "nan"}])]
    for event, keeps in [(e, True) for e in kept] + [(e, False) for e in decoded]:
        type_name, schema_version, text = codec.encode(event)
        stored = codec.as_stored(event, text)
        assert (stored is event) is keeps, event
        assert identical(vars(stored), vars(codec.decode(type_name, schema_version, text)))


@settings(max_examples=1000, deadline=None)
@given(st.datetimes(timezones=st.timezones()))
def test_an_appended_instant_projects_as_the_very_text_it_was_stored_as(moment: Any) -> None:
    """The append parses its stored time once and tells projected_time that text: what a
    replay computes from the parsed instant must be that text, byte for byte."""
    from datetime import datetime

    stored = stored_time(moment)
    parsed = appended_time(stored)
    assert datetime.fromisoformat(stored).isoformat(timespec="microseconds") == stored
    _last_projected.clear()  # what a replay does: no text told, the instant written out
    recorded = RecordedEvent(position=1, stream_id="s", version=1, event=CreditsHeld(
        user_id=1, task_id=2, amount_credits=3, owner="p"), metadata=Metadata(),
        recorded_at=parsed, hash="h")
    assert projected_time(recorded) == stored


def test_an_attribute_set_past_the_dataclass_is_not_encoded() -> None:
    """encode reads an event's fields from its __dict__ only when that holds exactly them."""
    codec = ledger_codec()
    event = CreditsHeld(user_id=1, task_id=2, amount_credits=3, owner="p")
    plain = codec.encode(event)
    object.__setattr__(event, "cached", [1, 2])  # say, a cached_property's value
    assert codec.encode(event) == plain
    assert "cached" not in plain[2]
