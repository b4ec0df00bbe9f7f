"""The message level: get_message, per-message metadata, newest first / last N by role,
and retractions that must name a visible message."""

from __future__ import annotations

import time

import msgspec
import pytest

from session_store import Event, Usage
from session_store.domain.events import AnyPayload, MessageAppended, SessionCreated
from session_store.domain.messages import StoredMessage
from session_store.domain.validation import MAX_MESSAGE_METADATA_BYTES
from session_store.errors import InvalidEvent, MessageNotFound, SessionNotFound
from session_store.store import SessionStore

KEY = {"app_name": "app", "user_id": "u", "session_id": "s"}


async def test_get_message_through_the_event_id_index(store: SessionStore) -> None:
    session = await store.create_session(**KEY)
    await store.append_event(session, Event(role="user", text="hi", id="m1",
                                            metadata={"lang": "en", "n": [1, {"x": None}]}))
    await store.append_event(session, Event(role="assistant", text="hello", id="m2"))
    found = await store.get_message(**KEY, message_id="m1")
    assert isinstance(found, StoredMessage)
    assert (found.id, found.text, found.role, found.version) == ("m1", "hi", "user", 2)
    assert found.metadata == {"lang": "en", "n": [1, {"x": None}]}
    assert found.visible and not found.retracted and not found.cleared
    assert (await store.get_message(**KEY, message_id="m2")).metadata == {}

    await store.retract_message(session, "m1")
    retracted = await store.get_message(**KEY, message_id="m1")
    assert retracted.retracted and not retracted.visible
    await store.clear_history(session)
    assert (await store.get_message(**KEY, message_id="m2")).cleared

    with pytest.raises(MessageNotFound):
        await store.get_message(**KEY, message_id="nope")
    other = await store.create_session(app_name="app", user_id="u", session_id="other")
    with pytest.raises(MessageNotFound):  # a message of another session is not this one's
        await store.get_message(**{**KEY, "session_id": other.id}, message_id="m2")
    with pytest.raises(SessionNotFound):
        await store.get_message(**{**KEY, "session_id": "missing"}, message_id="m2")
    with pytest.raises(InvalidEvent):
        await store.get_message(**KEY, message_id="")
    assert issubclass(MessageNotFound, SessionNotFound)


async def test_get_message_appended_under_another_event_id(store: SessionStore) -> None:
    """An adapter's `append_payloads` stores a message under a fresh event id: the history
    read model's message-id index finds it."""
    session = await store.create_session(**KEY)
    await store.append_payloads(session, [MessageAppended(message=Event(role="user",
                                                                        text="x", id="lg-1"))])
    found = await store.get_message(**KEY, message_id="lg-1")
    assert found.text == "x" and found.version == 2


async def test_metadata_is_kept_checked_and_filtered(store: SessionStore) -> None:
    session = await store.create_session(**KEY)
    tagged = [({"topic": "flights", "score": 1}, "a"), ({"topic": "hotels", "score": 1.0}, "b"),
              ({"topic": "flights", "score": True}, "c"), ({}, "d")]
    for metadata, text in tagged:
        await store.append_event(session, Event(role="user", text=text, metadata=metadata))
    loaded = await store.get_session(**KEY)
    assert loaded is not None
    assert [m.metadata for m in loaded.messages] == [m for m, _ in tagged]

    async def texts(**metadata: object) -> list[str]:
        found = await store.history.messages(**KEY, metadata=metadata)
        return [m.text for m in found]

    assert await texts(topic="flights") == ["a", "c"]
    assert await texts(topic="flights", score=1) == ["a"]  # 1, 1.0 and True differ in JSON
    assert await texts(score=1.0) == ["b"]
    assert await texts(topic="trains") == []
    assert await texts() == ["a", "b", "c", "d"]
    found = await store.history.search("c", app_name="app", metadata={"score": True})
    assert [m.text for m in found] == ["c"]
    assert (await store.history.messages(**KEY, metadata={"topic": "hotels"}))[0].metadata == {
        "topic": "hotels", "score": 1.0}

    for bad in ({"k": float("nan")}, {"k": b"x"}, {1: "x"}, ["x"],
                {"k": "x" * MAX_MESSAGE_METADATA_BYTES}, {"k": "\udc80"}):
        with pytest.raises(InvalidEvent):
            await store.append_event(session, Event(role="user", text="bad",
                                                    metadata=bad))  # type: ignore[arg-type]
    with pytest.raises(InvalidEvent):
        await store.history.messages(**KEY, metadata={"k": {1, 2}})
    assert (await store.get_session(**KEY)).version == 5  # type: ignore[union-attr]


