"""The OpenAI Agents SDK session over the log, on SQLite and PostgreSQL.

The SDK's own `Runner` drives it with a fake model (no network): a scripted
model that calls a tool on its first turn and otherwise echoes what it saw.
"""

from __future__ import annotations

import json
from typing import Any

from agents import Agent, Runner, function_tool, set_tracing_disabled
from agents.items import ModelResponse, TResponseInputItem
from agents.models.interface import Model
from agents.usage import Usage
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

from session_store.adapters.openai_agents import EventSourcedSession
from session_store.domain.events import HistoryCleared, MessageAppended, MessageRetracted
from session_store.store import SessionStore, open_store

set_tracing_disabled(True)


class ScriptedModel(Model):
    """Calls `lookup` once when asked about the weather, else says how much it has seen."""

    def __init__(self) -> None:
        self.inputs: list[list[Any]] = []

    async def get_response(self, system_instructions: str | None,
                           input: str | list[TResponseInputItem], *args: Any,
                           **kwargs: Any) -> ModelResponse:
        items = [{"role": "user", "content": input}] if isinstance(input, str) else list(input)
        self.inputs.append(items)
        last = items[-1]
        asked = str(last.get("content", ""))
        output: list[Any]
        if "weather" in asked and last.get("type") != "function_call_output":
            output = [ResponseFunctionToolCall(
                type="function_call", id="fc_1", call_id=f"call_{len(self.inputs)}",
                name="lookup", arguments=json.dumps({"city": "Paris"}), status="completed")]
        else:
            said = last.get("output") if last.get("type") == "function_call_output" else asked
            output = [ResponseOutputMessage(
                type="message", id=f"msg_{len(self.inputs)}", role="assistant",
                status="completed",
                content=[ResponseOutputText(type="output_text", annotations=[],
                                            text=f"seen {len(items)}: {said}")])]
        return ModelResponse(output=output, usage=Usage(requests=1, input_tokens=5,
                                                        output_tokens=2, total_tokens=7),
                             response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


@function_tool
def lookup(city: str) -> str:
    """Weather of a city."""
    return f"sunny in {city}"


def user(text: str) -> TResponseInputItem:
    return {"role": "user", "content": text}


async def test_items_round_trip_in_order(store: SessionStore) -> None:
    session = EventSourcedSession("conv-1", store=store)
    assert await session.get_items() == []
    items: list[TResponseInputItem] = [
        user("hi"),
        {"type": "message", "role": "assistant", "id": "m1", "status": "completed",
         "content": [{"type": "output_text", "text": "hello", "annotations": []}]},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "42"},
    ]
    await session.add_items(items[:1])
    await session.add_items(items[1:])
    assert await session.get_items() == items
    assert await session.get_items(limit=2) == items[2:]
    assert await session.get_items(limit=0) == []
    assert await session.get_items(limit=10) == items

    stored = await store.get_session(app_name="openai-agents", user_id="default",
                                     session_id="conv-1")
    assert stored is not None
    assert [(m.role, m.text) for m in stored.messages] == [
        ("user", "hi"), ("assistant", "hello"), ("assistant", None), ("tool", "42"),
    ]


async def test_pop_item_retracts_the_newest(store: SessionStore) -> None:
    session = EventSourcedSession("conv-1", store=store, app_name="app", user_id="u1")
    await session.add_items([user("one"), user("two"), user("three")])
    assert await session.pop_item() == user("three")
    assert await session.get_items() == [user("one"), user("two")]
    assert await session.pop_item() == user("two")
    assert await session.get_items(limit=5) == [user("one")]
    await session.add_items([user("four")])
    assert await session.get_items() == [user("one"), user("four")]
    assert await session.pop_item() == user("four")
    assert await session.pop_item() == user("one")
    assert await session.pop_item() is None
    assert await session.get_items() == []

    types = [r.type async for r in store.read_stream(("app", "u1", "conv-1"))]
    assert types.count(MessageAppended.__name__) == 4
    assert types.count(MessageRetracted.__name__) == 4


async def test_clear_session_starts_history_over(store: SessionStore) -> None:
    session = EventSourcedSession("conv-1", store=store)
    await session.clear_session()  # nothing to clear: no error, nothing written
    await session.add_items([user("a"), user("b")])
    await session.clear_session()
    assert await session.get_items() == []
    assert await session.pop_item() is None
    await session.add_items([user("c")])
    assert await session.get_items() == [user("c")]
    records = [r async for r in store.read_stream(("openai-agents", "default", "conv-1"))]
    assert [r.type for r in records].count(HistoryCleared.__name__) == 1
    assert sum(isinstance(r.data, MessageAppended) for r in records) == 3  # the log keeps all


async def test_sessions_are_separate_and_survive_reopening(store_url: str) -> None:
    async with open_store(store_url) as store:
        await EventSourcedSession("a", store=store).add_items([user("for a")])
        await EventSourcedSession("b", store=store).add_items([user("for b")])
        await EventSourcedSession("a", store=store, user_id="other").add_items([user("a2")])
    async with open_store(store_url) as store:
        assert await EventSourcedSession("a", store=store).get_items() == [user("for a")]
        assert await EventSourcedSession("b", store=store).get_items() == [user("for b")]
        other = EventSourcedSession("a", store=store, user_id="other")
        assert await other.get_items() == [user("a2")]


async def test_session_settings_limit(store: SessionStore) -> None:
    from agents.memory.session_settings import SessionSettings

    session = EventSourcedSession("c", store=store, session_settings=SessionSettings(limit=2))
    await session.add_items([user(str(i)) for i in range(5)])
    assert await session.get_items() == [user("3"), user("4")]
    assert len(await session.get_items(limit=4)) == 4


async def test_sdk_runner_with_a_fake_model(store_url: str) -> None:
    model = ScriptedModel()
    agent = Agent(name="assistant", instructions="be brief", model=model, tools=[lookup])

    async with open_store(store_url) as store:
        session = EventSourcedSession("chat", store=store, app_name="sdk", user_id="u1")
        first = await Runner.run(agent, "hello", session=session)
        assert first.final_output == "seen 1: hello"
        second = await Runner.run(agent, "what is the weather?", session=session)
        assert second.final_output == "seen 5: sunny in Paris"

    async with open_store(store_url) as store:  # a restart: history comes from the log
        session = EventSourcedSession("chat", store=store, app_name="sdk", user_id="u1")
        third = await Runner.run(agent, "thanks", session=session)
        assert third.final_output == "seen 7: thanks"
        items = await session.get_items()
        kinds = [item.get("type", "message") for item in items]
        assert kinds == ["message", "message", "message", "function_call",
                         "function_call_output", "message", "message", "message"]
        assert [i.get("role") for i in items if i.get("role")] == [
            "user", "assistant", "user", "assistant", "user", "assistant"]

        # The model saw the history the session returned, tool call included.
        assert len(model.inputs[-1]) == 7
        assert model.inputs[-1][3]["type"] == "function_call"

        popped = await session.pop_item()
        assert popped is not None and popped.get("role") == "assistant"
        assert len(await session.get_items()) == 7
