"""Events written by the previous release (schema version 1) read as today's events with the
values the new fields stand for; today's events are written as version 2. And the SQLite
schema splitter keeps a trigger's body whole."""

from __future__ import annotations

import json

import pytest

from events.codec import canonical_json
from events.sqlite import SCHEMA, sql_statements
from ledger.events import HoldSettled, TaskCompleted, TaskRejected, TaskSubmitted, ledger_codec

V1 = {
    "TaskSubmitted": {"user_id": 1, "task_id": 2, "model_id": 1, "input_data": [1.5],
                      "input_indexes": [0], "invalid": [], "cost_credits": 1},
    "TaskRejected": {"user_id": 1, "task_id": 2, "model_id": 1, "input_data": [1.5],
                     "input_indexes": [0], "invalid": [], "cost_credits": 1,
                     "reason": "insufficient_balance"},
    "TaskCompleted": {"user_id": 1, "task_id": 2, "output_data": [3.0], "cost_credits": 1},
    "HoldSettled": {"user_id": 1, "task_id": 2, "amount_credits": 1,
                    "description": "Prediction #2"},
}
ADDED = {"TaskSubmitted": {"model_version": None}, "TaskRejected": {"model_version": None},
         "TaskCompleted": {"unpredictable": []}, "HoldSettled": {"released_credits": 0}}


@pytest.mark.parametrize("type_name", sorted(V1))
def test_a_v1_event_reads_with_the_new_fields_at_their_old_meaning(type_name: str) -> None:
    event = ledger_codec().decode(type_name, 1, canonical_json(V1[type_name]))
    for name, value in {**V1[type_name], **ADDED[type_name]}.items():
        assert getattr(event, name) == value


@pytest.mark.parametrize("cls", [TaskSubmitted, TaskRejected, TaskCompleted, HoldSettled])
def test_events_that_changed_shape_are_written_as_version_2(cls: type) -> None:
    assert cls.schema_version == 2


def test_a_v2_event_round_trips_with_its_new_fields() -> None:
    codec = ledger_codec()
    event = TaskCompleted(user_id=1, task_id=2, output_data=[{"label": "a", "probabilities": {
        "a": 0.75, "b": 0.25}}, None], cost_credits=1, unpredictable=[
        {"index": 1, "value": [1, 2], "error": "not finite", "errors": {"_row": ["x"]}}])
    type_name, version, text = codec.encode(event)
    assert (type_name, version) == ("TaskCompleted", 2)
    assert json.loads(text)["unpredictable"][0]["index"] == 1
    assert codec.decode(type_name, version, text) == event


def test_the_schema_splits_into_whole_statements_triggers_included() -> None:
    statements = sql_statements(SCHEMA)
    assert len(statements) == 3
    assert statements[1].startswith("CREATE TRIGGER IF NOT EXISTS events_no_update")
    assert statements[1].endswith("END;")
