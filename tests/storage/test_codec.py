"""The codec: payload round trips, erased and unknown payloads, upcasters, batch decoding."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from session_store.domain.events import (
    Event,
    InteractionTracked,
    MessageAppended,
    PayloadErased,
    Usage,
    type_name,
)
from session_store.errors import SchemaError
from session_store.storage import codec
from session_store.storage.codec import (
    decode_payload,
    decode_tagged,
    encode_payload,
    register_upcaster,
)
from tests.domain.test_events import SAMPLES


@pytest.mark.parametrize("payload", SAMPLES, ids=type_name)
def test_round_trip_through_the_codec(payload: Any) -> None:
    data = encode_payload(payload)
    assert decode_payload(type_name(payload), type(payload).schema, data) == payload
    assert decode_tagged(data) == payload
    assert msgspec.json.decode(data)["type"] == type_name(payload)


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
    saved = dict(codec._upcasters)
    original = InteractionTracked.schema
    yield
    InteractionTracked.schema = original  # type: ignore[misc]
    codec._upcasters.clear()
    codec._upcasters.update(saved)


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


def test_decoded_events_leave_the_cyclic_collector_alone() -> None:
    """Decoding a batch of rows leaves no object the collector tracks but the list and the
    caller's containers, and inside a read's `fewer_collections()` thousands of records
    trigger no collection."""
    import gc

    from session_store.gc_pause import fewer_collections
    from session_store.storage.codec import decode_rows

    payload = MessageAppended(message=Event(role="user", text="hi", usage=Usage(tokens_in=1)))
    rows = [(i, "app", "user", "s", i, "MessageAppended", 1, encode_payload(payload),
             f"id-{i}", 1.0, "0" * 64) for i in range(1, 5_001)]
    gc.collect()
    with fewer_collections():  # as a read decodes (each message allocates its metadata dict)
        before = gc.get_stats()[0]["collections"]
        records = decode_rows(rows)
        assert gc.get_stats()[0]["collections"] == before
    assert records[-1].data == payload
    assert not gc.is_tracked(records[0]) and not gc.is_tracked(records[0].data)
