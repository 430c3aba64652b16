"""The codec (type names, JSON, upcasters) and the hash that chains each row to the last."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from events import GENESIS_HASH, Event, EventCodec, UnknownEventType, chain_hash
from events.codec import canonical_json
from ledger.events import ALL_EVENTS, CreditsDeposited, TaskSubmitted, ledger_codec


@dataclasses.dataclass(frozen=True, kw_only=True)
class PriceChanged(Event, type_name="PriceChanged", schema_version=2):
    """Version 1 stored `price`, a float of whole units; version 2 stores integer credits."""

    model_id: int
    price_credits: int
    currency: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class Renamed(Event, type_name="CreditsDeposited"):
    user_id: int


def upcast_v1_v2(data: dict[str, Any]) -> dict[str, Any]:
    return {"model_id": data["model_id"], "price_credits": int(data.pop("price")),
            "currency": "credits"}


def test_every_ledger_event_survives_a_round_trip() -> None:
    codec = ledger_codec()
    event = TaskSubmitted(user_id=1, task_id=2, model_id=1, input_data=[1.5, -0.0, 1e308],
                          input_indexes=[0, 2, 3],
                          invalid=[{"index": 1, "value": "x", "error": "not a number"}],
                          cost_credits=3, model_version="0123456789ab")
    type_name, version, data_json = codec.encode(event)
    assert (type_name, version) == ("TaskSubmitted", 2)
    assert codec.decode(type_name, version, data_json) == event
    assert {cls.type_name for cls in ALL_EVENTS} == {
        "AccountOpened", "CreditsDeposited", "CreditsWithdrawn", "TaskSubmitted", "CreditsHeld",
        "HoldSettled", "HoldReleased", "TaskCompleted", "TaskFailed", "TaskRejected",
        "TaskCompletedAtOnce", "TimeZoneSet", "LimitsSet", "KeyCreated", "KeyRevoked",
        "CreditsAdjusted", "AccountSuspended", "AccountResumed", "OperatorRoleGranted",
        "OperatorRoleRevoked"}


def test_encoding_is_canonical_so_equal_events_hash_alike() -> None:
    codec = ledger_codec()
    event = CreditsDeposited(user_id=1, amount_credits=5, description="Top-up ✓")
    assert codec.encode(event)[2] == \
        '{"amount_credits":5,"description":"Top-up ✓","user_id":1}'


def test_canonical_json_refuses_nan() -> None:
    with pytest.raises(ValueError, match="JSON compliant"):
        canonical_json([float("nan")])


def test_an_unregistered_type_is_refused_both_ways() -> None:
    codec = EventCodec()
    with pytest.raises(UnknownEventType):
        codec.encode(PriceChanged(model_id=1, price_credits=2, currency="credits"))
    with pytest.raises(UnknownEventType, match="Mystery"):
        codec.decode("Mystery", 1, "{}")


def test_a_class_whose_name_clashes_is_refused_not_silently_swapped() -> None:
    codec = ledger_codec()
    codec.register(CreditsDeposited)  # the same class again is harmless
    with pytest.raises(ValueError, match="registered twice"):
        codec.register(Renamed)
    stored = codec.encode(CreditsDeposited(user_id=1, amount_credits=5, description="x"))
    assert isinstance(codec.decode(*stored), CreditsDeposited)
    with pytest.raises(UnknownEventType):  # nor can the impostor be written under that name
        codec.encode(Renamed(user_id=1))


def test_an_upcaster_reads_old_stored_data_as_the_current_schema() -> None:
    codec = EventCodec()
    codec.register(PriceChanged)
    codec.register_upcaster("PriceChanged", 1, upcast_v1_v2)
    old = codec.decode("PriceChanged", 1, '{"model_id":3,"price":2.0}')
    assert old == PriceChanged(model_id=3, price_credits=2, currency="credits")
    assert type(old.price_credits) is int
    current = PriceChanged(model_id=3, price_credits=7, currency="credits")
    assert codec.encode(current)[1] == 2
    assert codec.decode(*codec.encode(current)) == current


def test_old_data_without_an_upcaster_is_not_guessed_at() -> None:
    codec = EventCodec()
    codec.register(PriceChanged)
    with pytest.raises(KeyError):
        codec.decode("PriceChanged", 1, '{"model_id":3,"price":2.0}')


ROW: dict[str, Any] = {
    "position": 3, "stream_id": "account-1", "version": 2, "type_name": "CreditsDeposited",
    "schema_version": 1, "data_json": '{"amount_credits":5}', "metadata_json": "{}",
    "recorded_at": "2026-01-01T00:00:00.000000+00:00"}
CHANGED: dict[str, Any] = {
    "position": 4, "stream_id": "account-2", "version": 3, "type_name": "CreditsWithdrawn",
    "schema_version": 2, "data_json": '{"amount_credits":6}', "metadata_json": '{"actor":"x"}',
    "recorded_at": "2026-01-01T00:00:00.000001+00:00"}


def row_hash(previous_hash: str = GENESIS_HASH, **changes: Any) -> str:
    return chain_hash(previous_hash, **{**ROW, **changes})


def test_chain_hash_is_a_sha256_of_the_row_and_its_predecessor() -> None:
    first = row_hash()
    assert len(first) == 64 and int(first, 16) >= 0
    assert first == row_hash()
    assert row_hash(first) != first


@pytest.mark.parametrize("field", sorted(ROW))
def test_chain_hash_changes_when_any_field_changes(field: str) -> None:
    assert row_hash(**{field: CHANGED[field]}) != row_hash()


def test_chain_hash_changes_with_the_previous_hash() -> None:
    assert row_hash("1" * 64) != row_hash()


def test_chain_hash_does_not_confuse_a_field_boundary() -> None:
    # "ab" + "c" and "a" + "bc" must not hash alike: the fields are encoded, not concatenated.
    assert row_hash(stream_id="ab", type_name="c") != row_hash(stream_id="a", type_name="bc")
