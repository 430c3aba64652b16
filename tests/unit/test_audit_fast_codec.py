"""The audit's fast path writes and reads what the slow one does: the hashed text byte for
byte, every task's JSON text, every event's fields, the stored time."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.codec import canonical_json, fast_loads
from ledger.audit_fast import Decoder, _loads, payload
from ledger.audit_fold import _CANONICAL_AT, Fold, Unexpected, json_text
from ledger.audit_fold_usage import UsageFold
from ledger.audit_jobs import tables
from ledger.events import ALL_EVENTS, TaskCompletedAtOnce, completed_at_once_parts, ledger_codec

ROW = [7, "account-3", 2, "CreditsDeposited", 1, '{"a":1}', '{"actor":"user:3"}',
       "2026-12-01T21:28:50.079137+00:00"]


def test_the_hashed_text_is_canonical_json_for_every_code_point() -> None:
    points = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    for start in range(0, len(points), 4096):
        text = "".join(points[start:start + 4096])
        row = [*ROW[:5], text, '{"x":"' + text[:50] + '"}', ROW[7]]
        assert payload("0" * 64, row) == canonical_json(["0" * 64, *row]).encode()


@pytest.mark.parametrize("odd", [{5: "\ud800"}, {0: 2**64}, {2: 1.0}, {2: "2"}, {5: b"bytes"}])
def test_what_orjson_refuses_or_writes_otherwise_is_written_by_canonical_json(
        odd: dict[int, Any]) -> None:
    row = [odd.get(i, value) for i, value in enumerate(ROW)]
    try:
        expected = canonical_json(["0" * 64, *row]).encode()
    except (TypeError, UnicodeEncodeError) as exc:  # the slow path fails, and so does this
        with pytest.raises(type(exc)):
            payload("0" * 64, row)
        return
    assert payload("0" * 64, row) == expected


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text()
    | st.floats(min_value=-1e-3, max_value=1e-3) | st.floats(min_value=1e14, max_value=1e18),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(JSON)
def test_a_tasks_json_text_is_canonical_json(value: Any) -> None:
    try:
        expected = canonical_json(value)
    except ValueError:  # NaN and infinities: the projector fails, and so does this
        with pytest.raises(ValueError):
            json_text(value)
        return
    assert json_text(value) == expected


@pytest.mark.parametrize("number", [1e16, 1e-5, 1.5e-5, 1e-4, 1e308, 5e-324,
                                    123456789.125, -0.0, 2.0**53, 1e15, 9999999999999998.0])
def test_floats_orjson_writes_in_another_shape_are_written_as_python_writes_them(
        number: float) -> None:
    assert json_text([number, {"b": number, "a": 1}]) == canonical_json(
        [number, {"b": number, "a": 1}])
    assert not math.isnan(number)


SAMPLES = {
    "AccountOpened": '{"user_id":1,"username":"Alice"}',
    "CreditsHeld": '{"amount_credits":3,"owner":"task","task_id":9,"user_id":1}',
    "TaskCompleted": '{"cost_credits":2,"output_data":[1.5],"task_id":9,"unpredictable":[],'
                     '"user_id":1}',
}


@pytest.mark.parametrize("type_name", SAMPLES)
def test_the_decoder_gives_the_fields_the_codec_gives(type_name: str) -> None:
    cls = next(c for c in ALL_EVENTS if c.type_name == type_name)
    event = ledger_codec().decode(type_name, cls.schema_version, SAMPLES[type_name])
    assert Decoder()(type_name, cls.schema_version, SAMPLES[type_name]) == vars(event)


@pytest.mark.parametrize("text", ['{"user_id":1}', '{"user_id":1,"username":"a","x":2}',
                                  '[1]', '"text"'])
def test_the_decoder_refuses_what_the_class_refuses(text: str) -> None:
    with pytest.raises(TypeError):
        ledger_codec().decode("AccountOpened", 1, text)
    with pytest.raises(Unexpected):
        Decoder()("AccountOpened", 1, text)


@pytest.mark.parametrize("text", ["2026-12-01T21:28:50.079137+00:00",
                                  "2026-12-01 21:28:50.079137+00:00",
                                  "2026-W48-2T21:28:50.079137+00:00",
                                  "2026-12-01T21:28:50+00:00", "2026-12-01T23:28:50.079137+02:00"])
def test_a_stored_time_is_kept_only_where_it_is_its_own_isoformat(text: str) -> None:
    canonical = datetime.fromisoformat(text).isoformat(timespec="microseconds")
    assert not _CANONICAL_AT.fullmatch(text) or canonical == text
    assert _CANONICAL_AT.fullmatch(canonical) or not canonical.endswith("+00:00")


@pytest.mark.parametrize("text", ['{"n": 123456789012345678901234567890}',
                                  '{"n": 1234567890123456789}',
                                  '[18446744073709551616, -9223372036854775809]', '"\\ud800"',
                                  '"\ud800"', '[NaN]', '{"a": 1, "a": 2}', '[1e308, -0.0, 0.1]',
                                  '{"n": "١٢٣٤٥٦٧٨٩٠١٢٣٤٥٦٧٨٩٠"}'])
def test_the_decoder_reads_every_text_as_fast_loads_does(text: str) -> None:
    assert repr(_loads(text)) == repr(fast_loads(text))


def test_every_event_type_and_projection_table_is_known_to_the_fold() -> None:
    """A new event or projection table the fold does not know leaves every audit to the slow
    replay (never a wrong verdict): this says so at once, so the fold learns it too."""
    fold = Fold()
    assert {cls.type_name for cls in ALL_EVENTS} == fold.known_types()
    for table in tables():
        assert fold.rows(table) == [], table


AT = datetime.fromisoformat("2026-12-01T21:28:50.079137+00:00")


def _folded(*events: tuple[str, dict[str, Any]]) -> Fold:
    fold = Fold()
    fold.apply(1, 3, 1, "AccountOpened", {"user_id": 3, "username": "Сергей"}, AT.isoformat(),
               AT)
    for version, (type_name, event) in enumerate(events, start=2):
        fold.apply(version, 3, version, type_name, event, AT.isoformat(), AT)
    return fold


@pytest.mark.parametrize("events", [
    # A debit below zero: the accounts and transactions CHECKs would abort the write.
    [("CreditsAdjusted", {"user_id": 3, "amount_credits": -1, "reason": "x", "operator_id": 1})],
    # operator_actions.reason is NOT NULL.
    [("AccountSuspended", {"user_id": 3, "reason": None, "operator_id": 1})],
    [("CreditsAdjusted", {"user_id": 3, "amount_credits": 5, "reason": None, "operator_id": 1})],
    # An operator event about another account than its stream's.
    [("AccountResumed", {"user_id": 4, "reason": "x", "operator_id": 1})],
], ids=["overdrawn", "suspended-without-reason", "adjusted-without-reason", "other-account"])
def test_operator_events_the_tables_would_refuse_leave_the_audit_to_the_projectors(
        events: list[tuple[str, dict[str, Any]]]) -> None:
    with pytest.raises(Unexpected):
        _folded(*events)


def test_a_role_change_keeps_the_suspension_and_its_reason() -> None:
    fold = _folded(("AccountSuspended", {"user_id": 3, "reason": "fraud", "operator_id": 1}),
                   ("OperatorRoleGranted", {"user_id": 3, "granted_by": "root"}))
    assert fold.rows("account_flags") == [(3, 1, 1, "fraud", AT.isoformat())]
    assert [row[3] for row in fold.rows("operator_actions")] == ["suspend", "grant"]
    assert fold.rows("accounts")[0][2] == "cepгeй"  # username_key, not lower()


def test_usage_of_a_task_never_submitted_leaves_the_audit_to_the_projectors() -> None:
    usage = UsageFold()
    usage.apply("AccountOpened", 3, {"user_id": 3, "username": "bob"}, AT)
    with pytest.raises(Unexpected):
        usage.apply("HoldSettled", 3, {"user_id": 3, "task_id": 9, "amount_credits": 2,
                                       "released_credits": 0, "description": "x"}, AT)


def test_a_time_zone_change_moves_the_usage_days_the_slots_fall_on() -> None:
    usage = UsageFold()
    usage.apply("AccountOpened", 3, {"user_id": 3, "username": "bob"}, AT)  # 21:28 UTC
    usage.apply("CreditsWithdrawn", 3, {"user_id": 3, "amount_credits": 5,
                                        "description": "x"}, AT)
    usage.apply("TimeZoneSet", 3, {"user_id": 3, "time_zone": "Asia/Tokyo"}, AT)
    tokyo_day = AT.date().toordinal() + 1  # 06:28 the next morning
    assert usage.rows("usage_days") == [(3, tokyo_day, 0, 0, 0, 5)]
    assert usage.rows("usage_zones") == [(3, "Asia/Tokyo")]


completed_at_once = st.builds(
    lambda quoted, charged, key_id, unpredictable: TaskCompletedAtOnce(
        user_id=3, task_id=9, model_id=1, input_data=[1.5, 2], input_indexes=[0, 2],
        invalid=[{"index": 1, "value": "x", "error": "not a number"}],
        quoted_credits=quoted, model_version="0123456789ab", owner="me", key_id=key_id,
        charged_credits=min(charged, quoted), description="Prediction",
        output_data=[3.0, None] if unpredictable else [3.0, 4], unpredictable=(
            [{"index": 2, "value": 2, "error": "no answer"}] if unpredictable else [])),
    st.integers(1, 50), st.integers(1, 50), st.none() | st.just("k1"), st.booleans())


@given(completed_at_once)
def test_a_task_completed_at_once_folds_as_its_four_facts(event: TaskCompletedAtOnce) -> None:
    """The audit folds the stored text's fields (completed_at_once_parts); projectors fold
    the event's parts(): both must be the same four facts, at the one position."""
    codec = ledger_codec()
    type_name, version, text = codec.encode(event)
    fields = Decoder()(type_name, version, text)
    parts = event.parts()
    assert [(name, codec.decode(name, 2, canonical_json(data)))
            for name, data in completed_at_once_parts(fields)] == [
        (part.type_name, part) for part in parts]
    whole, four = Fold(), Fold()
    for fold in (whole, four):
        fold.apply(1, 3, 1, "AccountOpened", {"user_id": 3, "username": "bob"},
                   AT.isoformat(), AT)
        fold.apply(2, 3, 2, "CreditsDeposited", {"user_id": 3, "amount_credits": 50,
                                                 "description": "top-up"}, AT.isoformat(), AT)
    whole.apply(3, 3, 3, type_name, fields, AT.isoformat(), AT)
    for part in parts:
        four.apply(3, 3, 3, part.type_name, dict(vars(part)), AT.isoformat(), AT)
    for table in tables():
        assert whole.rows(table) == four.rows(table), table
    assert whole.rows("accounts")[0][5] == 50 - event.charged_credits
