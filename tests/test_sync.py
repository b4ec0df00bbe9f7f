"""SyncSessionStore: blocking, no event loop in the caller, many threads at once."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from session_store import Event, InvalidEvent, SessionClosed, StoreUnavailable, SyncSessionStore


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


def test_sync_subscribe_blocks_for_new_events_and_stops_when_left(store_url: str) -> None:
    import threading

    with SyncSessionStore(store_url) as store:
        session = store.create_session(app_name="app", user_id="u", session_id="s")
        store.add_message(session, "user", "first")
        seen: list[str] = []
        follower = store.subscribe(from_position=0, types=["MessageAppended"])
        writer = threading.Timer(0.2, lambda: store.add_message(session, "user", "later"))
        writer.start()
        for record in follower:  # blocks until the timer's append commits
            seen.append(record.data.message.text)  # type: ignore[union-attr]
            if len(seen) == 2:
                break
        follower.close()
        writer.join()
        assert seen == ["first", "later"]
        assert store.last_position() == store.count_events() == 3
        store.add_message(session, "user", "after the follower left")  # the store goes on


def test_sync_read_models_block_and_see_their_own_writes(store_url: str) -> None:
    with SyncSessionStore(store_url) as store:
        session = store.create_session(app_name="app", user_id="u", session_id="s")
        store.add_message(session, "user", "the weather in Lisbon")
        store.track_interaction(session, tokens_in=5, tokens_out=7)
        hits = store.history.search("lisbon", app_name="app")
        assert [m.text for m in hits] == ["the weather in Lisbon"]
        assert store.history.count(app_name="app", user_id="u", session_id="s") == 1
        summary = store.users.get(app_name="app", user_id="u")
        assert summary is not None and summary.messages == 1 and summary.tokens_in == 5
        stats = store.analytics.by_session("app", "u", "s")
        assert stats is not None and (stats.tokens_in, stats.tokens_out) == (5, 7)
        assert store.find_sessions("s") == [("app", "u", "s")]
        assert store.app_names() == ["app"]


def test_sync_purge_user(sqlite_url: str) -> None:
    with SyncSessionStore(sqlite_url) as store:
        session = store.create_session(app_name="app", user_id="ann", state={"user:k": "v"})
        store.add_message(session, "user", "hello", state_delta={"app:k": "ann's"})
        report = store.purge_user(app_name="app", user_id="ann")
        assert (report.sessions, report.scope_events) == (1, 2)
        assert store.get_user_state(app_name="app", user_id="ann") == {}
        assert store.get_app_state(app_name="app") == {}
        assert store.verify().ok


def test_close_under_concurrent_callers_leaves_none_waiting(store_url: str) -> None:
    """Threads append, read, follow and wait while two others close: every call returns or
    raises `StoreUnavailable`, no thread is left blocked, and every later call raises it
    (before: callers blocked forever, and a later call raised 'Event loop is closed')."""
    store = SyncSessionStore(store_url)
    session = store.create_session(app_name="app", user_id="u", session_id="s")
    outcomes: list[str] = []
    start = threading.Barrier(7)  # the six callers and this thread

    def calls(call: Any) -> None:
        start.wait()
        deadline = time.monotonic() + 60
        try:
            while time.monotonic() < deadline:
                call()
            outcomes.append("never stopped")
        except StoreUnavailable:
            outcomes.append("unavailable")
        except Exception as error:  # noqa: BLE001 - reported below
            outcomes.append(repr(error))

    def follow() -> None:
        for _ in store.subscribe(from_position=0):
            pass

    callers = [threading.Thread(target=calls, args=(call,), daemon=True) for call in (
        lambda: store.add_message(session, "user", "x"),
        lambda: store.add_message(session, "user", "y"),
        lambda: store.get_session(app_name="app", user_id="u", session_id="s"),
        lambda: store.history.search("x", app_name="app"),
        follow,
        lambda: store.wait_for(10**9),
    )]
    closers = [threading.Thread(target=store.close, daemon=True) for _ in range(2)]
    for thread in callers:
        thread.start()
    start.wait()
    time.sleep(0.3)  # all of them at work
    for closer in closers:
        closer.start()
    for thread in [*closers, *callers]:
        thread.join(timeout=30)
    assert [t for t in [*callers, *closers] if t.is_alive()] == []
    assert outcomes == ["unavailable"] * len(callers)
    for later in (store.last_position, lambda: store.add_message(session, "user", "z"),
                  lambda: store.history.count(app_name="app", user_id="u", session_id="s"),
                  lambda: next(iter(store.subscribe()))):
        with pytest.raises(StoreUnavailable, match="closed"):
            later()
    store.close()  # and once more is harmless


def test_sync_read_arguments_of_the_wrong_type_raise_invalid_event(sqlite_url: str) -> None:
    with SyncSessionStore(sqlite_url) as store:
        session = store.create_session(app_name="app", user_id="u", session_id="s")
        for argument, call in (
                ("limit", lambda: store.read_all(limit="x")),
                ("from_position", lambda: store.read_all(from_position="0")),
                ("from_position", lambda: next(iter(store.subscribe(from_position="0")))),
                ("to_version", lambda: store.replay(session, to_version="x")),
                ("to_version", lambda: store.read_stream(session, to_version=True)),
                ("text", lambda: store.history.search(None, app_name="app")),  # type: ignore[arg-type]
                ("position", lambda: store.wait_for("x"))):  # type: ignore[arg-type]
            with pytest.raises(InvalidEvent, match=argument):
                call()
        assert store.last_position() == 1  # and the store goes on