def test_messages_stored_before_metadata_decode_with_empty_metadata() -> None:
    old = (b'{"type":"MessageAppended","message":'
           b'{"role":"user","text":"hi","id":"x","timestamp":1.0}}')
    payload = msgspec.json.decode(old, type=AnyPayload)
    assert isinstance(payload, MessageAppended) and payload.message.metadata == {}
    # and an event without metadata encodes exactly as before (chain hashes unchanged)
    assert msgspec.json.encode(payload) == old
    assert isinstance(msgspec.json.decode(b'{"type":"SessionCreated"}', type=AnyPayload),
                      SessionCreated)


async def test_newest_first_and_last_n_by_role(store: SessionStore) -> None:
    session = await store.create_session(**KEY)
    roles = ["user", "assistant", "tool", "assistant", "user", "assistant"]
    await store.append_events(session, [Event(role=r, text=f"t{i}", timestamp=100.0 + i)
                                        for i, r in enumerate(roles)])
    history = store.history

    async def texts(**options: object) -> list[str]:
        return [m.text for m in await history.messages(**KEY, **options)]  # type: ignore[arg-type]

    everything = [f"t{i}" for i in range(6)]
    assistant = [f"t{i}" for i, r in enumerate(roles) if r == "assistant"]
    assert await texts() == everything
    assert await texts(order="newest") == everything[::-1]
    assert await texts(order="newest", limit=2) == everything[::-1][:2]
    assert await texts(last=2) == everything[-2:]
    assert await texts(last=2, roles=["assistant"]) == assistant[-2:]
    assert await texts(last=2, roles=["assistant"], order="newest") == assistant[::-1][:2]
    assert await texts(last=0) == []
    assert await texts(last=99) == everything
    assert await texts(last=3, limit=2) == everything[-2:]
    assert await texts(limit=2) == everything[:2]
    for bad in ({"order": "latest"}, {"last": -1}, {"last": True}):
        with pytest.raises(InvalidEvent):
            await texts(**bad)


async def test_retracting_an_unknown_message_is_refused_and_writes_nothing(
        store: SessionStore) -> None:
    session = await store.create_session(**KEY, timeout=0.05)
    await store.append_event(session, Event(role="user", text="x", id="m1"))
    time.sleep(0.1)
    expired = await store.get_session(**KEY)
    assert expired is not None and expired.status == "expired"
    for unknown in ("nope", "m1x"):
        with pytest.raises(MessageNotFound):
            await store.retract_message(session, unknown)
    after = await store.get_session(**KEY)
    assert after is not None and (after.version, after.status) == (2, "expired")
    await store.retract_message(session, "m1")  # a visible message: taken back
    with pytest.raises(MessageNotFound):        # once
        await store.retract_message(session, "m1")
    final = await store.get_session(**KEY)
    assert final is not None and final.version == 3 and final.messages == ()


async def test_retracted_messages_do_not_count_in_analytics(store: SessionStore) -> None:
    session = await store.create_session(**KEY)
    said = [("user", None, None), ("assistant", (10, 5), 0.5), ("assistant", (20, 7), 4.0),
            ("tool", None, 2.0), ("assistant", (1, 1), 0.25)]
    for index, (role, tokens, response_time) in enumerate(said):
        usage = None if tokens is None else Usage(tokens_in=tokens[0], tokens_out=tokens[1])
        await store.append_event(session, Event(role=role, text=f"m{index}", id=f"m{index}",
                                                usage=usage, response_time=response_time))
    await store.track_interaction(session, tokens_in=3, response_time=1.0)
    await store.retract_message(session, "m2")  # the slowest: the maximum must move too
    await store.retract_message(session, "m0")
    kept = [s for i, s in enumerate(said) if i not in (0, 2)]
    times = [t for _, _, t in kept if t is not None] + [1.0]
    expected_roles: dict[str, int] = {}
    for role, _, _ in kept:
        expected_roles[role] = expected_roles.get(role, 0) + 1

    stats = await store.analytics.by_session("app", "u", "s")
    assert stats is not None
    for found in (stats, (await store.analytics.by_user("app"))[0],
                  (await store.analytics.by_app())[0], (await store.analytics.by_day("app"))[0]):
        assert found.messages == len(kept)
        assert found.messages_by_role == expected_roles
        assert found.tokens_in == sum(t[0] for _, t, _ in kept if t) + 3
        assert found.tokens_out == sum(t[1] for _, t, _ in kept if t)
        assert found.interactions == sum(1 for _, t, r in kept if t or r) + 1
        assert found.response_time.count == len(times)
        assert found.response_time.max == max(times) and found.response_time.min == min(times)
        assert found.response_time.total == pytest.approx(sum(times))
    assert (await store.verify()).ok  # a fresh fold of the log agrees
