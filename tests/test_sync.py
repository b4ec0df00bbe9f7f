"""SyncSessionStore: blocking, no event loop in the caller, many threads at once."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from session_store import Event, SessionClosed, SyncSessionStore


def _work(store: SyncSessionStore, worker: int) -> list[int]:
    # No event loop runs in this thread: the facade must not need one.
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()
    session = store.create_session(app_name="app", user_id=f"u{worker % 4}",
                                   session_id=f"s{worker}")
    versions = []
    for index in range(10):
        versions.append(store.append_event(session, Event(role="user", text=str(index))).version)
        store.update_state(session, {"user:last": worker, "count": index})
    found = store.get_session(app_name="app", user_id=session.user_id, session_id=session.id,
                              num_recent_events=3)
    assert found is not None and [m.text for m in found.messages] == ["7", "8", "9"]
    return versions


def test_sync_store_from_a_thread_pool(store_url: str) -> None:
    with SyncSessionStore(store_url) as store:
        with ThreadPoolExecutor(max_workers=16) as pool:
            results = list(pool.map(lambda w: _work(store, w), range(32)))
        assert all(versions == list(range(2, 21, 2)) for versions in results)
        sessions = store.get_user_sessions(app_name="app", user_id="u1")
        assert sorted(s.id for s in sessions) == sorted(f"s{w}" for w in range(1, 32, 4))
        page = store.list_sessions(app_name="app", limit=100)
        assert len(page.sessions) == 32
        for summary in page.sessions:
            assert summary.state["count"] == 9
            assert summary.version == 21
        events = store.read_stream(("app", "u0", "s0"))
        assert [e.version for e in events] == list(range(1, 22))
        assert store.replay(("app", "u0", "s0")) == store.get_session(
            app_name="app", user_id="u0", session_id="s0")
        store.end_session(("app", "u0", "s0"))
        with pytest.raises(SessionClosed):
            store.add_message(("app", "u0", "s0"), "user", "x")


def test_sync_store_hooks_and_close(store_url: str) -> None:
    seen: list[str] = []
    store = SyncSessionStore(store_url)
    store.on("session_created", lambda event: seen.append(event.session_id))
    store.create_session(app_name="app", user_id="u", session_id="s")
    store.close()
    store.close()  # closing twice is harmless
    assert seen == ["s"]
    with SyncSessionStore(store_url) as reopened:
        assert reopened.get_session(app_name="app", user_id="u", session_id="s") is not None
