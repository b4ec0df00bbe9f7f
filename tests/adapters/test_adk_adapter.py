"""Contract tests of the Google ADK session service, on SQLite and PostgreSQL.

The expectations are those of ADK 2.x's own services (`DatabaseSessionService`,
`SqliteSessionService`, `InMemorySessionService`); where a test says "like ADK"
the same scenario is also run through `InMemorySessionService` and compared.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from google.adk.errors import StaleSessionError
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events import Event as AdkEvent
from google.adk.events import EventActions
from google.adk.sessions import BaseSessionService, InMemorySessionService, Session
from google.adk.sessions.base_session_service import GetSessionConfig
from google.genai import types

from session_store.adapters.adk import EventSourcedSessionService
from session_store.domain.events import MessageAppended
from session_store.store import open_store

APP = "app"


@pytest.fixture
async def service(store_url: str) -> AsyncIterator[EventSourcedSessionService]:
    async with EventSourcedSessionService(store_url) as opened:
        yield opened


def text_event(
    text: str,
    *,
    author: str = "agent",
    delta: dict[str, Any] | None = None,
    timestamp: float | None = None,
    partial: bool | None = None,
    event_id: str | None = None,
) -> AdkEvent:
    fields: dict[str, Any] = {}
    if timestamp is not None:
        fields["timestamp"] = timestamp
    if event_id is not None:
        fields["id"] = event_id
    return AdkEvent(
        author=author,
        invocation_id="inv-1",
        partial=partial,
        content=types.Content(
            role="user" if author == "user" else "model", parts=[types.Part(text=text)]
        ),
        actions=EventActions(state_delta=delta or {}),
        **fields,
    )


def rich_event() -> AdkEvent:
    """An event using most of what ADK can put in one: calls, bytes, actions, usage."""
    return AdkEvent(
        author="planner",
        invocation_id="inv-9",
        branch="root.planner",
        model_version="gemini-2.5-flash",
        custom_metadata={"trace": [1, 2, {"x": None}]},
        long_running_tool_ids={"call-2", "call-1"},
        content=types.Content(
            role="model",
            parts=[
                types.Part(text="thinking...", thought=True),
                types.Part(text="Here is the chart."),
                types.Part(inline_data=types.Blob(mime_type="image/png", data=b"\x89PNG\x00\xff")),
                types.Part(
                    function_call=types.FunctionCall(
                        id="call-1", name="plot", args={"xs": [1, 2.5], "title": "é"}
                    )
                ),
            ],
        ),
        actions=EventActions(
            state_delta={"chart": {"n": 2}, "user:theme": "dark"},
            artifact_delta={"chart.png": 3},
            transfer_to_agent="reviewer",
            escalate=False,
        ),
        usage_metadata=types.GenerateContentResponseUsageMetadata(
            prompt_token_count=120, candidates_token_count=30, thoughts_token_count=5,
            total_token_count=155,
        ),
    )


async def test_create_with_client_id_and_state(service: EventSourcedSessionService) -> None:
    created = await service.create_session(
        app_name=APP, user_id="u1", session_id="s1", state={"k": 1, "nested": {"a": [1]}}
    )
    assert (created.id, created.app_name, created.user_id) == ("s1", APP, "u1")
    assert created.state == {"k": 1, "nested": {"a": [1]}}
    assert created.events == []
    assert created.last_update_time > 0
    got = await service.get_session(app_name=APP, user_id="u1", session_id="s1")
    assert got is not None
    assert got.state == created.state
    assert got.events == []


async def test_create_generates_an_id(service: EventSourcedSessionService) -> None:
    first = await service.create_session(app_name=APP, user_id="u1")
    second = await service.create_session(app_name=APP, user_id="u1")
    assert first.id and second.id and first.id != second.id
    assert await service.get_session(app_name=APP, user_id="u1", session_id=first.id)


async def test_duplicate_id_is_already_exists(service: EventSourcedSessionService) -> None:
    await service.create_session(app_name=APP, user_id="u1", session_id="s1")
    with pytest.raises(AlreadyExistsError):
        await service.create_session(app_name=APP, user_id="u1", session_id="s1")
    # The same id under another user is another session (ADK allows it).
    other = await service.create_session(app_name=APP, user_id="u2", session_id="s1")
    assert other.user_id == "u2"


async def test_missing_or_foreign_session_is_none(service: EventSourcedSessionService) -> None:
    await service.create_session(app_name=APP, user_id="u1", session_id="s1")
    assert await service.get_session(app_name=APP, user_id="u1", session_id="nope") is None
    assert await service.get_session(app_name=APP, user_id="u2", session_id="s1") is None
    assert await service.get_session(app_name="other", user_id="u1", session_id="s1") is None


async def test_scoped_state_is_shared_as_adk_shares_it(
    service: EventSourcedSessionService,
) -> None:
    await service.create_session(
        app_name=APP, user_id="u1", session_id="a",
        state={"app:motd": "hi", "user:lang": "fr", "temp:x": 1, "own": "a"},
    )
    b = await service.create_session(app_name=APP, user_id="u1", session_id="b")
    c = await service.create_session(app_name=APP, user_id="u2", session_id="c")
    assert b.state == {"app:motd": "hi", "user:lang": "fr"}
    assert c.state == {"app:motd": "hi"}

    await service.append_event(b, text_event("x", delta={"user:lang": "de", "app:motd": "yo"}))
    a = await service.get_session(app_name=APP, user_id="u1", session_id="a")
    c2 = await service.get_session(app_name=APP, user_id="u2", session_id="c")
    assert a is not None and c2 is not None
    assert a.state == {"app:motd": "yo", "user:lang": "de", "own": "a"}
    assert c2.state == {"app:motd": "yo"}
    assert await service.get_user_state(app_name=APP, user_id="u1") == {"lang": "de"}
    assert await service.get_user_state(app_name=APP, user_id="u2") == {}
    assert await service.get_user_state(app_name=APP, user_id="nobody") == {}


async def test_append_updates_the_callers_session_in_place(
    service: EventSourcedSessionService,
) -> None:
    session = await service.create_session(app_name=APP, user_id="u1", session_id="s1")
    before = session.last_update_time
    await asyncio.sleep(0.01)
    event = text_event("hello", delta={"count": 1})
    returned = await service.append_event(session, event)
    assert returned is event
    assert session.events == [event]
    assert session.state == {"count": 1}
    assert session.last_update_time > before
    # And the next append through the same object is not mistaken for a stale one.
    await service.append_event(session, text_event("again", delta={"count": 2}))
    got = await service.get_session(app_name=APP, user_id="u1", session_id="s1")
    assert got is not None
    assert got.state == {"count": 2}
    assert [e.id for e in got.events] == [e.id for e in session.events]
    assert got.last_update_time >= session.last_update_time - 1e-6


async def test_partial_events_are_not_persisted(service: EventSourcedSessionService) -> None:
    session = await service.create_session(app_name=APP, user_id="u1", session_id="s1")
    partial = text_event("stream chunk", delta={"k": 1}, partial=True)
    assert await service.append_event(session, partial) is partial
    assert session.events == [] and session.state == {}
    got = await service.get_session(app_name=APP, user_id="u1", session_id="s1")
    assert got is not None and got.events == [] and got.state == {}


async def test_temp_state_lives_in_memory_only(service: EventSourcedSessionService) -> None:
    session = await service.create_session(app_name=APP, user_id="u1", session_id="s1")
    event = text_event("x", delta={"temp:scratch": "draft", "kept": True})
    await service.append_event(session, event)
    assert session.state == {"temp:scratch": "draft", "kept": True}
    assert event.actions.state_delta == {"kept": True}
    got = await service.get_session(app_name=APP, user_id="u1", session_id="s1")
    assert got is not None
    assert got.state == {"kept": True}
    assert got.events[0].actions.state_delta == {"kept": True}


async def test_events_round_trip_losslessly(
    service: EventSourcedSessionService, store_url: str
) -> None:
    session = await service.create_session(app_name=APP, user_id="u1", session_id="s1")
    user = text_event("draw it", author="user")
    rich = rich_event()
    await service.append_event(session, user)
    await service.append_event(session, rich)
    await service.close()

    async with EventSourcedSessionService(store_url) as reopened:
        got = await reopened.get_session(app_name=APP, user_id="u1", session_id="s1")
    assert got is not None
    assert got.events == [user, rich]
    back = got.events[1]
    assert back.id == rich.id and back.timestamp == rich.timestamp
    assert back.content is not None and back.content.parts is not None
    assert back.content.parts[2].inline_data is not None
    assert back.content.parts[2].inline_data.data == b"\x89PNG\x00\xff"
    assert back.usage_metadata == rich.usage_metadata
    assert back.long_running_tool_ids == {"call-1", "call-2"}
    assert got.state == {"chart": {"n": 2}, "user:theme": "dark"}


async def test_messages_are_mapped_into_store_fields(
    service: EventSourcedSessionService, store_url: str
) -> None:
    session = await service.create_session(app_name=APP, user_id="u1", session_id="s1")
    await service.append_event(session, text_event("draw it", author="user"))
    rich = rich_event()
    await service.append_event(session, rich)
    store = await service.store()
    stored = await store.get_session(app_name=APP, user_id="u1", session_id="s1")
    assert stored is not None
    messages = [r.data.message for r in stored.events if isinstance(r.data, MessageAppended)]
    assert [(m.role, m.author, m.text) for m in messages] == [
        ("user", "user", "draw it"),
        ("assistant", "planner", "Here is the chart."),
    ]
    assert messages[1].usage is not None
    assert (messages[1].usage.tokens_in, messages[1].usage.tokens_out) == (120, 35)
    assert messages[1].usage.model == "gemini-2.5-flash"
    assert messages[1].state_delta == {"chart": {"n": 2}, "user:theme": "dark"}
    assert messages[1].invocation_id == "inv-9"
    assert messages[1].timestamp == rich.timestamp


async def test_get_session_config(service: EventSourcedSessionService) -> None:
    session = await service.create_session(app_name=APP, user_id="u1", session_id="s1")
    base = 1_700_000_000.0
    events = [text_event(f"m{i}", delta={"i": i}, timestamp=base + i) for i in range(6)]
    for event in events:
        await service.append_event(session, event)

    async def get(config: GetSessionConfig) -> Session:
        got = await service.get_session(
            app_name=APP, user_id="u1", session_id="s1", config=config
        )
        assert got is not None
        return got

    none = await get(GetSessionConfig(num_recent_events=0))
    assert none.events == [] and none.state == {"i": 5}
    assert [e.id for e in (await get(GetSessionConfig(num_recent_events=2))).events] == [
        events[4].id, events[5].id,
    ]
    assert [e.id for e in (await get(GetSessionConfig(after_timestamp=base + 3))).events] == [
        e.id for e in events[3:]
    ]
    both = await get(GetSessionConfig(after_timestamp=base + 1, num_recent_events=10))
    assert [e.id for e in both.events] == [e.id for e in events[1:]]
    assert len((await get(GetSessionConfig(num_recent_events=100))).events) == 6


async def test_list_sessions(service: EventSourcedSessionService) -> None:
    s1 = await service.create_session(
        app_name=APP, user_id="u1", session_id="s1", state={"app:a": 1, "user:u": "one"}
    )
    await service.create_session(app_name=APP, user_id="u2", session_id="s2", state={"x": 2})
    s3 = await service.create_session(app_name=APP, user_id="u1", session_id="s3")
    await service.create_session(app_name="other", user_id="u1", session_id="elsewhere")
    await asyncio.sleep(0.01)
    await service.append_event(s1, text_event("latest"))  # s1 becomes the most recent

    everyone = (await service.list_sessions(app_name=APP)).sessions
    assert [s.id for s in everyone] == ["s2", "s3", "s1"]
    assert all(s.events == [] for s in everyone)
    by_id = {s.id: s for s in everyone}
    assert by_id["s2"].state == {"x": 2, "app:a": 1}
    assert by_id["s3"].state == {"app:a": 1, "user:u": "one"}

    mine = (await service.list_sessions(app_name=APP, user_id="u1")).sessions
    assert [s.id for s in mine] == ["s3", "s1"]
    assert (await service.list_sessions(app_name=APP, user_id="nobody")).sessions == []
    assert s3.id in by_id


async def test_list_sessions_pages_through_many(service: EventSourcedSessionService) -> None:
    for i in range(130):
        await service.create_session(app_name=APP, user_id="u1", session_id=f"s{i:03d}")
    listed = (await service.list_sessions(app_name=APP, user_id="u1")).sessions
    assert sorted(s.id for s in listed) == [f"s{i:03d}" for i in range(130)]


async def test_delete_session(service: EventSourcedSessionService) -> None:
    session = await service.create_session(app_name=APP, user_id="u1", session_id="s1")
    await service.append_event(session, text_event("x"))
    await service.delete_session(app_name=APP, user_id="u1", session_id="s1")
    assert await service.get_session(app_name=APP, user_id="u1", session_id="s1") is None
    assert (await service.list_sessions(app_name=APP)).sessions == []
    await service.delete_session(app_name=APP, user_id="u1", session_id="never-existed")
    with pytest.raises(SessionNotFoundError):
        await service.append_event(session, text_event("after delete"))


async def test_append_to_missing_session(service: EventSourcedSessionService) -> None:
    ghost = Session(id="ghost", app_name=APP, user_id="u1")
    with pytest.raises(SessionNotFoundError):
        await service.append_event(ghost, text_event("x"))


async def test_stale_writer_is_refused(service: EventSourcedSessionService) -> None:
    await service.create_session(app_name=APP, user_id="u1", session_id="s1")
    first = await service.get_session(app_name=APP, user_id="u1", session_id="s1")
    second = await service.get_session(app_name=APP, user_id="u1", session_id="s1")
    assert first is not None and second is not None
    await service.append_event(first, text_event("from first", delta={"who": "first"}))
    with pytest.raises(StaleSessionError):
        await service.append_event(second, text_event("from second", delta={"who": "second"}))
    got = await service.get_session(app_name=APP, user_id="u1", session_id="s1")
    assert got is not None
    assert got.state == {"who": "first"}
    assert [e.content.parts[0].text for e in got.events if e.content and e.content.parts] == [
        "from first"
    ]
    await service.append_event(got, text_event("after reload"))  # a reloaded copy may write


async def test_stale_check_without_a_marker(service: EventSourcedSessionService) -> None:
    """A session object built by hand is checked like ADK's database service checks it."""
    loaded = await service.create_session(app_name=APP, user_id="u1", session_id="s1")
    event = text_event("one")
    await service.append_event(loaded, event)
    # Same history as the store: accepted.
    in_step = Session(
        id="s1", app_name=APP, user_id="u1", events=[event],
        last_update_time=loaded.last_update_time - 100,
    )
    await service.append_event(in_step, text_event("two"))
    # Behind the store: refused.
    behind = Session(id="s1", app_name=APP, user_id="u1", events=[event], last_update_time=1.0)
    with pytest.raises(StaleSessionError):
        await service.append_event(behind, text_event("three"))


