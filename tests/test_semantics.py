"""Semantics that agree: one meaning of every time filter, statistics that say what they
cover, the status of a past version, tags that change, snapshots deeply immutable."""

from __future__ import annotations

import copy
import json
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from session_store import Event, Session, Usage
from session_store.errors import InvalidEvent
from session_store.store import SessionStore

KEY = {"app_name": "app", "user_id": "u", "session_id": "s"}
TIMES = [100.0, 200.0, 300.0, 400.0]


async def test_every_time_filter_is_at_or_after_the_message_time(store: SessionStore) -> None:
    session = await store.create_session(**KEY)
    await store.append_events(session, [Event(role="user", text=f"t{int(t)}", timestamp=t)
                                        for t in TIMES])
    full = await store.get_session(**KEY)
    assert full is not None
    cut = 200.0
    expected = [f"t{int(t)}" for t in TIMES if t >= cut]  # inclusive, everywhere
    as_datetime = datetime.fromtimestamp(cut, tz=timezone(timedelta(hours=5)))

    for when in (cut, int(cut), as_datetime):
        assert [m.text for m in full.messages_after(when)] == expected
        listed = await store.history.messages(**KEY, since=when)
        assert [m.text for m in listed] == expected
        windowed = await store.get_session(**KEY, after_timestamp=when)
        assert windowed is not None and [m.text for m in windowed.messages] == expected
        past = await store.get_session(**KEY, after_timestamp=when, at_version=5)
        assert past is not None and [m.text for m in past.messages] == expected
        until = await store.history.messages(**KEY, until=when)
        assert [m.text for m in until] == [f"t{int(t)}" for t in TIMES if t <= cut]
    recent = await store.get_session(**KEY, after_timestamp=cut, num_recent_events=2)
    assert recent is not None and [m.text for m in recent.messages] == expected[-2:]

    naive = datetime(2020, 1, 1)
    for call in (lambda: full.messages_after(naive),
                 lambda: full.messages_after("200"),  # type: ignore[arg-type]
                 lambda: full.messages_after(float("nan"))):
        with pytest.raises(InvalidEvent):
            call()
    for bad in (naive, -1.0, True, "x"):
        with pytest.raises(InvalidEvent):
            await store.history.messages(**KEY, since=bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidEvent):
            await store.get_session(**KEY, after_timestamp=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidEvent):
        await store.list_sessions(app_name="app", since=naive)
    later = datetime.now(UTC) - timedelta(minutes=5)
    assert [s.id for s in (await store.list_sessions(app_name="app", since=later)).sessions] == [
        "s"]


async def test_statistics_say_what_they_cover(store: SessionStore) -> None:
    session = await store.create_session(**KEY)
    times = [0.5, 1.5, 2.5]
    for index, response_time in enumerate(times):
        await store.append_event(session, Event(
            role="assistant", text=f"a{index}", response_time=response_time,
            usage=Usage(tokens_in=10 * (index + 1), tokens_out=1)))
    tracked = [9.0, 8.0, 7.0, 6.0]
    for value in tracked:
        await store.track_interaction(session, tokens_in=100, response_time=value)
    await store.track_interaction(session, tokens_in=1)  # no response time: not a 0 s one

    whole = await store.get_session(**KEY)
    assert whole is not None
    stats = whole.statistics()
    every = sorted(times + tracked)
    assert stats.covers == "session" == whole.covers
    assert (stats.messages, stats.interactions) == (3, 3 + 5)
    assert stats.tokens_in == 10 + 20 + 30 + 4 * 100 + 1
    assert stats.mean_response_time == pytest.approx(sum(every) / len(every))
    rank = -(-95 * len(every) // 100)  # nearest rank, ceil(0.95 n)
    assert stats.p95_response_time == every[rank - 1] == 9.0
    replayed = await store.replay(session)
    assert replayed.statistics() == stats

    window = await store.get_session(**KEY, num_recent_events=2)
    assert window is not None
    small = window.statistics()
    assert small.covers == "window" == window.covers
    assert (small.messages, small.interactions, small.tokens_in) == (2, 2, 20 + 30)
    assert small.mean_response_time == pytest.approx((1.5 + 2.5) / 2)
    assert small.p95_response_time == 2.5

    summary = (await store.list_sessions(app_name="app")).sessions[0]
    assert summary.covers == "summary"
    with pytest.raises(InvalidEvent, match="get_session"):
        summary.statistics()


async def test_at_version_shows_the_status_of_that_version(store: SessionStore) -> None:
    session = await store.create_session(**KEY, timeout=0.05)
    await store.add_message(session, "user", "hi")
    time.sleep(0.1)
    now = await store.get_session(**KEY)
    assert now is not None and now.status == "expired"
    for version in (1, 2):
        then = await store.get_session(**KEY, at_version=version)
        assert then is not None and then.status == "active", version
    await store.archive_session(session)
    archived = await store.get_session(**KEY, at_version=3)
    assert archived is not None and archived.status == "archived"


async def test_tags_change_with_an_event(store: SessionStore) -> None:
    session = await store.create_session(**KEY, tags=["a", "b"])
    recorded = await store.set_tags(session, ["c", "b", "c"])
    assert recorded.type == "TagsChanged"
    now = await store.get_session(**KEY)
    assert now is not None and now.tags == ("c", "b")

    async def ids(tag: str) -> list[str]:
        return [s.id for s in (await store.list_sessions(app_name="app", tags=[tag])).sessions]

    assert (await ids("a"), await ids("b"), await ids("c")) == ([], ["s"], ["s"])
    then = await store.get_session(**KEY, at_version=1)
    assert then is not None and then.tags == ("a", "b")
    await store.set_tags(session, [])
    assert await ids("b") == []
    for bad in ("solo", [""], [1], ["x" * 600], ["a\nb"]):
        with pytest.raises(InvalidEvent):
            await store.set_tags(session, bad)  # type: ignore[arg-type]
    assert (await store.get_session(**KEY)).version == 3  # type: ignore[union-attr]
    assert (await store.verify()).ok


async def test_snapshots_are_deeply_immutable(store: SessionStore) -> None:
    state = {"plan": {"steps": [1, 2, {"deep": [3]}]}, "flat": 1}
    session = await store.create_session(**KEY, state=state, metadata={"m": {"n": [1]}})
    loaded = await store.get_session(**KEY)
    assert loaded is not None
    for snapshot in (session, loaded, await store.replay(session)):
        _refuses_changes(snapshot)
        assert snapshot.state == state and snapshot.metadata == {"m": {"n": [1]}}
        mine = copy.deepcopy(dict(snapshot.state))
        mine["plan"]["steps"].append(4)  # a copy is the caller's own
        assert mine["plan"]["steps"] == [1, 2, {"deep": [3]}, 4]
        assert json.loads(json.dumps(dict(snapshot.state))) == state
    again = await store.get_session(**KEY)
    assert again is not None and again.state == state


def _refuses_changes(snapshot: Session) -> None:
    plan = snapshot.state["plan"]
    with pytest.raises(TypeError):
        plan["x"] = 1
    with pytest.raises(TypeError):
        plan["steps"].append(4)
    with pytest.raises(TypeError):
        plan["steps"][2]["deep"].pop()
    with pytest.raises(TypeError):
        plan.update(a=1)
    with pytest.raises(TypeError):
        plan.setdefault("y", 1)
    with pytest.raises(TypeError):
        plan["steps"] += [5]
    with pytest.raises(TypeError):
        snapshot.metadata["m"]["n"].append(2)
    with pytest.raises(TypeError):
        snapshot.metadata["m"].clear()
