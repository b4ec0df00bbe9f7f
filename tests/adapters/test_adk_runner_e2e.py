"""A real `google.adk.runners.Runner` over the adapter, with an agent that needs no model.

Several turns, two users, and a restart of the service on the same database in
between; afterwards the log holds every event and reads back as ADK wrote it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncGenerator
from typing import Any

from google.adk.agents import BaseAgent
from google.adk.agents.invocation_context import InvocationContext
from google.adk.events import Event as AdkEvent
from google.adk.events import EventActions
from google.adk.runners import Runner
from google.genai import types

from session_store.adapters.adk import EventSourcedSessionService
from session_store.domain.events import MessageAppended, SessionKey
from session_store.store import open_store

APP = "e2e"


class ToolUsingEcho(BaseAgent):
    """Streams a chunk, calls a 'tool', then answers; counts turns in state."""

    async def _run_async_impl(self, ctx: InvocationContext) -> AsyncGenerator[AdkEvent, None]:
        parts = ctx.user_content.parts if ctx.user_content and ctx.user_content.parts else []
        said = "".join(part.text or "" for part in parts)
        turn = int(ctx.session.state.get("turn", 0)) + 1
        assert "temp:said" not in ctx.session.state, "temp state leaked into a new invocation"

        def event(**fields: Any) -> AdkEvent:
            return AdkEvent(author=self.name, invocation_id=ctx.invocation_id, **fields)

        yield event(partial=True, content=types.Content(role="model", parts=[types.Part(text="…")]))
        call = types.FunctionCall(id=f"call-{turn}", name="lookup", args={"q": said})
        yield event(content=types.Content(role="model", parts=[types.Part(function_call=call)]))
        result = types.FunctionResponse(id=call.id, name="lookup", response={"len": len(said)})
        answer = types.Part(function_response=result)
        yield event(content=types.Content(role="user", parts=[answer]))
        yield event(
            content=types.Content(role="model", parts=[types.Part(text=f"#{turn}: {said}")]),
            actions=EventActions(
                state_delta={
                    "turn": turn,
                    "temp:said": said,
                    "user:last_said": said,
                    "app:turns_total": int(ctx.session.state.get("app:turns_total", 0)) + 1,
                }
            ),
            usage_metadata=types.GenerateContentResponseUsageMetadata(
                prompt_token_count=10 * turn, candidates_token_count=turn
            ),
            model_version="fake-1",
        )


def message(text: str) -> types.Content:
    return types.Content(role="user", parts=[types.Part(text=text)])


async def run_turn(runner: Runner, user: str, session_id: str, text: str) -> list[AdkEvent]:
    return [
        event
        async for event in runner.run_async(
            user_id=user, session_id=session_id, new_message=message(text)
        )
    ]


async def test_runner_over_several_turns_two_users_and_a_restart(store_url: str) -> None:
    agent = ToolUsingEcho(name="echo")
    conversations = {("alice", "s-alice"): ["hi", "how are you"], ("bob", "s-bob"): ["yo"]}

    async with EventSourcedSessionService(store_url) as service:
        runner = Runner(app_name=APP, agent=agent, session_service=service)
        for user, sid in conversations:
            await service.create_session(app_name=APP, user_id=user, session_id=sid)
        for (user, sid), texts in conversations.items():
            for text in texts:
                yielded = await run_turn(runner, user, sid, text)
                assert yielded[-1].content is not None
        alice_before = await service.get_session(
            app_name=APP, user_id="alice", session_id="s-alice"
        )
        assert alice_before is not None

    # A new process, as far as the store is concerned.
    async with EventSourcedSessionService(store_url) as service:
        runner = Runner(app_name=APP, agent=agent, session_service=service)
        alice_after = await service.get_session(
            app_name=APP, user_id="alice", session_id="s-alice"
        )
        assert alice_after is not None
        assert alice_after.events == alice_before.events
        assert alice_after.state == alice_before.state

        await run_turn(runner, "alice", "s-alice", "still there?")
        await run_turn(runner, "bob", "s-bob", "bye")
        conversations[("alice", "s-alice")].append("still there?")
        conversations[("bob", "s-bob")].append("bye")

        alice = await service.get_session(app_name=APP, user_id="alice", session_id="s-alice")
        bob = await service.get_session(app_name=APP, user_id="bob", session_id="s-bob")
        assert alice is not None and bob is not None
        assert alice.state == {
            "turn": 3, "user:last_said": "still there?", "app:turns_total": 5,
        }
        assert bob.state == {"turn": 2, "user:last_said": "bye", "app:turns_total": 5}
        answers = [
            e.content.parts[0].text
            for e in alice.events
            if e.author == "echo" and e.content and e.content.parts and e.content.parts[0].text
        ]
        assert answers == ["#1: hi", "#2: how are you", "#3: still there?"]
        # user message + call + response + answer per turn; partial chunks are not stored.
        assert len(alice.events) == 4 * 3 and len(bob.events) == 4 * 2
        assert all(not e.partial for e in alice.events + bob.events)
        assert await service.get_user_state(app_name=APP, user_id="bob") == {"last_said": "bye"}

    async with open_store(store_url) as store:
        for (user, sid), texts in conversations.items():
            key = SessionKey(APP, user, sid)
            messages = [
                recorded.data.message
                async for recorded in store.read_stream(key)
                if isinstance(recorded.data, MessageAppended)
            ]
            assert len(messages) == 4 * len(texts)
            assert [m.text for m in messages if m.role == "user"] == texts
            assert [m.role for m in messages[:4]] == ["user", "assistant", "tool", "assistant"]
            tokens_out = sum(m.usage.tokens_out for m in messages if m.usage)
            assert tokens_out == sum(range(1, len(texts) + 1))

    # And the operator's view: `session-store replay` shows the conversation.
    shown = subprocess.run(
        [sys.executable, "-m", "session_store.cli", "--db", store_url, "replay", "s-alice",
         "--app", APP, "--user", "alice"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"},
    )
    assert shown.returncode == 0, shown.stderr
    for line in ("how are you", "#2: how are you", "still there?", "#3: still there?"):
        assert line in shown.stdout
