"""The frameworks' own contracts the adapters keep, on SQLite and PostgreSQL: ADK's
`last_update_time` follows the appended event's timestamp; the OpenAI Agents session
normalises `session_settings` as the SDK's sessions do and answers from any loop and
thread (`Runner.run_sync` in worker threads)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from agents import Agent, RunConfig, Runner
from agents.memory.session_settings import SessionSettings
from google.adk.events.event import Event as AdkEvent
from google.genai import types

from session_store.adapters.adk import EventSourcedSessionService
from session_store.adapters.openai_agents import EventSourcedSession
from session_store.store import SessionStore
from tests.adapters.test_openai_agents_adapter import ScriptedModel, user


def adk_event(text: str, timestamp: float) -> AdkEvent:
    return AdkEvent(author="user", invocation_id="inv", timestamp=timestamp,
                    content=types.Content(role="user", parts=[types.Part(text=text)]))


async def test_adk_last_update_time_is_the_events_own_timestamp(store: SessionStore) -> None:
    service = EventSourcedSessionService(store=store)
    session = await service.create_session(app_name="a", user_id="u", session_id="s")
    created = session.last_update_time
    for stamp in (created + 10, created + 20, 1_700_000_000.125):  # later, then an old one
        await service.append_event(session, adk_event("hi", stamp))
        assert session.last_update_time == stamp
        again = await service.get_session(app_name="a", user_id="u", session_id="s")
        assert again is not None and again.last_update_time == pytest.approx(stamp, abs=1e-6)
        assert again == session
    listed = (await service.list_sessions(app_name="a", user_id="u")).sessions
    assert [s.last_update_time for s in listed] == [1_700_000_000.125]
    # The store's own activity time is still when it recorded the events.
    stored = await store.get_session(app_name="a", user_id="u", session_id="s")
    assert stored is not None and stored.last_update_time >= created
    assert stored.last_message_time == 1_700_000_000.125


async def test_openai_session_settings_are_coerced(store: SessionStore) -> None:
    session = EventSourcedSession("c", store=store, session_settings={"limit": 1})
    assert session.session_settings == SessionSettings(limit=1)
    with pytest.raises(TypeError, match="Unknown session settings: nope"):
        EventSourcedSession("c", store=store, session_settings={"nope": 1})
    with pytest.raises(TypeError):
        EventSourcedSession("c", store=store, session_settings=3)  # type: ignore[arg-type]

    model = ScriptedModel()
    agent = Agent(name="assistant", instructions="be brief", model=model)
    await Runner.run(agent, "one", session=session)
    result = await Runner.run(agent, "two", session=session,
                              run_config=RunConfig(session_settings=SessionSettings(limit=2)))
    assert result.final_output == "seen 3: two"  # two items of history, then the new one
    newest = await session.get_items()  # the session's own limit: one item
    assert len(newest) == 1 and newest[0].get("role") == "assistant"


async def test_openai_run_sync_from_worker_threads(store: SessionStore) -> None:
    """Sessions made on the test's loop, used by `Runner.run_sync` in threads that each run
    a loop of their own, all at once."""
    agent = Agent(name="assistant", instructions="be brief", model=ScriptedModel())
    sessions = [EventSourcedSession(f"t{i}", store=store, app_name="threads")
                for i in range(4)]
    loops: set[int] = set()

    def work(session: EventSourcedSession) -> list[str]:
        said = []
        for turn in range(2):
            result = Runner.run_sync(agent, f"turn {turn}", session=session)
            said.append(str(result.final_output))
        loops.add(threading.get_ident())
        asyncio.run(session.add_items([user("from asyncio.run")]))
        return said

    said = await asyncio.gather(*(asyncio.to_thread(work, s) for s in sessions))
    assert said == [["seen 1: turn 0", "seen 3: turn 1"]] * 4
    assert len(loops) == 4
    for session in sessions:
        items = await session.get_items()
        assert [i.get("content") for i in items if i.get("role") == "user"] == [
            "turn 0", "turn 1", "from asyncio.run"]
        assert await session.pop_item() == user("from asyncio.run")
