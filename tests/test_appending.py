"""Appending table of API.md: runner events, idempotency, concurrency, state scopes."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from session_store import (
    ConcurrencyError,
    Event,
    InvalidEvent,
    Session,
    SessionClosed,
    Usage,
)
from session_store.domain.events import MessageAppended
from session_store.store import SessionStore
from tests.kit import unchanged


async def fresh(store: SessionStore, session: Session) -> Session:
    found = await store.get_session(app_name=session.app_name, user_id=session.user_id,
                                    session_id=session.id)
    assert found is not None
    return found


async def test_append_event_records_every_field(store: SessionStore) -> None:
    session = await store.create_session(app_name="app", user_id="u")
    event = Event(role="assistant", author="planner", text="Hello", parts=[{"text": "Hello"}],
                  invocation_id="inv-1", state_delta={"step": 2},
                  usage=Usage(tokens_in=12, tokens_out=34, model="m-1"), response_time=0.25,
                  native={"adk": {"id": "x"}}, timestamp=1_700_000_000.5)
    recorded = await store.append_event(session, event)
    assert recorded.version == 2 and recorded.type == "MessageAppended"
    assert isinstance(recorded.data, MessageAppended)
    assert recorded.data.message == event
    assert recorded.event_id == event.id
    now = await fresh(store, session)
    assert now.version == 2
    assert now.events == (recorded,)  # read-your-writes: the caller's record is what is stored
    assert dict(now.state) == {"step": 2}
    (message,) = now.messages
    assert (message.author, message.role, message.text, message.invocation_id) == (
        "planner", "assistant", "Hello", "inv-1")
    assert message.usage == Usage(tokens_in=12, tokens_out=34, model="m-1")
    assert message.response_time == 0.25 and message.timestamp == 1_700_000_000.5


async def test_author_defaults_to_role(store: SessionStore) -> None:
    session = await store.create_session(app_name="app", user_id="u")
    recorded = await store.add_message(session, "user", "hi")
    assert isinstance(recorded.data, MessageAppended)
    assert recorded.data.message.author == "user"


async def test_resending_an_event_id_is_a_no_op(store: SessionStore) -> None:
    session = await store.create_session(app_name="app", user_id="u")
    event = Event(role="user", text="once", id="evt-1", state_delta={"user:n": 1, "k": 1})
    first = await store.append_event(session, event)
    before = await store.log.last_position()
    again = await store.append_event(session, event)
    assert again == first
    assert await store.log.last_position() == before
    # Even with a stale expected version the replay answers with the stored record.
    assert await store.append_event(session, event, expected_version=1) == first
    now = await fresh(store, session)
    assert now.version == 2 and len(now.events) == 1
    # The same id in another session is refused.
    other = await store.create_session(app_name="app", user_id="u")
    await unchanged(store, lambda: store.append_event(other, event), InvalidEvent)


async def test_expected_version(store: SessionStore) -> None:
    session = await store.create_session(app_name="app", user_id="u")
    await store.append_event(session, Event(role="user", text="a"), expected_version=1)
    await unchanged(store, lambda: store.append_event(session, Event(role="user", text="b"),
                                                      expected_version=1), ConcurrencyError)
    await unchanged(store, lambda: store.update_state(session, {"app:x": 1},
                                                      expected_version=5), ConcurrencyError)
    await store.append_event(session, Event(role="user", text="c"), expected_version=2)
    assert (await fresh(store, session)).version == 3


async def test_racing_appends_with_one_expected_version(store: SessionStore) -> None:
    session = await store.create_session(app_name="app", user_id="u")
    results = await asyncio.gather(
        *(store.append_event(session, Event(role="user", text=str(i)), expected_version=1)
          for i in range(8)), return_exceptions=True)
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert sum(isinstance(r, ConcurrencyError) for r in results) == 7
    assert (await fresh(store, session)).version == 2


async def test_concurrent_appends_all_land(store: SessionStore) -> None:
    session = await store.create_session(app_name="app", user_id="u")
    await asyncio.gather(*(store.add_message(session, "user", str(i)) for i in range(30)))
    now = await fresh(store, session)
    assert now.version == 31
    assert sorted(int(m.text or "") for m in now.messages) == list(range(30))


async def test_add_message_passes_fields(store: SessionStore) -> None:
    session = await store.create_session(app_name="app", user_id="u")
    await store.add_message(session, "tool", "42", author="calc", invocation_id="i",
                            usage=Usage(tokens_in=1), response_time=1.5)
    (message,) = (await fresh(store, session)).messages
    assert (message.role, message.text, message.author, message.invocation_id) == (
        "tool", "42", "calc", "i")
    await unchanged(store, lambda: store.add_message(session, "user", "x", bogus=1),
                    InvalidEvent)


async def test_update_state_and_metadata(store: SessionStore) -> None:
    session = await store.create_session(app_name="app", user_id="u", state={"a": 1},
                                         metadata={"x": 1, "y": 2})
    await store.update_state(session, {"b": 2, "a": None})
    await store.update_session_metadata(session, {"y": 3, "z": 4})
    now = await fresh(store, session)
    assert dict(now.state) == {"a": None, "b": 2}
    assert dict(now.metadata) == {"x": 1, "y": 3, "z": 4}
    await store.update_session_metadata(session, {"only": True}, merge=False)
    assert dict((await fresh(store, session)).metadata) == {"only": True}


async def test_track_interaction(store: SessionStore) -> None:
    session = await store.create_session(app_name="app", user_id="u")
    await store.track_interaction(session, tokens_in=10, tokens_out=20, response_time=0.5,
                                  model="m")
    await store.track_interaction(session, tokens_in=1, tokens_out=2, response_time=1.5)
    now = await fresh(store, session)
    assert now.version == 3 and now.events == ()
    stats = now.statistics()
    assert (stats.tokens_in, stats.tokens_out, stats.interactions) == (11, 22, 2)
    assert stats.mean_response_time == pytest.approx(1.0)


async def test_clear_history_keeps_the_log(store: SessionStore) -> None:
    session = await store.create_session(app_name="app", user_id="u")
    for text in ("a", "b"):
        await store.add_message(session, "user", text)
    await store.update_state(session, {"k": 1})
    await store.clear_history(session)
    assert (await fresh(store, session)).events == ()
    await store.add_message(session, "user", "c")
    now = await fresh(store, session)
    assert [m.text for m in now.messages] == ["c"]
    assert dict(now.state) == {"k": 1}  # state survives a history clear
    assert [e.type async for e in store.read_stream(session)].count("MessageAppended") == 3
    assert now == await store.replay(session)


async def test_commands_accept_a_session_key_or_tuple(store: SessionStore) -> None:
    session = await store.create_session(app_name="app", user_id="u")
    await store.add_message(session.key, "user", "via key")
    await store.add_message(("app", "u", session.id), "user", "via tuple")
    assert len((await fresh(store, session)).events) == 2
    await unchanged(store, lambda: store.add_message("app/u/s", "user", "x"),  # type: ignore[arg-type]
                    InvalidEvent)


# --- state scopes ------------------------------------------------------------------------

async def test_state_scopes(store: SessionStore) -> None:
    a1 = await store.create_session(app_name="app", user_id="ann",
                                    state={"app:theme": "dark", "user:lang": "fr", "own": 1,
                                           "temp:scratch": "x"})
    assert dict(a1.state) == {"app:theme": "dark", "user:lang": "fr", "own": 1}
    a2 = await store.create_session(app_name="app", user_id="ann")
    b1 = await store.create_session(app_name="app", user_id="bob")
    other_app = await store.create_session(app_name="other", user_id="ann")
    assert dict((await fresh(store, a2)).state) == {"app:theme": "dark", "user:lang": "fr"}
    assert dict((await fresh(store, b1)).state) == {"app:theme": "dark"}
    assert dict((await fresh(store, other_app)).state) == {}
    # Shared keys written through one session show in the others, now.
    await store.append_event(b1, Event(role="user", text="x",
                                       state_delta={"app:theme": "light", "user:lang": "de",
                                                    "temp:t": 1, "mine": True}))
    assert dict((await fresh(store, a1)).state) == {"app:theme": "light", "user:lang": "fr",
                                                    "own": 1}
    assert dict((await fresh(store, b1)).state) == {"app:theme": "light", "user:lang": "de",
                                                    "mine": True}
    await store.update_state(a2, {"user:lang": "en", "temp:t": 2})
    assert (await fresh(store, a1)).state["user:lang"] == "en"
    assert (await fresh(store, b1)).state["user:lang"] == "de"
    # temp: keys reach neither the log nor any read.
    async for record in store.read_all():
        assert b"temp:" not in msgspec.json.encode(record.data)
    for session in (a1, a2, b1):
        now = await fresh(store, session)
        assert not any(k.startswith("temp:") for k in now.state)
        assert now == await store.replay(session)
    summaries = (await store.list_sessions(app_name="app", user_id="ann")).sessions
    assert all(s.state["user:lang"] == "en" and s.state["app:theme"] == "light"
               for s in summaries)


async def test_a_refused_append_writes_no_shared_state(store: SessionStore) -> None:
    session = await store.create_session(app_name="app", user_id="u")
    await store.end_session(session)
    other = await store.create_session(app_name="app", user_id="u")
    await unchanged(store, lambda: store.update_state(session, {"app:x": 1, "user:y": 2}),
                    SessionClosed)
    assert dict((await fresh(store, other)).state) == {}



async def test_append_events_lands_together_or_not_at_all(store: SessionStore) -> None:
    session = await store.create_session(app_name="app", user_id="u")
    batch = [Event(role="user", text="q", state_delta={"user:lang": "fr", "n": 1}),
             Event(role="assistant", text="a", state_delta={"n": 2, "temp:scratch": 1})]
    records = await store.append_events(session, batch)
    assert [r.version for r in records] == [2, 3]
    now = await fresh(store, session)
    assert [m.text for m in now.messages] == ["q", "a"]
    assert dict(now.state) == {"n": 2, "user:lang": "fr"}
    assert await store.append_events(session, batch) == records  # idempotent re-send
    before = await store.log.last_position()
    with pytest.raises(ConcurrencyError):
        await store.append_events(session, [Event(role="user", text="late")],
                                  expected_version=1)
    with pytest.raises(InvalidEvent):
        await store.append_events(session, [Event(role="user", text="ok"), Event(role="")])
    assert await store.log.last_position() == before
    assert (await fresh(store, session)).version == 3


async def test_retract_message_hides_it_and_keeps_the_log(store: SessionStore) -> None:
    session = await store.create_session(app_name="app", user_id="u")
    kept = await store.add_message(session, "user", "keep me")
    dropped = await store.add_message(session, "assistant", "take me back")
    assert isinstance(dropped.data, MessageAppended)
    await store.retract_message(session, dropped.data.message.id)
    now = await fresh(store, session)
    assert [m.text for m in now.messages] == ["keep me"]
    assert [e.type for e in [r async for r in store.read_stream(session)]] == [
        "SessionCreated", "MessageAppended", "MessageAppended", "MessageRetracted"]
    assert kept.version == 2


async def test_user_and_app_state_outlive_the_sessions_that_wrote_them(
        store: SessionStore) -> None:
    first = await store.create_session(app_name="app", user_id="u",
                                       state={"app:theme": "dark", "user:lang": "fr", "own": 1})
    await store.delete_session(app_name="app", user_id="u", session_id=first.id)
    assert await store.get_user_state(app_name="app", user_id="u") == {"lang": "fr"}
    assert await store.get_app_state(app_name="app") == {"theme": "dark"}
    assert await store.get_user_state(app_name="app", user_id="someone-else") == {}
    assert await store.get_app_state(app_name="other-app") == {}
