"""LangSwarm V2's documented examples (../shared/seeds/004_*.txt) run against
`session_store.compat.langswarm`, on SQLite and PostgreSQL.

The examples' code is the seed's, changed in its import lines, in the provider (the mock:
the store calls no real one) and in the storage argument, which names the backend under
test (`STORAGE`: "sqlite" in a temporary directory, or the PostgreSQL URL). What the docs
print or return is asserted; analytics against sums computed here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from session_store.compat.langswarm import (
    SessionManager,
    create_session_manager,
)
from session_store.compat.langswarm_session import SessionContext, SessionMessage
from session_store.errors import InvalidEvent, SessionIdNotFound


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        import time

        return time.time() + self.offset


@pytest.fixture
def storage(store_url: str, backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
            ) -> str:
    if backend == "sqlite":
        monkeypatch.chdir(tmp_path)  # "sqlite" writes ./langswarm_sessions.db
        return "sqlite"
    return store_url


@pytest.fixture
async def manager(storage: str) -> AsyncIterator[SessionManager]:
    STORAGE = storage
    manager = create_session_manager(storage=STORAGE, providers={"mock": None})
    yield manager
    await manager.close()


async def test_quick_start_messages_and_the_mock_provider(
        manager: SessionManager, capsys: pytest.CaptureFixture[str]) -> None:
    # Quick Start (provider "openai" -> "mock")
    session = await manager.create_session(user_id="user123", provider="mock", model="gpt-4")
    response = await session.send_message("Hello! How can you help me today?")
    print(f"Assistant: {response.content}")
    response = await session.send_message("What's the weather like?")
    print(f"Assistant: {response.content}")
    messages = await session.get_messages()
    for message in messages:
        print(f"{message.role}: {message.content}")
    assert capsys.readouterr().out.splitlines() == [
        "Assistant: Mock response to: Hello! How can you help me today?",
        "Assistant: Mock response to: What's the weather like?",
        "user: Hello! How can you help me today?",
        "assistant: Mock response to: Hello! How can you help me today?",
        "user: What's the weather like?",
        "assistant: Mock response to: What's the weather like?"]

    # Basic Message Operations
    response = await session.send_message("What is machine learning?")
    await session.send_system_message("You are a helpful AI assistant specializing in ML.")
    messages = await session.get_messages()
    recent_messages = await session.get_messages(limit=2)
    filtered_messages = await session.get_messages(
        role="assistant", start_time=datetime.now() - timedelta(hours=1))
    assert len(messages) == 7 and [m.role for m in recent_messages] == ["assistant", "system"]
    assert [m.content for m in filtered_messages] == [
        m.content for m in messages if m.role == "assistant"]
    assert await session.get_messages(start_time=datetime.now() + timedelta(hours=1)) == []

    # Advanced Message Features
    response = await session.send_message("Analyze this data", metadata={
        "intent": "data_analysis", "priority": "high",
        "user_context": {"role": "data_scientist"}})
    user_message = (await session.get_messages(role="user"))[-1]
    message = await session.get_message(user_message.message_id)
    assert message.metadata == {"intent": "data_analysis", "priority": "high",
                                "user_context": {"role": "data_scientist"}}
    reply = await session.get_message(response.message_id)
    assert reply.provider_metadata == {} and reply.content == "Mock response to: Analyze this data"
    conversation_data = await session.export_conversation()
    assert conversation_data["id"] == session.session_id
    assert [m["content"] for m in conversation_data["messages"]] == [
        m.content for m in await session.get_messages()]
    with pytest.raises(InvalidEvent):
        await session.get_message("no-such-message")

    # Mock Provider: predictable, configurable per session
    mock_session = await manager.create_session(user_id="test_user", provider="mock",
                                                model="mock-model")
    response = await mock_session.send_message("Test input")
    assert response.content == "Mock response to: Test input"
    mock_session.provider_session.set_response_pattern("custom: {input}")
    response = await mock_session.send_message("Hello")
    assert response.content == "custom: Hello"
    assert (await session.send_message("Hi")).content == "Mock response to: Hi"

    await session.clear_messages()
    assert await session.get_messages() == [] and session.message_count == 0
    with pytest.raises(InvalidEvent):
        await manager.create_session("u", provider="openai")  # no callable for it
    with pytest.raises(SessionIdNotFound):
        await manager.get_session("nope")


async def test_development_setup_in_memory(capsys: pytest.CaptureFixture[str]) -> None:
    manager = create_session_manager(storage="memory")
    try:
        session = await manager.create_session("dev_user", "mock", "mock-model")
        response = await session.send_message("Test message")
        print(f"Mock response: {response.content}")
        assert capsys.readouterr().out == "Mock response: Mock response to: Test message\n"
    finally:
        await manager.close()
    assert not Path(manager.url).exists()


async def test_sessions_context_metrics_and_analytics(manager: SessionManager) -> None:
    # Session Lifecycle Management
    session = await manager.create_session(
        user_id="user123", provider="mock", model="gpt-4",
        session_config={"name": "ML Discussion", "description": "Machine learning conversation",
                        "tags": ["ml", "education"], "max_messages": 100,
                        "auto_archive_after": timedelta(days=7)})
    await session.update_config({"name": "Advanced ML Discussion",
                                 "tags": ["ml", "advanced", "research"]})
    assert (session.status, session.message_count, session.name) == (
        "active", 0, "Advanced ML Discussion")
    assert session.tags == ("ml", "advanced", "research")
    assert session.created_at <= session.last_activity <= datetime.now()

    # Session Context Management
    await session.update_context({
        "user_profile": {"experience_level": "intermediate", "preferred_language": "python",
                         "learning_goals": ["machine_learning", "data_science"]},
        "conversation_style": "detailed_explanations", "code_examples": True})
    context = await session.get_context()
    user_profile = context.get("user_profile", {})
    assert user_profile["preferred_language"] == "python"
    if context.get("code_examples"):
        response = await session.send_message(
            "Explain linear regression with Python code examples")
    assert response.content.startswith("Mock response to: Explain")

    # Multi-User Session Management
    other = await manager.create_session("user123", "mock", "mock-model",
                                         session_config={"tags": ["cooking"]})
    await other.send_message("Pasta?")
    await other.archive()
    await manager.create_session("user456", "mock", "claude-3")
    user_sessions = await manager.get_user_sessions("user123")
    active_sessions = await manager.get_user_sessions(user_id="user123", status="active")
    recent_sessions = await manager.get_user_sessions(
        user_id="user123", since=datetime.now() - timedelta(days=7))
    ml_sessions = await manager.search_sessions(user_id="user123", tags=["ml"])
    assert len(user_sessions) == 2 and len(recent_sessions) == 2
    assert [s.session_id for s in active_sessions] == [session.session_id]
    assert [s.session_id for s in ml_sessions] == [session.session_id]
    assert [s.session_id for s in await manager.search_sessions(query="pasta")] == [
        other.session_id]
    assert await manager.search_sessions(user_id="user123", tags=["education"]) == []

    # Session Metrics
    metrics = await session.get_metrics()
    assert (metrics.total_messages, metrics.user_messages, metrics.assistant_messages) == (
        2, 1, 1)
    prompt = 7  # words of "Explain linear regression with Python code examples"
    assert metrics.total_tokens == prompt + 3 + prompt
    assert metrics.avg_response_time_ms >= 0.0
    assert metrics.session_duration >= timedelta(0)

    # Usage Analytics: against what was appended
    analytics = await manager.get_analytics(start_date=datetime.now() - timedelta(days=30),
                                            end_date=datetime.now())
    assert analytics.total_sessions == 3
    assert analytics.active_users == 1  # user456 wrote nothing
    assert analytics.total_messages == 4
    assert analytics.avg_messages_per_session == pytest.approx(4 / 3)
    assert analytics.model_usage == {"gpt-4": 1, "mock-model": 1}
    assert analytics.provider_usage == {"mock": 2}
    later = await manager.get_analytics(start_date=datetime.now() + timedelta(days=1))
    assert (later.total_sessions, later.total_messages) == (0, 0)
    with pytest.raises(InvalidEvent):
        await manager.get_analytics(start_date=datetime.now(),
                                    end_date=datetime.now() - timedelta(days=1))
    with pytest.raises(InvalidEvent):
        await manager.get_analytics(start_date="yesterday")  # type: ignore[arg-type]


class LoggingMiddleware:
    """Log all messages for debugging"""

    async def process_message(self, session_id: str, message: SessionMessage,
                              context: SessionContext) -> SessionMessage:
        print(f"[{session_id}] {message.role}: {message.content[:50]}...")
        return message


class FilterMiddleware:
    """Filter sensitive content"""

    async def process_message(self, session_id: str, message: SessionMessage,
                              context: SessionContext) -> SessionMessage:
        filtered_content = self.filter_sensitive_data(message.content)
        message.content = filtered_content
        return message

    def filter_sensitive_data(self, content: str) -> str:
        return content.replace("secret", "[filtered]")  # the seed leaves this to the reader


class MetricsHook:
    """Collect session metrics (the seed's, with the counters it leaves undefined)"""

    def __init__(self) -> None:
        self.metrics: dict[str, int] = {}
        self.usage: list[tuple[str, int]] = []

    async def increment_metric(self, name: str) -> None:
        self.metrics[name] = self.metrics.get(name, 0) + 1

    async def track_usage(self, session_id: str, size: int) -> None:
        self.usage.append((session_id, size))

    async def on_session_created(self, session_id: str, user_id: str) -> None:
        print(f"Session created: {session_id} for user {user_id}")
        await self.increment_metric("sessions_created")

    async def on_message_sent(self, session_id: str, message: SessionMessage) -> None:
        await self.increment_metric("messages_sent")
        await self.track_usage(session_id, len(message.content))

    async def on_session_archived(self, session_id: str) -> None:
        print(f"Session archived: {session_id}")
        await self.increment_metric("sessions_archived")

    async def on_session_error(self, session_id: str, error: Exception) -> None:
        await self.increment_metric("errors")


async def test_monitoring_middleware_and_hooks(manager: SessionManager,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[tuple[str, str, str | None]] = []

    async def monitor_sessions() -> None:
        async for event in manager.session_events():
            if event.type == "session_created":
                print(f"New session: {event.session_id}")
            elif event.type == "message_sent":
                print(f"Message in {event.session_id}: {event.message_preview}")
            elif event.type == "session_archived":
                print(f"Session archived: {event.session_id}")
            seen.append((event.type, event.session_id, event.message_preview))

    await manager.store()  # the monitor follows from the log's end as it is now
    monitor = asyncio.create_task(monitor_sessions())
    await asyncio.sleep(0.05)
    manager.add_middleware(LoggingMiddleware())
    manager.add_middleware(FilterMiddleware())
    hook = MetricsHook()
    manager.add_lifecycle_hook(hook)

    session = await manager.create_session("user123", "mock", "mock-model")
    await session.send_message("Hello! my secret is 42")  # processed by both middleware
    stored = await session.get_messages()
    assert [m.content for m in stored] == ["Hello! my [filtered] is 42",
                                           "Mock response to: Hello! my [filtered] is 42"]
    await session.archive()

    def failing(messages: Any, **_: Any) -> Any:
        raise RuntimeError("provider down")

    manager.providers["broken"] = failing
    broken = await manager.create_session("user123", "broken", "x")
    with pytest.raises(RuntimeError):
        await broken.send_message("hi")
    for _ in range(200):
        if len(seen) >= 6:
            break
        await asyncio.sleep(0.02)
    monitor.cancel()
    await asyncio.gather(monitor, return_exceptions=True)

    sid = session.session_id
    assert seen[:4] == [("session_created", sid, None),
                        ("message_sent", sid, "Hello! my [filtered] is 42"),
                        ("message_sent", sid, "Mock response to: Hello! my [filtered] is 42"),
                        ("session_archived", sid, None)]
    assert hook.metrics == {"sessions_created": 2, "messages_sent": 3,
                            "sessions_archived": 1, "errors": 1}
    out = capsys.readouterr().out
    assert f"[{sid}] user: Hello! my secret is 42..." in out  # before the filter ran
    assert f"Session created: {sid} for user user123" in out
    assert f"Session archived: {sid}" in out
    with pytest.raises(InvalidEvent):
        manager.add_middleware(object())


async def test_cleanup_and_maintenance(storage: str) -> None:
    clock = Clock()
    cleanup_config = {"archive_after_days": 30, "delete_after_days": 90,
                      "max_messages_per_session": 1000, "cleanup_interval_hours": 24}
    manager = create_session_manager(storage=storage, cleanup_config=cleanup_config,
                                     clock=clock)
    try:
        old = await manager.create_session("user123", "mock", "mock-model")
        await old.send_message("Hello!")
        assert await manager.cleanup_inactive_sessions(days=30) == 0
        clock.offset = timedelta(days=31).total_seconds()
        fresh = await manager.create_session("user456", "mock", "mock-model")
        assert await manager.cleanup_inactive_sessions(days=30) == 2  # both idle 31 days on
        assert (await manager.get_session(old.session_id)).status == "archived"
        assert await manager.cleanup_archived_sessions(days=90) == 0
        clock.offset = timedelta(days=200).total_seconds()
        assert await manager.cleanup_archived_sessions(days=90) == 2
        with pytest.raises(SessionIdNotFound):
            await manager.get_session(fresh.session_id)
        assert await manager.cleanup_deleted_sessions(days=365) == 0
        clock.offset = timedelta(days=400).total_seconds()
        assert await manager.cleanup_deleted_sessions(days=365) == 2
        assert await manager.cleanup_deleted_sessions(days=365) == 0  # once is enough
        await manager.optimize_storage()
        store = await manager.store()
        assert (await store.verify()).ok
        assert await store.history.search("Hello", app_name="langswarm") == []  # erased
        for wrong in (-1, float("nan"), "30", True):
            with pytest.raises(InvalidEvent):
                await manager.cleanup_inactive_sessions(days=wrong)  # type: ignore[arg-type]
    finally:
        await manager.close()
