"""get_session variants, time travel, replay, and the immutable Session snapshot."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from session_store import Event, Session, Usage
from session_store.domain.events import MessageAppended
from session_store.store import SessionStore


async def _conversation(store: SessionStore, n: int = 10) -> Session:
    session = await store.create_session(app_name="app", user_id="u", state={"n": 0})
    for index in range(n):
        role = "user" if index % 2 == 0 else "assistant"
        await store.append_event(session, Event(role=role, text=f"m{index}",
                                                state_delta={"n": index + 1}))
    found = await store.get_session(app_name="app", user_id="u", session_id=session.id)
    assert found is not None
    return found


async def test_num_recent_events(store: SessionStore) -> None:
    full = await _conversation(store)
    assert [m.text for m in full.messages] == [f"m{i}" for i in range(10)]

    async def texts(k: int | None) -> list[str | None]:
        found = await store.get_session(app_name="app", user_id="u", session_id=full.id,
                                        num_recent_events=k)
        assert found is not None
        assert found.version == full.version and found.state == full.state
        return [m.text for m in found.messages]

    assert await texts(3) == ["m7", "m8", "m9"]
    assert await texts(0) == []
    assert await texts(1) == ["m9"]
    assert await texts(100) == [f"m{i}" for i in range(10)]
    assert await texts(None) == [f"m{i}" for i in range(10)]


async def test_after_timestamp_filters_on_message_time(store: SessionStore) -> None:
    session = await store.create_session(app_name="app", user_id="u")
    await store.add_message(session, "user", "old")
    await asyncio.sleep(0.02)
    new = (await store.add_message(session, "user", "new")).data
    assert isinstance(new, MessageAppended)
    cut = new.message.timestamp
    await store.add_message(session, "user", "newer")

    async def texts(**options: object) -> list[str | None]:
        found = await store.get_session(app_name="app", user_id="u", session_id=session.id,
                                        **options)  # type: ignore[arg-type]
        assert found is not None
        return [m.text for m in found.messages]

    assert await texts(after_timestamp=cut) == ["new", "newer"]  # inclusive, like ADK
    assert await texts(after_timestamp=cut, num_recent_events=1) == ["newer"]
    assert await texts(after_timestamp=cut + 3600) == []
    assert await texts(after_timestamp=cut, at_version=3) == ["new"]


async def test_at_version_is_time_travel(store: SessionStore) -> None:
    full = await _conversation(store, 6)
    for version in range(1, full.version + 1):
        then = await store.get_session(app_name="app", user_id="u", session_id=full.id,
                                       at_version=version)
        assert then is not None
        assert then.version == version
        assert dict(then.state) == {"n": version - 1}
        assert [m.text for m in then.messages] == [f"m{i}" for i in range(version - 1)]
        assert then == await store.replay(full, to_version=version)
    assert await store.get_session(app_name="app", user_id="u", session_id=full.id,
                                   at_version=full.version) == full
    assert await store.get_session(app_name="app", user_id="u", session_id=full.id,
                                   at_version=0) is None
    assert await store.get_session(app_name="app", user_id="u", session_id=full.id,
                                   at_version=full.version + 1) is None
    recent = await store.get_session(app_name="app", user_id="u", session_id=full.id,
                                     at_version=5, num_recent_events=2)
    assert recent is not None and [m.text for m in recent.messages] == ["m2", "m3"]


async def test_at_version_sees_shared_state_as_it_was(store: SessionStore) -> None:
    session = await store.create_session(app_name="app", user_id="u",
                                         state={"app:v": 1, "user:w": 1})
    await store.update_state(session, {"app:v": 2})
    await store.update_state(session, {"user:w": 3})
    other = await store.create_session(app_name="app", user_id="u")
    await store.update_state(other, {"app:v": 99})
    expected = {1: {"app:v": 1, "user:w": 1}, 2: {"app:v": 2, "user:w": 1},
                3: {"app:v": 2, "user:w": 3}}
    for version, state in expected.items():
        then = await store.get_session(app_name="app", user_id="u", session_id=session.id,
                                       at_version=version)
        assert then is not None and dict(then.state) == state
    now = await store.get_session(app_name="app", user_id="u", session_id=session.id)
    assert now is not None and dict(now.state) == {"app:v": 99, "user:w": 3}
    assert now == await store.replay(session)


async def test_replay_equals_get_session(store: SessionStore) -> None:
    full = await _conversation(store, 5)
    await store.update_session_metadata(full, {"title": "t"})
    await store.track_interaction(full, tokens_in=3)
    await store.archive_session(full)
    now = await store.get_session(app_name="app", user_id="u", session_id=full.id)
    assert now is not None and now == await store.replay(full)


async def test_session_is_immutable(store: SessionStore) -> None:
    session = await _conversation(store, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        session.version = 99  # type: ignore[misc]
    with pytest.raises(TypeError):
        session.state["n"] = 5  # type: ignore[index]
    with pytest.raises(TypeError):
        session.metadata["x"] = 1  # type: ignore[index]
    with pytest.raises(AttributeError):
        session.events.append(session.events[0])  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        session.events[0].version = 3  # type: ignore[misc]
    with pytest.raises(AttributeError):
        session.messages[0].text = "x"  # type: ignore[misc]
    # Handing state in does not alias it.
    state = {"k": [1]}
    made = await store.create_session(app_name="app", user_id="u", state=state)
    state["k"].append(2)
    state["z"] = 1
    assert dict(made.state) == {"k": [1]}


async def test_snapshot_queries(store: SessionStore) -> None:
    session = await store.create_session(app_name="app", user_id="u")
    script = [("user", "Hello there", None, None, 100.0),
              ("assistant", "Hi! How can I help?", Usage(tokens_in=10, tokens_out=5), 1.0, 101.0),
              ("user", "Tell me about HELLO world", None, None, 102.0),
              ("assistant", "hello world is a program", Usage(tokens_in=20, tokens_out=7), 3.0,
               103.0),
              ("tool", None, None, None, 104.0)]
    for role, text, usage, response_time, timestamp in script:
        await store.append_event(session, Event(role=role, text=text, usage=usage,
                                                response_time=response_time,
                                                timestamp=timestamp,
                                                parts=[{"x": 1}] if text is None else None))
    await store.track_interaction(session, tokens_in=1, tokens_out=1, response_time=2.0)
    now = await store.get_session(app_name="app", user_id="u", session_id=session.id)
    assert now is not None
    assert [m.text for m in now.recent_messages(2)] == ["hello world is a program", None]
    assert now.recent_messages(0) == ()
    assert len(now.recent_messages(50)) == 5
    assert [m.text for m in now.messages_by_role("user")] == ["Hello there",
                                                              "Tell me about HELLO world"]
    assert now.messages_by_role("nobody") == ()
    assert [m.timestamp for m in now.messages_after(102.0)] == [102.0, 103.0, 104.0]
    assert [m.timestamp for m in now.search("hello")] == [100.0, 102.0, 103.0]
    assert now.search("absent") == ()
    stats = now.statistics()
    assert stats.messages == 5
    assert dict(stats.messages_by_role) == {"user": 2, "assistant": 2, "tool": 1}
    assert (stats.tokens_in, stats.tokens_out) == (31, 13)
    assert stats.interactions == 3
    assert stats.mean_response_time == pytest.approx(2.0)
    assert stats.p95_response_time == 3.0
    assert stats.duration == pytest.approx(now.last_update_time - now.created_at)


async def test_statistics_of_an_empty_session(store: SessionStore) -> None:
    session = await store.create_session(app_name="app", user_id="u")
    stats = session.statistics()
    assert stats.messages == 0 and stats.interactions == 0
    assert stats.mean_response_time is None and stats.p95_response_time is None
    # A tracked interaction without a response time does not count as a 0 s response.
    await store.track_interaction(session, tokens_in=5)
    await store.track_interaction(session, response_time=4.0)
    now = await store.get_session(app_name="app", user_id="u", session_id=session.id)
    assert now is not None
    stats = now.statistics()
    assert stats.interactions == 2 and stats.tokens_in == 5
    assert stats.mean_response_time == pytest.approx(4.0)


async def test_to_dict_is_json_ready(store: SessionStore) -> None:
    import json

    session = await _conversation(store, 2)
    data = session.to_dict()
    assert json.loads(json.dumps(data))["state"] == {"n": 2}
    assert len(data["events"]) == 2