async def test_concurrent_appends_through_one_object(service: EventSourcedSessionService) -> None:
    session = await service.create_session(app_name=APP, user_id="u1", session_id="s1")
    await asyncio.gather(
        *(service.append_event(session, text_event(f"m{i}", delta={f"k{i}": i})) for i in range(20))
    )
    got = await service.get_session(app_name=APP, user_id="u1", session_id="s1")
    assert got is not None
    assert len(got.events) == 20
    assert got.state == {f"k{i}": i for i in range(20)}


async def test_retried_event_is_not_stored_twice(service: EventSourcedSessionService) -> None:
    session = await service.create_session(app_name=APP, user_id="u1", session_id="s1")
    event = text_event("once")
    await service.append_event(session, event)
    reloaded = await service.get_session(app_name=APP, user_id="u1", session_id="s1")
    assert reloaded is not None
    await service.append_event(reloaded, event.model_copy())
    got = await service.get_session(app_name=APP, user_id="u1", session_id="s1")
    assert got is not None and [e.id for e in got.events] == [event.id]


async def test_service_over_an_open_store(store_url: str) -> None:
    async with open_store(store_url) as store:
        service = EventSourcedSessionService(store=store)
        session = await service.create_session(app_name=APP, user_id="u1", session_id="s1")
        await service.append_event(session, text_event("x"))
        await service.close()  # the store belongs to its opener and stays usable
        assert await store.get_session(app_name=APP, user_id="u1", session_id="s1")
    with pytest.raises(ValueError):
        EventSourcedSessionService(store_url, store=store)


