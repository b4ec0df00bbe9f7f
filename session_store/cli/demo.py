"""`session-store demo`: a simulated agent runner writing conversations into the store.

No network and no API keys: a seeded mock model answers, sometimes through a
tool call. Several users talk to several apps in concurrent sessions; every
turn appends messages with usage and measured response times, and state
changes in every scope (session, `user:`, `app:`, and `temp:` which is never
persisted). Four sessions end their lives differently: archived, ended,
deleted and expired. The same command, with bigger numbers, makes a
million-event log for benchmarks.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from session_store.domain.events import Event, SessionKey, Usage
from session_store.store import SessionStore

APPS = ("support-bot", "travel-agent", "code-helper")
FIRST_NAMES = ("ada", "grace", "alan", "edsger", "barbara", "ken", "margaret", "dennis",
               "frances", "john", "radia", "tim")
MODEL = "mock-llm-1"
EXPIRES_AFTER = 0.3
"""Inactivity timeout (seconds) of the session that the demo lets expire."""

_TOOLS: dict[str, tuple[str, ...]] = {
    "support-bot": ("lookup_order", "refund_status"),
    "travel-agent": ("search_flights", "get_weather"),
    "code-helper": ("run_tests", "search_docs"),
}
_ASKS: dict[str, tuple[str, ...]] = {
    "support-bot": ("Where is my order {n}?", "Can I return the {thing} I bought?",
                    "My {thing} arrived broken.", "Is order {n} refunded yet?"),
    "travel-agent": ("Find me a flight to {city} next week.", "What's the weather in {city}?",
                     "Is there a train from {city} to the coast?", "Book a hotel in {city}."),
    "code-helper": ("Why does test_{thing} fail?", "How do I profile {thing}.py?",
                    "Explain this traceback from {thing}.", "Run the {thing} tests please."),
}
_THINGS = ("kettle", "router", "parser", "scheduler", "lamp", "invoice", "cache", "headset")
_CITIES = ("Lisbon", "Oslo", "Kyoto", "Quito", "Accra", "Tallinn", "Perth", "Montreal")


@dataclass(frozen=True)
class Plan:
    users: int = 4
    sessions: int = 12
    turns: int = 4
    seed: int = 7
    concurrency: int = 32
    latency_ms: float = 4.0
    """Mean simulated model latency; response times are measured around it."""


@dataclass(frozen=True)
class Reply:
    text: str | None
    tool: tuple[str, dict[str, Any]] | None
    tokens_in: int
    tokens_out: int


class MockModel:
    """Deterministic given the session's random generator: same seed, same conversation."""

    def __init__(self, latency_ms: float) -> None:
        self.mean_latency = latency_ms / 1000

    async def respond(self, rng: random.Random, app: str, prompt: str,
                      tool_result: Any = None) -> Reply:
        if self.mean_latency > 0:
            await asyncio.sleep(min(rng.expovariate(1 / self.mean_latency),
                                    self.mean_latency * 8))
        tokens_in = len(prompt.split()) * 3 + rng.randint(40, 400)
        if tool_result is None and rng.random() < 0.5:
            name = rng.choice(_TOOLS[app])
            args = {"query": prompt[:40], "limit": rng.randint(1, 5)}
            return Reply(None, (name, args), tokens_in, rng.randint(8, 30))
        opener = rng.choice(("Sure.", "Good question.", "Here's what I found.", "Done."))
        detail = (f"{tool_result['tool']} found {tool_result['results']} result(s), best "
                  f"score {tool_result['score']}." if tool_result is not None
                  else f"I looked into \u201c{prompt}\u201d.")
        return Reply(f"{opener} {detail}", None, tokens_in, rng.randint(20, 200))


def run_tool(rng: random.Random, name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True, "tool": name, "results": rng.randint(0, args.get("limit", 3)),
            "score": round(rng.random(), 3)}


@dataclass(frozen=True)
class DemoSession:
    index: int
    key: SessionKey
    fate: str
    """'archived', 'ended', 'deleted', 'expired' or 'active'."""


FATES = ("archived", "ended", "deleted", "expired")


