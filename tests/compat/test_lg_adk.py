"""LG-ADK's documented examples (../shared/seeds/000_*.txt and 001_*.txt) run against
`session_store.compat.lg_adk`, on SQLite and PostgreSQL.

Each example's code is the seed's, changed only in its import lines (`lg_adk.*` ->
`session_store.compat.*`, LangChain's model and prompt -> the compat mock); the managers
built without arguments open the store at $SESSION_STORE_URL, which each test points at
its backend. What the docs print is asserted.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from session_store import SyncSessionStore
from session_store.compat.lg_adk import (
    AsyncSessionManager,
    DatabaseManager,
    DatabaseSessionManager,
    SessionManager,
    SynchronizedSessionManager,
)
from session_store.compat.lg_adk_graph import Agent, GraphBuilder, get_model
from session_store.errors import AmbiguousSession, InvalidEvent, SessionIdNotFound


@pytest.fixture
def url(store_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SESSION_STORE_URL", store_url)
    return store_url


@pytest.fixture
def session_manager(url: str) -> Iterator[SynchronizedSessionManager]:
    manager = SynchronizedSessionManager()
    yield manager
    manager.close()


def _builder(session_manager: SessionManager) -> GraphBuilder:
    builder = GraphBuilder(name="my_app")
    builder.add_agent(Agent(name="assistant", model=get_model("openai/gpt-3.5-turbo")))
    builder.configure_session_management(session_manager)
    builder.build()
    return builder


def test_the_complete_example(session_manager: SynchronizedSessionManager,
                              capsys: pytest.CaptureFixture[str]) -> None:
    # "Complete Example" (000), verbatim after the manager and agent set-up
    agent = Agent(name="assistant", model=get_model("openai/gpt-3.5-turbo"))
    builder = GraphBuilder(name="my_app")
    builder.add_agent(agent)
    builder.configure_session_management(session_manager)
    graph = builder.build()

    alice_metadata = {"user_id": "alice", "device": "mobile"}
    alice_response = builder.run(message="Hello! Can you help me with my project?",
                                 metadata=alice_metadata)
    alice_session_id = alice_response["session_id"]
    bob_metadata = {"user_id": "bob", "device": "web"}
    bob_response = builder.run(message="What's the weather like today?", metadata=bob_metadata)
    bob_session_id = bob_response["session_id"]
    alice_followup = builder.run(message="I need help with Python.", session_id=alice_session_id)

    alice_session = session_manager.get_session(alice_session_id)
    bob_session = session_manager.get_session(bob_session_id)
    print(f"Alice's interactions: {alice_session.interactions}")
    print(f"Bob's interactions: {bob_session.interactions}")
    session_manager.end_session(alice_session_id)
    session_manager.end_session(bob_session_id)

    assert graph is builder and alice_followup["session_id"] == alice_session_id
    assert capsys.readouterr().out.splitlines() == ["Alice's interactions: 2",
                                                    "Bob's interactions: 1"]
    assert alice_session.user_id == "alice" and alice_session.metadata["device"] == "mobile"
    # the mock reports usage: words of the prompt in, words of the reply out
    assert alice_session.total_tokens_in == 8 + 5
    assert alice_session.total_tokens_out == (3 + 8) + (3 + 5)
    assert not session_manager.session_exists(alice_session_id)
    assert not session_manager.session_exists(bob_session_id)


def test_the_enhanced_example_counts_one_interaction_per_turn(
        url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.compat import lg_adk_enhanced_example as example

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # the example sets it
    opened: list[SessionManager] = []

    class Closable(SynchronizedSessionManager):  # the example never closes its manager
        def __init__(self) -> None:
            super().__init__()
            opened.append(self)

    monkeypatch.setattr(example, "SynchronizedSessionManager", Closable)
    try:
        example.main()
    finally:
        for manager in opened:
            manager.close()
    out = capsys.readouterr().out
    assert "  Alice's active sessions: 1" in out
    # two turns each, tracked after the runner measured them: 2 interactions, not 4
    assert "    - Interactions: 2" in out
    tokens_in = (len("Hello! Can you tell me about machine learning?") // 4
                 + len("Can you explain neural networks specifically?") // 4)
    assert f"    - Total tokens in: {tokens_in}" in out
    assert "'subscription': 'premium'" in out and "'last_topic': 'neural networks'" in out
    assert out.rstrip().splitlines()[-2:] == ["  Alice's session exists: False",
                                              "  Bob's session exists: False"]
    with SyncSessionStore(url) as store:
        (summary,) = store.get_user_sessions(app_name="lg_adk", user_id="alice")
        alice = store.get_session(app_name="lg_adk", user_id="alice", session_id=summary.id)
        assert alice is not None
        stats = alice.statistics()
        # what the manager showed is what native statistics and analytics say
        assert stats.interactions == 2 and stats.tokens_in == tokens_in
        assert alice.status == "ended"
        store.wait_for(store.last_position())  # the manager's store wrote it, not this one
        by_session = store.analytics.by_session("lg_adk", "alice", alice.id)
        assert by_session is not None and by_session.interactions == 2
        assert by_session.tokens_in == tokens_in


def test_users_metadata_and_lifecycle_snippets(session_manager: SessionManager) -> None:
    # "Tracking Users and Sessions", "Session Metadata Management", "Session Lifecycle"
    builder = _builder(session_manager)
    session_id = session_manager.create_session(user_id="alice")
    response = builder.run(message="Hello!", metadata={"user_id": "alice", "device": "mobile"})
    user_sessions = session_manager.get_user_sessions("alice")
    assert sorted(user_sessions) == sorted([session_id, response["session_id"]])

    session_id = session_manager.create_session(metadata={"source": "web", "locale": "en-US"})
    session_manager.update_session_metadata(session_id, {"last_page": "checkout"}, merge=True)
    metadata = session_manager.get_session_metadata(session_id)
    assert {k: metadata[k] for k in ("source", "locale", "last_page", "user_id")} == {
        "source": "web", "locale": "en-US", "last_page": "checkout", "user_id": "anonymous"}
    session_manager.update_session_metadata(session_id, {"only": 1}, merge=False)
    assert session_manager.get_session_metadata(session_id)["only"] == 1
    assert "source" not in session_manager.get_session_metadata(session_id)

    session = session_manager.get_session(session_id)
    session_manager.track_interaction(session_id, tokens_in=15, tokens_out=25,
                                      response_time=1.2)
    tracked = session_manager.get_session(session_id)
    assert (session.interactions, tracked.interactions) == (0, 1)
    assert (tracked.total_tokens_in, tracked.total_tokens_out) == (15, 25)
    assert tracked.total_response_time == pytest.approx(1.2)
    assert tracked.last_active >= session.last_active

    with pytest.raises(InvalidEvent):  # refused before a session is created for the turn
        builder.run(message=42, metadata={"user_id": "carol"})  # type: ignore[arg-type]
    assert session_manager.get_user_sessions("carol") == []

    session_id = session_manager.create_session()
    assert session_manager.session_exists(session_id)
    session_manager.end_session(session_id)
    session_manager.end_session(session_id)  # again: a no-op
    assert not session_manager.session_exists(session_id)
    assert session_manager.get_session(session_id).status == "ended"
    assert session_manager.cleanup_expired_sessions() == 0


def test_timeouts_expire(session_manager: SessionManager) -> None:
    # "Session Timeout and Expiration": a tiny timeout, then the cleanup expires it
    session_id = session_manager.create_session(timeout=1800)
    assert session_manager.get_session(session_id).timeout == pytest.approx(1800)
    session_id = session_manager.create_session(timeout=timedelta(hours=1))
    assert session_manager.get_session(session_id).timeout == pytest.approx(3600)
    short = session_manager.create_session(timeout=0.05)
    threading.Event().wait(0.1)
    assert not session_manager.session_exists(short)
    assert session_manager.cleanup_expired_sessions() == 1
    assert session_manager.get_session(short).status == "expired"


async def test_the_async_example(url: str) -> None:
    # "Asynchronous Session Management", with the manager's own store
    async_manager = AsyncSessionManager()
    try:
        builder = _builder(async_manager)
        session_id = await async_manager.acreate_session(user_id="alice")
        result = await builder.arun(message="Hello!", session_id=session_id)
        await async_manager.atrack_interaction(session_id, tokens_in=10, tokens_out=20,
                                               response_time=0.5)
        session = await async_manager.aget_session(session_id)
        assert result["output"] == "Mock response to: Hello!"
        # the runner's turn carried usage: the tracked call completed it
        assert session.interactions == 1
        assert (session.total_tokens_in, session.total_tokens_out) == (1, 4)
        await async_manager.atrack_interaction(session_id, tokens_in=10, tokens_out=20,
                                               response_time=0.5)
        again = await async_manager.aget_session(session_id)
        assert again.interactions == 2 and again.total_tokens_in == 11
        assert await async_manager.asession_exists(session_id)
        assert await async_manager.aget_user_sessions("alice") == [session_id]
        await async_manager.aend_session(session_id)
        assert not await async_manager.asession_exists(session_id)
    finally:
        await asyncio.to_thread(async_manager.close)


def test_database_manager_persists_across_restarts(url: str) -> None:
    # "Persistent Sessions with DatabaseSessionManager"
    db_manager = DatabaseManager()
    session_manager = DatabaseSessionManager(db_manager=db_manager)
    session_id = session_manager.create_session()
    session_manager.close()
    with DatabaseSessionManager(db_manager=DatabaseManager(url)) as reopened:
        assert reopened.session_exists(session_id)


def test_thread_safety(session_manager: SynchronizedSessionManager) -> None:
    ids: list[str] = []

    def work() -> None:
        for _ in range(5):
            session_id = session_manager.create_session(user_id="many")
            session_manager.track_interaction(session_id, tokens_in=1)
            ids.append(session_id)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids)) == 20
    assert sorted(session_manager.get_user_sessions("many")) == sorted(ids)
    assert all(session_manager.get_session(i).interactions == 1 for i in ids)


def test_bare_ids_unknown_or_ambiguous(url: str) -> None:
    with SyncSessionStore(url) as store, SessionManager(store) as manager:
        with pytest.raises(SessionIdNotFound):
            manager.get_session("nope")
        with pytest.raises(KeyError):  # what LG-ADK's callers catch
            manager.get_session_metadata("nope")
        assert not manager.session_exists("nope")
        with pytest.raises(SessionIdNotFound):
            manager.track_interaction("nope", tokens_in=1)
        for user in ("ann", "bob"):
            store.create_session(app_name="lg_adk", user_id=user, session_id="shared")
        with pytest.raises(AmbiguousSession):
            manager.get_session("shared")
        other = SessionManager(store, app_name="elsewhere")
        with pytest.raises(SessionIdNotFound):  # scoped to the manager's app
            other.get_session("shared")
        with pytest.raises(InvalidEvent):
            manager.get_session(7)  # type: ignore[arg-type]
        session_id = manager.create_session(user_id="ann")
        for wrong in ({"tokens_in": -1}, {"tokens_out": True}, {"response_time": "x"}):
            with pytest.raises(InvalidEvent):
                manager.track_interaction(session_id, **wrong)
        with pytest.raises(InvalidEvent):
            manager.create_session(user_id="")
        with pytest.raises(InvalidEvent):
            manager.create_session(timeout=-1)
        assert manager.get_session(session_id).interactions == 0


async def test_blocking_forms_refused_on_an_async_store(store: Any) -> None:
    manager = SessionManager(store)
    from session_store.errors import StoreUnavailable

    with pytest.raises(StoreUnavailable):
        manager.create_session(user_id="ann")
    session_id = await manager.acreate_session(user_id="ann")
    assert await manager.asession_exists(session_id)
