"""The vocabulary and its codec: round trips, tags, schema versions, upcasters."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from session_store import events
from session_store.errors import SchemaError
from session_store.events import (
    PAYLOAD_TYPES,
    Event,
    InteractionTracked,
    MessageAppended,
    MetadataChanged,
    PayloadErased,
    SessionCreated,
    SessionKey,
    StateChanged,
    Usage,
    decode_payload,
    decode_tagged,
    encode_payload,
    new_id,
    new_ids,
    register_upcaster,
    type_name,
)

SAMPLES = [
    SessionCreated(state={"a": 1}, metadata={"m": [1, 2]}, tags=["x"], timeout=60.0),
    MessageAppended(message=Event(role="assistant", text="hi", author="bot",
                                  usage=Usage(tokens_in=3, tokens_out=4, model="m"),
                                  state_delta={"k": {"n": None}}, response_time=0.25,
                                  native={"adk": [1, "two"]}, id="e1", timestamp=1.5)),
    StateChanged(delta={"user:name": "Ada", "count": 2}),
    MetadataChanged(patch={"title": "t"}, merge=False),
    InteractionTracked(tokens_in=1, tokens_out=2, response_time=0.5, model="gpt"),
]


@pytest.mark.parametrize("payload", SAMPLES, ids=type_name)
def test_round_trip_through_the_codec(payload: Any) -> None:
    data = encode_payload(payload)
    assert decode_payload(type_name(payload), type(payload).schema, data) == payload
    assert decode_tagged(data) == payload
    assert msgspec.json.decode(data)["type"] == type_name(payload)


def test_every_payload_type_is_registered_under_its_class_name() -> None:
    assert all(name == cls.__name__ for name, cls in PAYLOAD_TYPES.items())
    assert len(PAYLOAD_TYPES) == 14


def test_payloads_are_frozen() -> None:
    payload = StateChanged(delta={"a": 1})
    with pytest.raises(AttributeError):
        payload.delta = {}  # type: ignore[misc]


def test_empty_stored_bytes_read_as_an_erased_payload() -> None:
    assert decode_payload("StateChanged", 1, b"") == PayloadErased(original_type="StateChanged")


def test_unknown_type_is_a_schema_error() -> None:
    with pytest.raises(SchemaError, match="unknown event type 'Teleported'"):
        decode_payload("Teleported", 1, b'{"type":"Teleported"}')


def test_newer_payload_schema_is_a_schema_error() -> None:
    with pytest.raises(SchemaError, match="newer"):
        decode_payload("StateChanged", 2, b'{"type":"StateChanged","delta":{}}')


@pytest.fixture
def schema_two() -> Iterator[None]:
    """Pretend the code moved `InteractionTracked` to schema 2 (and later 3)."""
    saved = dict(events._upcasters)
    original = InteractionTracked.schema
    yield
    InteractionTracked.schema = original  # type: ignore[misc]
    events._upcasters.clear()
    events._upcasters.update(saved)


def test_old_bytes_decode_through_registered_upcasters(schema_two: None) -> None:
    # Schema 1 of this fake history called the fields "prompt_tokens"/"latency";
    # schema 2 renamed them, schema 3 added "model".
    old = b'{"type":"InteractionTracked","prompt_tokens":7,"tokens_out":9,"latency":1.25}'

    def one_to_two(raw: dict[str, Any]) -> dict[str, Any]:
        raw["tokens_in"] = raw.pop("prompt_tokens")
        raw["response_time"] = raw.pop("latency")
        return raw

    def two_to_three(raw: dict[str, Any]) -> dict[str, Any]:
        raw.setdefault("model", "unknown")
        return raw

    InteractionTracked.schema = 3  # type: ignore[misc]
    register_upcaster("InteractionTracked", 1, one_to_two)
    register_upcaster("InteractionTracked", 2, two_to_three)
    decoded = decode_payload("InteractionTracked", 1, old)
    assert decoded == InteractionTracked(tokens_in=7, tokens_out=9, response_time=1.25,
                                         model="unknown")
    # Bytes written under schema 2 only run the second step.
    newer = b'{"type":"InteractionTracked","tokens_in":1,"response_time":0.5}'
    assert decode_payload("InteractionTracked", 2, newer).model == "unknown"  # type: ignore[union-attr]


def test_missing_upcaster_is_a_schema_error(schema_two: None) -> None:
    InteractionTracked.schema = 2  # type: ignore[misc]
    with pytest.raises(SchemaError, match="no upcaster registered for InteractionTracked schema 1"):
        decode_payload("InteractionTracked", 1, b'{"type":"InteractionTracked"}')


def test_event_defaults_and_key() -> None:
    event = Event(role="user", text="x")
    assert event.speaker == "user" and event.id and event.timestamp > 0
    assert SessionKey("a", "u", "s") == ("a", "u", "s")


def test_new_ids_are_canonical_time_ordered_uuids_and_distinct() -> None:
    import time
    import uuid

    before = time.time_ns() // 1_000_000
    ids = new_ids(2_000) + [new_id() for _ in range(2_000)]
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == len(ids)
    stamps = []
    for text in ids:
        parsed = uuid.UUID(text)
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122 and str(parsed) == text
        stamps.append(parsed.int >> 80)
    assert all(before <= stamp <= after for stamp in stamps)
    assert stamps == sorted(stamps)  # made later, sorts later: the index grows at its edge


def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    import os

    new_id()  # fill the pool
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.write(write_end, "".join(new_ids(8)).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read_end, 10_000).decode()
    assert not any(i in child for i in new_ids(8))


def test_decoded_events_leave_the_cyclic_collector_alone() -> None:
    """Decoding a batch of rows allocates no object the collector tracks but the list
    and the caller's containers: thousands of records trigger no collection."""
    import gc

    from session_store.records import decode_rows

    payload = MessageAppended(message=Event(role="user", text="hi", usage=Usage(tokens_in=1)))
    rows = [(i, "app", "user", "s", i, "MessageAppended", 1, encode_payload(payload),
             f"id-{i}", 1.0, "0" * 64) for i in range(1, 5_001)]
    gc.collect()
    before = gc.get_stats()[0]["collections"]
    records = decode_rows(rows)
    assert gc.get_stats()[0]["collections"] == before
    assert records[-1].data == payload
    assert not gc.is_tracked(records[0]) and not gc.is_tracked(records[0].data)
