"""LG-ADK's graph runner, as far as its session examples use it: `GraphBuilder` with
`add_agent`, `configure_session_management`, `build`, `run`/`arun`; `Agent`; `get_model`
and a deterministic `MockChatModel` (no provider is called), with a `ChatPromptTemplate`
stand-in for the examples' LangChain prompt.

A turn (`run(message=..., session_id=..., metadata=...)`) appends the user's message and
the agent's reply in one transaction, sharing an invocation id; the reply carries the
turn's response time and, when the model reports it, its usage: the store counts the
turn as one interaction, and a `track_interaction` right after it completes that turn.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from session_store.compat.lg_adk import SessionManager
from session_store.domain.events import Event, Usage
from session_store.domain.ids import new_id
from session_store.errors import InvalidEvent


@dataclass(frozen=True)
class AIMessage:
    """What a chat model returns: its text, and its usage as LangChain reports it."""

    content: str
    usage_metadata: Mapping[str, int] = field(default_factory=dict)
    response_metadata: Mapping[str, Any] = field(default_factory=dict)


def _text_of(messages: Any) -> str:
    """The last human text of a prompt: a string, LangChain-style messages, (role, text)
    pairs, or dicts with `content`."""
    if isinstance(messages, str):
        return messages
    last = ""
    for item in messages or ():
        if isinstance(item, tuple) and len(item) == 2:
            role, text = item
        elif isinstance(item, Mapping):
            role, text = item.get("role", "user"), item.get("content", "")
        else:
            role, text = getattr(item, "type", "human"), getattr(item, "content", "")
        if role in ("human", "user") and isinstance(text, str):
            last = text
    return last


class MockChatModel:
    """A deterministic chat model: the reply is `pattern` formatted with the last human
    text (`{input}`); usage counts words (in: the prompt, out: the reply)."""

    def __init__(self, model: str = "mock-model", temperature: float = 0.0, *,
                 provider: str = "mock",
                 pattern: str = "Mock response to: {input}", **settings: Any) -> None:
        self.model, self.temperature, self.provider = model, temperature, provider
        self.pattern = pattern
        self.settings = settings

    def invoke(self, messages: Any) -> AIMessage:
        text = _text_of(messages)
        reply = self.pattern.format(input=text)
        return AIMessage(content=reply,
                         usage_metadata={"input_tokens": len(text.split()),
                                         "output_tokens": len(reply.split())},
                         response_metadata={"model_name": self.model,
                                            "provider": self.provider})


def get_model(name: str) -> MockChatModel:
    """LG-ADK's model lookup ("openai/gpt-3.5-turbo"): here always the mock model, named
    after the request (no provider is reachable from the store's tests)."""
    if not isinstance(name, str) or not name:
        raise InvalidEvent(f"a model name such as 'openai/gpt-4' is needed, not {name!r}")
    provider, _, model = name.rpartition("/")
    return MockChatModel(model=model, provider=provider or "mock")


class ChatPromptTemplate:
    """The examples' LangChain prompt, reduced: (role, template) pairs formatted with
    `str.format`; an empty value leaves its message out."""

    def __init__(self, messages: Sequence[tuple[str, str]]) -> None:
        self.messages = list(messages)

    @classmethod
    def from_messages(cls, messages: Sequence[tuple[str, str]]) -> ChatPromptTemplate:
        return cls(messages)

    def format_messages(self, **values: Any) -> list[tuple[str, str]]:
        formatted = [(role, template.format(**values)) for role, template in self.messages]
        return [(role, text) for role, text in formatted if text]


class Agent:
    """An LG-ADK agent: `agent(state) -> state` reads `state["input"]` and writes
    `state["output"]` (and `state["usage"]` when its model reports usage)."""

    def __init__(self, name: str, model: Any = None, description: str = "") -> None:
        self.name, self.model, self.description = name, model, description

    def __call__(self, state: dict[str, Any]) -> dict[str, Any]:
        if self.model is None:
            raise InvalidEvent(f"agent {self.name!r} has no model")
        reply = self.model.invoke(state["input"])
        state["output"] = reply.content
        usage = getattr(reply, "usage_metadata", None) or {}
        if usage:
            state["usage"] = {"tokens_in": int(usage.get("input_tokens", 0)),
                              "tokens_out": int(usage.get("output_tokens", 0)),
                              "model": getattr(self.model, "model", None)}
        return state


class GraphBuilder:
    """Runs one agent per turn and writes each turn to the configured session manager."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.agents: list[Any] = []
        self.session_manager: SessionManager | None = None

    def add_agent(self, agent: Any) -> GraphBuilder:
        self.agents.append(agent)
        return self

    def configure_session_management(self, session_manager: SessionManager) -> GraphBuilder:
        self.session_manager = session_manager
        return self

    add_session_manager = configure_session_management

    def build(self) -> GraphBuilder:
        if not self.agents:
            raise InvalidEvent(f"graph {self.name!r} has no agent: add_agent first")
        return self

    def run(self, message: str, session_id: str | None = None,
            metadata: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """One turn; returns `{"session_id", "output", "state"}`. Without `session_id` a
        session is created (its user from `metadata["user_id"]`)."""
        manager = self._manager()
        _check_message(message)
        if session_id is None:
            session_id = manager.create_session(metadata=metadata)
        elif metadata:
            manager.update_session_metadata(session_id, metadata)
        state = self._state(message, session_id, manager.get_session(session_id).native)
        started = time.perf_counter()
        state = self.agents[-1](state)
        elapsed = time.perf_counter() - started
        manager.add_messages(session_id, self._turn(message, state, elapsed))
        return {"session_id": session_id, "output": state["output"], "state": state}

    async def arun(self, message: str, session_id: str | None = None,
                   metadata: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """`run`, awaiting the manager's async forms (and the agent, when it is async)."""
        manager = self._manager()
        _check_message(message)
        if session_id is None:
            session_id = await manager.acreate_session(metadata=metadata)
        elif metadata:
            await manager.aupdate_session_metadata(session_id, metadata)
        state = self._state(message, session_id, (await manager.aget_session(session_id)).native)
        started = time.perf_counter()
        outcome = self.agents[-1](state)
        state = await outcome if inspect.isawaitable(outcome) else outcome
        elapsed = time.perf_counter() - started
        await manager.aadd_messages(session_id, self._turn(message, state, elapsed))
        return {"session_id": session_id, "output": state["output"], "state": state}

    def _manager(self) -> SessionManager:
        if self.session_manager is None:
            raise InvalidEvent(f"graph {self.name!r} has no session manager: "
                               "configure_session_management first")
        if not self.agents:
            raise InvalidEvent(f"graph {self.name!r} has no agent: add_agent first")
        return self.session_manager

    @staticmethod
    def _state(message: str, session_id: str, native: Any) -> dict[str, Any]:
        history = [{"role": m.role, "content": m.text or ""} for m in native.messages]
        return {"input": message, "session_id": session_id, "conversation_history": history}

    def _turn(self, message: str, state: Mapping[str, Any], elapsed: float) -> list[Event]:
        output = state.get("output")
        if not isinstance(output, str):
            raise InvalidEvent(f"the agent returned no text output (state['output'] is "
                               f"{output!r})")
        usage = state.get("usage")
        invocation = new_id()
        agent = getattr(self.agents[-1], "name", "assistant")
        return [
            Event(role="user", text=message, invocation_id=invocation),
            Event(role="assistant", author=str(agent), text=output, invocation_id=invocation,
                  response_time=elapsed,
                  usage=None if not usage else Usage(
                      tokens_in=usage["tokens_in"], tokens_out=usage["tokens_out"],
                      model=usage.get("model"))),
        ]


def _check_message(message: object) -> None:
    """Before anything is written (a session created for the turn included)."""
    if not isinstance(message, str):
        raise InvalidEvent(f"message must be a string, not {type(message).__name__}")
