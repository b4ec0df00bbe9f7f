"""JAF's documented examples (../shared/seeds/003_*.txt) run against
`session_store.compat.jaf`: the pure ones once, the providers' on SQLite and PostgreSQL.

The examples' code is the seed's, changed in its import lines (`adk.types` ->
`session_store.compat.jaf`, `adk.sessions` -> `session_store.compat.jaf_providers`) and in
the Redis provider's construction, which names the store under test instead. The
performance example keeps its loop and drops its time assertion (the suite asserts no
times). What the docs print or assert is asserted.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest

from session_store.compat.jaf import (
    ImmutableAdkSession,
    SessionError,
    add_message_to_session,
    add_metadata_to_session,
    create_assistant_message,
    create_immutable_session,
    create_system_message,
    create_tool_message,
    create_user_message,
    deserialize_session,
    filter_messages_by_role,
    merge_sessions,
    serialize_session,
    transform_session,
)
from session_store.compat.jaf_providers import (
    StoreSessionProvider,
    create_in_memory_session_provider,
    create_session_provider,
)
from session_store.errors import (
    AmbiguousSession,
    ConcurrencyError,
    InvalidEvent,
    SessionIdNotFound,
)


def test_creating_and_adding_messages(capsys: pytest.CaptureFixture[str]) -> None:
    session = create_immutable_session(session_id="user-123-session", user_id="user-123",
                                       app_name="my-agent-app")
    print(f"Session ID: {session.session_id}")
    print(f"User ID: {session.user_id}")
    print(f"Messages: {len(session.messages)}")  # 0 - starts empty

    session = create_immutable_session(
        session_id="advanced-session", user_id="user-456", app_name="advanced-app",
        created_at=datetime.now(),
        metadata={"user_preferences": {"theme": "dark", "language": "en"},
                  "session_type": "conversation", "priority": "high"})
    assert session.metadata["user_preferences"]["theme"] == "dark"
    with pytest.raises(TypeError):  # deeply immutable
        session.metadata["user_preferences"]["theme"] = "light"  # type: ignore[index]

    session = create_immutable_session("demo", "user", "app")
    user_msg = create_user_message("Hello, how can you help me?")
    session_with_user_msg = session.with_message(user_msg)
    assistant_msg = create_assistant_message("I can help you with various tasks!")
    session_with_response = session_with_user_msg.with_message(assistant_msg)
    print(f"Original: {len(session.messages)} messages")              # 0
    print(f"With user: {len(session_with_user_msg.messages)} messages")  # 1
    print(f"With response: {len(session_with_response.messages)} messages")  # 2

    session = create_immutable_session("conversation", "user", "app")
    conversation = (session
        .with_message(create_user_message("What's the weather like?"))
        .with_message(create_assistant_message("I'd need your location to check the weather."))
        .with_message(create_user_message("I'm in San Francisco"))
        .with_message(create_assistant_message("It's currently 72°F and sunny in San Francisco!"))
    )
    print(f"Complete conversation: {len(conversation.messages)} messages")

    system_msg = create_system_message("You are a helpful AI assistant")
    user_msg = create_user_message("Calculate 15 * 7")
    tool_msg = create_tool_message("calculator", {"result": 105})
    assistant_msg = create_assistant_message("15 * 7 equals 105")
    full_session = (create_immutable_session("calc", "user", "app")
        .with_message(system_msg)
        .with_message(user_msg)
        .with_message(tool_msg)
        .with_message(assistant_msg)
    )
    assert [m.role for m in full_session.messages] == ["system", "user", "tool", "assistant"]
    assert full_session.messages[2].content["result"] == 105
    assert capsys.readouterr().out.splitlines() == [
        "Session ID: user-123-session", "User ID: user-123", "Messages: 0",
        "Original: 0 messages", "With user: 1 messages", "With response: 2 messages",
        "Complete conversation: 4 messages"]

    # Querying Sessions
    session = conversation
    recent_messages = session.get_recent_messages(count=5)
    user_messages = session.get_messages_by_role("user")
    assistant_messages = session.get_messages_by_role("assistant")
    assert len(recent_messages) == 4 and len(session.get_recent_messages(count=2)) == 2
    assert [m.content for m in user_messages] == ["What's the weather like?",
                                                  "I'm in San Francisco"]
    assert len(assistant_messages) == 2
    one_hour_ago = datetime.now() - timedelta(hours=1)
    assert session.get_messages_after(one_hour_ago) == session.messages
    assert session.get_messages_after(session.messages[-1].timestamp) == ()  # strictly after
    search_results = session.search_messages("weather")
    assert [m.content for m in search_results] == [
        "What's the weather like?", "I'd need your location to check the weather."]
    stats = session.get_statistics()
    assert (stats["total_messages"], stats["user_messages"],
            stats["assistant_messages"]) == (4, 2, 2)
    assert stats["duration_minutes"] >= 0
    for wrong in (lambda: session.get_recent_messages(count=-1),
                  lambda: session.search_messages(None),  # type: ignore[arg-type]
                  lambda: session.get_messages_after("yesterday"),  # type: ignore[arg-type]
                  lambda: session.with_message("hi"),  # type: ignore[arg-type]
                  lambda: create_user_message(object()),  # type: ignore[arg-type]
                  lambda: create_tool_message("t", {"x": float("nan")}),
                  lambda: create_tool_message("t", {"when": datetime.now()}),
                  lambda: create_user_message("x", metadata=["a"]),  # type: ignore[arg-type]
                  lambda: create_immutable_session("", "user", "app")):
        with pytest.raises(InvalidEvent):  # SessionError is one
            wrong()


def test_pure_functions_pipeline_and_threads(capsys: pytest.CaptureFixture[str]) -> None:
    original_session = create_immutable_session("pure", "user", "app")
    message = create_user_message("Test message")
    new_session = add_message_to_session(original_session, message)
    assert len(original_session.messages) == 0
    assert len(new_session.messages) == 1
    session_with_metadata = add_metadata_to_session(
        original_session, {"experiment": "A/B test", "version": "1.2.0"})
    user_messages = filter_messages_by_role(new_session, "user")
    assert session_with_metadata.metadata["experiment"] == "A/B test"
    assert original_session.metadata == {} and user_messages == (message,)

    def add_system_context(session: ImmutableAdkSession) -> ImmutableAdkSession:
        return session.with_message(create_system_message("You are in helpful mode"))

    def add_user_greeting(session: ImmutableAdkSession) -> ImmutableAdkSession:
        return session.with_message(create_user_message("Hello!"))

    def add_assistant_response(session: ImmutableAdkSession) -> ImmutableAdkSession:
        return session.with_message(create_assistant_message("Hello! How can I help you?"))

    empty_session = create_immutable_session("pipeline", "user", "app")
    complete_session = transform_session(
        empty_session,
        transformations=[add_system_context, add_user_greeting, add_assistant_response])
    print(f"Pipeline result: {len(complete_session.messages)} messages")

    def concurrent_message_addition(base_session: Any, thread_id: int,
                                    results: dict[int, Any]) -> None:
        current_session = base_session
        for i in range(10):
            message = create_user_message(f"Thread {thread_id} message {i}")
            current_session = current_session.with_message(message)
            time.sleep(0.001)
        results[thread_id] = current_session

    base_session = create_immutable_session("concurrent", "user", "app")
    results: dict[int, Any] = {}
    with ThreadPoolExecutor(max_workers=5) as executor:
        futures = [executor.submit(concurrent_message_addition, base_session, i, results)
                   for i in range(5)]
        for future in futures:
            future.result()
    for thread_id, session in sorted(results.items()):
        print(f"Thread {thread_id}: {len(session.messages)} messages")
    print(f"Base session: {len(base_session.messages)} messages")  # Still 0
    assert capsys.readouterr().out.splitlines() == [
        "Pipeline result: 3 messages", *(f"Thread {i}: 10 messages" for i in range(5)),
        "Base session: 0 messages"]

    # Unit Tests for Immutability, pure function behavior
    original = create_immutable_session("test", "user", "app")
    modified = original.with_message(create_user_message("Test"))
    assert len(original.messages) == 0 and len(modified.messages) == 1
    assert original != modified and original.session_id == modified.session_id
    session = create_immutable_session("pure", "user", "app")
    message = create_user_message("Pure test")
    result1 = add_message_to_session(session, message)
    result2 = add_message_to_session(session, message)
    assert result1.messages == result2.messages
    assert result1 != session and result2 != session

    # Performance (no time asserted), builder, memory management
    session = create_immutable_session("perf", "user", "app")
    for i in range(1000):
        session = session.with_message(create_user_message(f"Message {i}"))
    assert len(session.messages) == 1000
    cleaned = session._replace(messages=session.messages[-50:])
    assert len(cleaned.messages) == 50 and len(session.messages) == 1000

    merged = merge_sessions(result1, modified)
    assert [m.content for m in merged.messages] == ["Pure test", "Test"]
    restored = deserialize_session(serialize_session(merged))
    assert restored.session_id == merged.session_id
    assert len(restored.messages) == len(merged.messages) and restored == merged
    assert restored.pending == merged.pending
    with pytest.raises(SessionError):
        deserialize_session("{}")


@pytest.fixture
async def provider(store_url: str) -> AsyncIterator[StoreSessionProvider]:
    opened = create_session_provider({"url": store_url})
    yield opened
    await opened.close()


async def test_storing_and_retrieving(provider: StoreSessionProvider,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    redis_provider = provider
    session = create_immutable_session("persistent", "user", "app")
    session_with_data = session.with_message(create_user_message("Hello"))
    store_result = await redis_provider.store_session(session_with_data)
    if store_result.success:
        print("Session stored successfully")
    retrieve_result = await redis_provider.get_session("persistent")
    if retrieve_result.success:
        retrieved_session = retrieve_result.session
        print(f"Retrieved {len(retrieved_session.messages)} messages")
    assert capsys.readouterr().out.splitlines() == ["Session stored successfully",
                                                    "Retrieved 1 messages"]
    assert retrieved_session == store_result.session
    assert retrieved_session.version == 2 and retrieved_session.pending == ()
    assert len(session_with_data.messages) == 1 and session_with_data.version == 0

    # Session Serialization
    session_json = serialize_session(session_with_data)
    restored_session = deserialize_session(session_json)
    assert restored_session.session_id == session_with_data.session_id
    assert len(restored_session.messages) == len(session_with_data.messages)

    # a functional update of the stored snapshot is appended on top of it
    tool = create_tool_message("calculator", {"result": 105})
    later = retrieved_session.with_message(tool).with_metadata({"topic": "math"})
    stored = (await provider.store_session(later)).session
    assert stored is not None and stored.version == 4
    assert stored.metadata == {"topic": "math"}
    assert stored.messages[-1].content == {"result": 105}
    assert stored.messages[-1].tool_name == "calculator"
    assert stored.messages == later.messages  # ids, roles, contents, timestamps kept
    again = await provider.store_session(stored)  # nothing pending: nothing written
    assert again.session == stored

    # two snapshots of one version: the second is stale, and nothing of it is written
    first = stored.with_message(create_user_message("one"))
    second = stored.with_message(create_user_message("two"))
    await provider.store_session(first)
    with pytest.raises(ConcurrencyError):
        await provider.store_session(second)
    with pytest.raises(ConcurrencyError):  # a new session over an existing one
        await provider.store_session(session_with_data)
    current = (await provider.get_session("persistent")).session
    assert current is not None and [m.content for m in current.messages][-1] == "one"
    assert len(current.messages) == 3

    # bare ids: unknown, or taken by two users
    missing = await provider.get_session("nope")
    assert not missing.success and isinstance(missing.error, SessionIdNotFound)
    await provider.store_session(create_immutable_session("persistent", "other", "app"))
    ambiguous = await provider.get_session("persistent")
    assert not ambiguous.success and isinstance(ambiguous.error, AmbiguousSession)
    mine = await provider.get_session("persistent", user_id="user")
    assert mine.success and mine.session == current


async def test_the_in_memory_provider() -> None:
    memory_provider = create_in_memory_session_provider({"max_sessions": 1000,
                                                         "ttl_seconds": 3600})
    try:
        session = create_immutable_session("m", "user", "app").with_message(
            create_user_message("hi"))
        assert (await memory_provider.store_session(session)).success
        store = await memory_provider.store()
        stored = await store.get_session(app_name="app", user_id="user", session_id="m")
        assert stored is not None and stored.expires_at is not None
        assert stored.expires_at - stored.last_update_time == pytest.approx(3600)
    finally:
        await memory_provider.close()