def plan_sessions(plan: Plan, run: str) -> list[DemoSession]:
    users = [f"{FIRST_NAMES[i % len(FIRST_NAMES)]}{'' if i < len(FIRST_NAMES) else i}"
             for i in range(plan.users)]
    sessions = []
    for i in range(plan.sessions):
        user = users[i % len(users)]
        app = APPS[(i // len(users) + i) % len(APPS)]
        fate = FATES[i] if i < len(FATES) else "active"
        sessions.append(DemoSession(i, SessionKey(app, user, f"{run}-{i:05d}"), fate))
    return sessions


async def converse(store: SessionStore, model: MockModel, plan: Plan, demo: DemoSession,
                   on_turn: Callable[[], None]) -> None:
    """One session's whole conversation: `plan.turns` turns of user, model, tools."""
    rng = random.Random(f"{plan.seed}:{demo.index}")
    app, user, sid = demo.key
    await store.create_session(
        app_name=app, user_id=user, session_id=sid,
        state={"topic": app.split("-")[0], "app:model": MODEL, "user:name": user.title(),
               "temp:boot": rng.random()},
        metadata={"channel": rng.choice(("web", "mobile", "slack")), "demo": True},
        tags=["demo", app], timeout=EXPIRES_AFTER if demo.fate == "expired" else None)
    key = demo.key
    for turn in range(1, plan.turns + 1):
        invocation = f"inv-{sid}-{turn}"
        prompt = rng.choice(_ASKS[app]).format(n=rng.randint(1000, 9999),
                                               thing=rng.choice(_THINGS),
                                               city=rng.choice(_CITIES))
        await store.add_message(key, "user", prompt, author=user, invocation_id=invocation,
                                state_delta={"turn": turn, "temp:prompt_chars": len(prompt),
                                             "user:last_app": app})
        agent = f"{app.split('-')[0]}_agent"
        started = time.perf_counter()
        reply = await model.respond(rng, app, prompt)
        elapsed = time.perf_counter() - started
        if reply.tool is not None:
            name, args = reply.tool
            call_id = f"call-{sid}-{turn}"
            await store.add_message(
                key, "assistant", None, author=agent, invocation_id=invocation,
                parts=[{"function_call": {"id": call_id, "name": name, "args": args}}],
                usage=Usage(tokens_in=reply.tokens_in, tokens_out=reply.tokens_out,
                            model=MODEL), response_time=elapsed)
            result = run_tool(rng, name, args)
            await store.add_message(
                key, "tool", None, author=name, invocation_id=invocation,
                parts=[{"function_response": {"id": call_id, "name": name, "response": result}}],
                state_delta={"last_tool": name, "temp:tool_raw": result})
            started = time.perf_counter()
            reply = await model.respond(rng, app, prompt, tool_result=result)
            elapsed = time.perf_counter() - started
        await store.append_event(key, Event(
            role="assistant", text=reply.text, author=agent, invocation_id=invocation,
            usage=Usage(tokens_in=reply.tokens_in, tokens_out=reply.tokens_out, model=MODEL),
            response_time=elapsed,
            state_delta={"answers": turn, "app:last_answer_turn": turn}))
        if turn % 2 == 0:
            await store.update_state(key, {"user:preferred_units": rng.choice(("metric",
                                                                               "imperial")),
                                           "mood": rng.choice(("happy", "curious", "terse")),
                                           "temp:ui_hint": "typing"})
        on_turn()
    await store.update_session_metadata(key, {"resolved": rng.random() < 0.7})
    await store.track_interaction(key, tokens_in=rng.randint(10, 50),
                                  tokens_out=rng.randint(1, 5),
                                  response_time=rng.uniform(0.001, 0.01), model="mock-moderation")


async def finish(store: SessionStore, demos: list[DemoSession]) -> int:
    """Give the first sessions their fates; returns how many sessions expired."""
    for demo in demos:
        if demo.fate == "archived":
            await store.archive_session(demo.key)
        elif demo.fate == "ended":
            await store.end_session(demo.key)
        elif demo.fate == "deleted":
            await store.delete_session(app_name=demo.key.app_name, user_id=demo.key.user_id,
                                       session_id=demo.key.session_id)
    if not any(demo.fate == "expired" for demo in demos):
        return 0
    await asyncio.sleep(EXPIRES_AFTER + 0.05)  # let the short-timeout session go idle
    return await store.cleanup_expired_sessions()


async def run(store: SessionStore, plan: Plan, on_turn: Callable[[], None]) -> list[DemoSession]:
    """Write the demo's conversations, `plan.concurrency` sessions at a time."""
    run_tag = secrets.token_hex(3)
    demos = plan_sessions(plan, run_tag)
    model = MockModel(plan.latency_ms)
    gate = asyncio.Semaphore(plan.concurrency)

    async def one(demo: DemoSession) -> None:
        async with gate:
            await converse(store, model, plan, demo, on_turn)

    await asyncio.gather(*(one(demo) for demo in demos))
    await finish(store, demos)
    return demos
