"""Fork, rewind, as_of and compaction, on SQLite and PostgreSQL: each is a fact in the log,
the read path and `replay` agree, and `verify` and `rebuild` stay correct."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from session_store import Event
from session_store.domain.events import (
    ForkCreated,
    HistoryCompacted,
    HistoryRewound,
    MessageAppended,
)
from session_store.domain.snapshot import Session
from session_store.errors import (
    InvalidEvent,
    SessionAlreadyExists,
    SessionClosed,
    SessionNotFound,
)
from session_store.store import SessionStore


def texts(session: Session | None) -> list[str | None]:
    assert session is not None
    return [m.text for m in session.messages]


async def get(store: SessionStore, key: Any, **options: Any) -> Session | None:
    return await store.get_session(app_name=key[0], user_id=key[1], session_id=key[2],
                                   **options)


async def conversation(store: SessionStore) -> Session:
    """Versions: 1 created, 2 'one' (a=1), 3 state a=2, 4 'two', 5 retract 'two', 6 'three'."""
    s = await store.create_session(app_name="app", user_id="ann", session_id="src",
                                   state={"a": 0, "user:u": 1}, metadata={"m": 1}, tags=["t"])
    await store.add_message(s, "user", "one", state_delta={"a": 1, "app:x": 1})
    await store.update_state(s, {"a": 2})
    two = await store.add_message(s, "assistant", "two")
    assert isinstance(two.data, MessageAppended)
    await store.retract_message(s, two.data.message.id)
    await store.add_message(s, "user", "three", state_delta={"b": 3})
    return s


async def check_consistent(store: SessionStore) -> None:
    report = await store.verify()
    assert report.ok, report.problems
    await store.rebuild()
    report = await store.verify()
    assert report.ok, report.problems


async def test_a_fork_at_n_equals_the_source_then_and_diverges(store: SessionStore) -> None:
    source = await conversation(store)
    then = await get(store, source.key, at_version=5)
    fork = await store.fork_session(source, at_version=5, session_id="f")
    assert then is not None
    assert fork.key == ("app", "ann", "f")
    assert fork.messages == then.messages  # the same messages, ids and timestamps kept
    assert dict(fork.state) == dict(then.state) == {"a": 2, "user:u": 1, "app:x": 1}
    assert dict(fork.metadata) == {"m": 1} and fork.tags == ("t",)
    assert fork.forked_from is not None
    assert (fork.forked_from.key, fork.forked_from.version) == (source.key, 5)
    now = await get(store, source.key)
    assert now is not None and [(f.key, f.version) for f in now.forks] == [(fork.key, 5)]

    await store.add_message(fork, "user", "elsewhere", state_delta={"a": 9})
    after = await get(store, source.key)
    assert after is not None and texts(after) == ["one", "three"]  # untouched
    assert after.state["a"] == 2 and after.state["b"] == 3
    forked = await get(store, fork.key)
    assert texts(forked) == ["one", "elsewhere"] and forked is not None
    assert forked.state["a"] == 9 and "b" not in forked.state
    assert texts(await store.replay(fork.key)) == ["one", "elsewhere"]
    types = [r.type async for r in store.read_stream(fork.key)]
    assert types == ["SessionCreated", "MessageAppended", "SessionForked", "MessageAppended"]
    last = [r async for r in store.read_stream(source.key)][-1]
    assert isinstance(last.data, ForkCreated) and last.data.session_id == "f"
    messages = await store.history.messages(app_name="app", user_id="ann", session_id="f")
    assert [m.text for m in messages] == ["one", "elsewhere"]
    assert (await store.verify()).ok


async def test_fork_refusals_and_an_ended_source(store: SessionStore) -> None:
    source = await conversation(store)
    with pytest.raises(InvalidEvent):
        await store.fork_session(source, at_version=7)  # past its last event
    for bad in (0, True, "3", -1):
        with pytest.raises(InvalidEvent):
            await store.fork_session(source, at_version=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidEvent):
        await store.fork_session(source, session_id="src")
    await store.fork_session(source, session_id="f1")
    with pytest.raises(SessionAlreadyExists):
        await store.fork_session(source, session_id="f1")
    with pytest.raises(SessionNotFound):
        await store.fork_session(("app", "ann", "nobody"))
    await store.end_session(source)
    with pytest.raises(SessionClosed):
        await store.add_message(source, "user", "no more")
    retry = await store.fork_session(source, at_version=2, user_id="bob", session_id="f2")
    assert texts(retry) == ["one"] and retry.user_id == "bob"
    assert "user:u" not in retry.state  # bob's own user: state, not ann's
    await store.add_message(retry, "user", "again")  # the fork is open
    ended = await get(store, source.key)
    assert ended is not None and ended.status == "ended" and len(ended.forks) == 2
    await store.delete_session(app_name="app", user_id="ann", session_id="src")
    with pytest.raises(SessionNotFound):
        await store.fork_session(source)
    assert (await store.verify()).ok


async def test_rewind_then_append(store: SessionStore) -> None:
    source = await conversation(store)
    before = [r async for r in store.read_stream(source.key)]
    rewound = await store.rewind(source, to_version=2)
    assert isinstance(rewound.data, HistoryRewound) and rewound.version == 7
    back = await get(store, source.key)
    assert texts(back) == ["one"] and back is not None
    assert back.state["a"] == 1 and "b" not in back.state  # the state as it was at 2
    await store.add_message(source, "user", "instead")
    now = await get(store, source.key)
    assert texts(now) == ["one", "instead"]
    assert texts(await get(store, source.key, num_recent_events=1)) == ["instead"]
    assert texts(await get(store, source.key, num_recent_events=5)) == ["one", "instead"]
    assert texts(await store.replay(source)) == ["one", "instead"]
    # The log and replay keep what the rewind hid.
    assert texts(await store.replay(source, to_version=6)) == ["one", "three"]
    stream = [r async for r in store.read_stream(source.key)]
    assert stream[:6] == before and len(stream) == 8
    shown = await store.history.messages(app_name="app", user_id="ann", session_id="src")
    assert [m.text for m in shown] == ["one", "instead"]

    # Rewinding past a rewind and a clear brings back what was visible then.
    await store.clear_history(source)
    assert texts(await get(store, source.key)) == []
    await store.rewind(source, to_version=8)
    assert texts(await get(store, source.key)) == ["one", "instead"]
    await store.rewind(source, to_version=6)
    assert texts(await get(store, source.key)) == ["one", "three"]
    assert texts(await get(store, source.key, at_version=8)) == ["one", "instead"]
    with pytest.raises(InvalidEvent):
        await store.rewind(source, to_version=99)
    with pytest.raises(InvalidEvent):
        await store.rewind(source, to_version=0)
    await check_consistent(store)
    assert texts(await get(store, source.key)) == ["one", "three"]
    shown = await store.history.messages(app_name="app", user_id="ann", session_id="src")
    assert [m.text for m in shown] == ["one", "three"]


async def test_as_of_is_at_version_of_the_last_event_then(store: SessionStore) -> None:
    s = await store.create_session(app_name="app", user_id="ann", session_id="s")
    moments = []
    for word in ("one", "two", "three"):
        await asyncio.sleep(0.02)
        await store.add_message(s, "user", word)
        moments.append(time.time())
        await asyncio.sleep(0.02)
    records = [r async for r in store.read_stream(s.key)]
    for record in records:
        at = await get(store, s.key, as_of=record.recorded_at)
        assert at == await get(store, s.key, at_version=record.version)
    middle = await get(store, s.key, as_of=moments[1])
    assert texts(middle) == ["one", "two"] and middle is not None and middle.version == 3
    aware = datetime.fromtimestamp(moments[0], tz=UTC)
    assert texts(await get(store, s.key, as_of=aware)) == ["one"]
    assert await get(store, s.key, as_of=records[0].recorded_at - 1) is None
    assert await get(store, s.key, as_of=datetime(1969, 1, 1, tzinfo=UTC)) is None
    assert texts(await get(store, s.key, as_of=time.time() + 100)) == ["one", "two", "three"]
    for bad in (datetime(2026, 1, 1), -1, float("nan"), "now", True):
        with pytest.raises(InvalidEvent):
            await get(store, s.key, as_of=bad)
    with pytest.raises(InvalidEvent):
        await get(store, s.key, as_of=moments[0], at_version=2)
    assert await get(store, ("app", "ann", "nobody"), as_of=moments[0]) is None


async def test_compaction_stands_for_the_older_messages(store: SessionStore) -> None:
    s = await store.create_session(app_name="app", user_id="ann", session_id="s")
    await store.append_events(s, [Event(role="user", text=f"m{i}") for i in range(6)])
    with pytest.raises(InvalidEvent):
        await store.compact(s, "x", through_version=3, keep_recent=2)
    with pytest.raises(InvalidEvent):
        await store.compact(s, Event(role="system", text="x", state_delta={"a": 1}))
    with pytest.raises(InvalidEvent):
        await store.compact(s, "x", through_version=99)
    compacted = await store.compact(s, "m0 to m3 were greetings", keep_recent=2)
    assert isinstance(compacted.data, HistoryCompacted)
    assert compacted.data.through_version == 5  # versions 2..5 are m0..m3
    now = await get(store, s.key)
    assert now is not None and texts(now) == ["m0 to m3 were greetings", "m4", "m5"]
    assert now.events[0].type == "HistoryCompacted" and now.messages[0].role == "system"
    assert texts(await get(store, s.key, num_recent_events=2)) == ["m4", "m5"]
    assert texts(await get(store, s.key, num_recent_events=3))[0] == "m0 to m3 were greetings"
    await store.add_message(s, "assistant", "m6")
    replayed = await store.replay(s)
    assert texts(replayed) == texts(await get(store, s.key))
    assert texts(await store.replay(s, to_version=7)) == [f"m{i}" for i in range(6)]
    shown = await store.history.messages(app_name="app", user_id="ann", session_id="s")
    assert [m.text for m in shown] == ["m0 to m3 were greetings", "m4", "m5", "m6"]
    found = await store.history.search("greetings", app_name="app")
    assert [m.text for m in found] == ["m0 to m3 were greetings"]
    fork = await store.fork_session(s, session_id="f")
    assert texts(fork) == texts(await get(store, s.key))
    await store.rewind(s, to_version=7)  # before the compaction: every message again
    assert texts(await get(store, s.key)) == [f"m{i}" for i in range(6)]
    await check_consistent(store)
    assert texts(await get(store, fork.key)) == ["m0 to m3 were greetings", "m4", "m5", "m6"]


async def test_a_compacted_long_session_reads_the_summary_and_the_recent_rows(
        store: SessionStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """20,000 messages, a summary and 20 recent: `get_session` reads 21 event rows."""
    s = await store.create_session(app_name="app", user_id="ann", session_id="long")
    for start in range(0, 20_000, 5_000):
        await store.append_events(s, [Event(role="user", text=f"m{i}", id=f"e{i}")
                                      for i in range(start, start + 5_000)])
    await store.compact(s, "a summary of 19,980 messages", keep_recent=20)
    read: list[int] = []
    statements: list[tuple[str, list[Any]]] = []
    dialect = store.db.dialect
    original = dialect.fetch_then

    async def counting(db: Any, query: str, params: Any, follow: Any) -> Any:
        def then(bodies: Any) -> Any:
            found = follow(bodies)
            statements.append(found)
            return found

        heads, rows = await original(db, query, params, then)
        read.append(len(rows))
        return heads, rows

    monkeypatch.setattr(dialect, "fetch_then", counting)
    now = await get(store, s.key)
    assert now is not None and now.version == 20_002
    assert read == [21]  # the summary and the 20 messages after it, nothing older
    assert texts(now)[:2] == ["a summary of 19,980 messages", "m19980"]
    assert len(now.events) == 21 and texts(now)[-1] == "m19999"
    assert len(texts(await get(store, s.key, num_recent_events=5))) == 5
    assert read[-1] == 6  # the 5 newest, and the summary (left out: 5 messages fill it)
    monkeypatch.undo()
    if store.db.dialect.name == "sqlite":  # and the database searched, never scanned
        with sqlite3.connect(str(store.db.url.database)) as conn:
            for query, params in statements:
                plan = conn.execute("EXPLAIN QUERY PLAN " + query, params).fetchall()
                assert all("SCAN ss_events" not in step[3] for step in plan), plan
    count = len([r async for r in store.read_stream(s.key) if r.type == "MessageAppended"])
    assert count == 20_000  # the log keeps every message