async def _scenario(service: BaseSessionService) -> list[Any]:
    """A fixed sequence of calls; what each returns, in comparable form."""
    seen: list[Any] = []

    def snap(session: Session | None) -> Any:
        if session is None:
            return None
        return (
            session.id, session.user_id, session.state,
            [e.model_dump(mode="json", exclude_none=True) for e in session.events],
        )

    a = await service.create_session(
        app_name=APP, user_id="u1", session_id="a", state={"app:v": 1, "user:n": "x", "s": 0}
    )
    seen.append(snap(a))
    b = await service.create_session(app_name=APP, user_id="u2", session_id="b")
    seen.append(snap(b))
    for i in range(3):
        await service.append_event(
            a, text_event(f"a{i}", delta={"s": i, "temp:t": i}, timestamp=1_700_000_000.0 + i,
                          event_id=f"ea{i}"),
        )
    await service.append_event(
        b, text_event("b0", delta={"app:v": 2, "user:m": 1}, timestamp=1_700_000_010.0,
                      event_id="eb0"),
    )
    await service.append_event(a, text_event("ignored", partial=True, event_id="ep"))
    seen.append(snap(a))
    for user, sid in (("u1", "a"), ("u2", "b")):
        for config in (None, GetSessionConfig(num_recent_events=0),
                       GetSessionConfig(num_recent_events=2),
                       GetSessionConfig(after_timestamp=1_700_000_001.0)):
            seen.append(snap(await service.get_session(
                app_name=APP, user_id=user, session_id=sid, config=config)))
    listed = await service.list_sessions(app_name=APP)
    seen.append(sorted(snap(s) for s in listed.sessions))
    seen.append(await service.get_user_state(app_name=APP, user_id="u1"))
    await service.delete_session(app_name=APP, user_id="u2", session_id="b")
    seen.append(snap(await service.get_session(app_name=APP, user_id="u2", session_id="b")))
    return seen


