"""The vocabulary: payload types, their tags, the message event and the session key."""

from __future__ import annotations

import msgspec
import pytest

from session_store.domain.events import (
    PAYLOAD_TYPES,
    AnyPayload,
    ChannelValue,
    CheckpointRef,
    CheckpointSaved,
    CheckpointsRemoved,
    Event,
    ForkCreated,
    HistoryCompacted,
    HistoryRewound,
    HistoryTrimmed,
    InteractionTracked,
    MessageAppended,
    MetadataChanged,
    PendingWrite,
    PendingWritesSaved,
    RetentionSet,
    ScopePurged,
    SessionCreated,
    SessionForked,
    SessionKey,
    StateChanged,
    TypedValue,
    Usage,
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
    # A serializer's typed bytes (any byte, NUL and invalid UTF-8 included) read back as given.
    CheckpointSaved(ns="sub", checkpoint_id="c2", parent_id="c1",
                    checkpoint=TypedValue(type="msgpack", value=b"\x00\xff\x80abc"),
                    metadata=TypedValue(type="msgpack", value=b"\x81"), run_id="r",
                    values=[ChannelValue(channel="messages", version="2",
                                         value=TypedValue(type="bytes", value=bytes(range(256))))]),
    PendingWritesSaved(checkpoint_id="c2", task_id="t", task_path="~p",
                       writes=[PendingWrite(idx=-3, channel="__interrupt__",
                                            value=TypedValue(type="empty", value=b""))]),
    CheckpointsRemoved(checkpoints=[CheckpointRef(checkpoint_id="c1")], reason="prune"),
    RetentionSet(archive_after=86400.0, max_messages=1000),
    HistoryTrimmed(through_version=7, kept=3),
    SessionForked(source_app_name="a", source_user_id="u", source_session_id="s",
                  at_version=3, state={"k": [1]}),
    ForkCreated(app_name="a", user_id="u", session_id="f", at_version=3),
    HistoryRewound(to_version=2, state={"k": 1}, history_from=1, retracted=["m"],
                   hidden=[(4, 6)], summary_version=3),
    HistoryCompacted(summary=Event(role="system", text="so far", id="e9", timestamp=2.0),
                     through_version=7),
]


def test_every_payload_type_is_registered_under_its_class_name() -> None:
    assert all(name == cls.__name__ for name, cls in PAYLOAD_TYPES.items())
    assert len(PAYLOAD_TYPES) == 25


def test_a_state_change_written_before_the_scope_link_still_decodes() -> None:
    """`StateChanged.session_id`/`user_id` are optional and omitted when unset: old payloads
    read back unlinked, and a session's own change encodes as it always did."""
    old = msgspec.json.decode(b'{"type":"StateChanged","delta":{"user:a":1}}', type=AnyPayload)
    assert old == StateChanged(delta={"user:a": 1}) and old.session_id is None
    assert msgspec.json.encode(old) == b'{"type":"StateChanged","delta":{"user:a":1}}'
    linked = StateChanged(delta={"app:a": 1}, session_id="s", user_id="u")
    assert msgspec.json.decode(msgspec.json.encode(linked), type=AnyPayload) == linked
    purged = ScopePurged(event_ids=["e1", "e2"], session_id="s", reason="r")
    assert msgspec.json.decode(msgspec.json.encode(purged), type=AnyPayload) == purged


def test_payloads_are_frozen() -> None:
    payload = StateChanged(delta={"a": 1})
    with pytest.raises(AttributeError):
        payload.delta = {}  # type: ignore[misc]


def test_event_defaults_and_key() -> None:
    event = Event(role="user", text="x")
    assert event.speaker == "user" and event.id and event.timestamp > 0
    assert SessionKey("a", "u", "s") == ("a", "u", "s")