async def test_behaves_like_adks_in_memory_service(service: EventSourcedSessionService) -> None:
    assert await _scenario(service) == await _scenario(InMemorySessionService())


@pytest.mark.parametrize("cache", [0, 20_000], ids=["no-cache", "cache"])
async def test_reads_hand_out_independent_copies(store_url: str, cache: int) -> None:
    async with EventSourcedSessionService(store_url, event_cache_size=cache) as service:
        session = await service.create_session(app_name=APP, user_id="u1", session_id="s1")
        original = rich_event()
        await service.append_event(session, original)
        first = await service.get_session(app_name=APP, user_id="u1", session_id="s1")
        assert first is not None and first.events == [original]
        assert first.events[0] is not original
        first.events[0].actions.state_delta["chart"] = "mutated"
        assert first.events[0].content is not None and first.events[0].content.parts
        first.events[0].content.parts.clear()
        original.actions.state_delta.clear()
        second = await service.get_session(app_name=APP, user_id="u1", session_id="s1")
        assert second is not None and second.events == [rich_event_like(original)]


def rich_event_like(original: AdkEvent) -> AdkEvent:
    """`rich_event()` with the id and timestamp `original` got."""
    return rich_event().model_copy(update={"id": original.id, "timestamp": original.timestamp})


def test_store_event_ids_are_uuid5_of_session_and_adk_id() -> None:
    """The ids are stored (and make re-imports idempotent): they must stay exactly uuid5."""
    import uuid

    from session_store.adapters.adk_codec import _ID_NAMESPACE, store_event_id
    from session_store.domain.events import SessionKey

    for parts in (("app", "u", "s", "e-1"), ("", "", "", ""), ("äpp", "用户", "s\x1f", "é")):
        expected = str(uuid.uuid5(_ID_NAMESPACE, "\x1f".join(parts)))
        assert store_event_id(SessionKey(*parts[:3]), parts[3]) == expected
