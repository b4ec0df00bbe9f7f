"""The read models answer what the events say, on SQLite and PostgreSQL, inline and catch-up."""

from __future__ import annotations

import pytest

from session_store.domain.events import (
    HistoryCleared,
    InteractionTracked,
    MessageRetracted,
    Payload,
    SessionArchived,
    SessionCreated,
    SessionDeleted,
    SessionExpired,
    SessionKey,
    SessionPurged,
    StateChanged,
)
from tests.kit import ALL_CATCHUP, ALL_INLINE, append, opened, purge, read_models, said

S1 = SessionKey("app", "ann", "s1")
S2 = SessionKey("app", "ann", "s2")
S3 = SessionKey("app", "bob", "s1")  # same session id, another user
OTHER = SessionKey("other", "ann", "s1")


@pytest.fixture(params=["inline", "catchup"])
def modes(request: pytest.FixtureRequest) -> dict[str, str]:
    return ALL_INLINE if request.param == "inline" else ALL_CATCHUP


async def test_history_filters_retraction_and_clearing(store_url: str,
                                                       modes: dict[str, str]) -> None:
    async with opened(store_url, modes) as (log, runtime):
        await append(log, S1, SessionCreated(), said("Hello there", timestamp=100.0),
                     said("General Kenobi", "assistant", timestamp=200.0),
                     said("oops", message_id="m-oops", timestamp=300.0),
                     said("café crème", "tool", timestamp=400.0))
        await append(log, S3, SessionCreated(), said("hello from bob"))
        last = await append(log, S1, MessageRetracted(message_id="m-oops"))
        await runtime.wait_for(last, timeout=10)
        history = read_models(runtime).history
        texts = [m.text for m in await history.messages(app_name="app", user_id="ann",
                                                        session_id="s1")]
        assert texts == ["Hello there", "General Kenobi", "café crème"]
        assistant = await history.messages(app_name="app", user_id="ann", session_id="s1",
                                           roles=["assistant"])
        assert [m.text for m in assistant] == ["General Kenobi"]
        window = await history.messages(app_name="app", user_id="ann", session_id="s1",
                                        since=150.0, until=450.0)
        assert [m.timestamp for m in window] == [200.0, 400.0]
        first = (await history.messages(app_name="app", user_id="ann", session_id="s1"))[0]
        assert (first.role, first.author, first.version) == ("user", "user", 2)

        found = await history.search("HELLO", app_name="app")
        assert {(m.user_id, m.text) for m in found} == {("ann", "Hello there"),
                                                        ("bob", "hello from bob")}
        assert [m.text for m in await history.search("hello", app_name="app",
                                                     user_id="bob")] == ["hello from bob"]
        assert [m.text for m in await history.search("cafe", app_name="app")] == ["café crème"]
        assert await history.search("oops", app_name="app") == []  # retracted
        assert await history.search("kenobi general", app_name="other") == []
        assert await history.search("  ", app_name="app") == []

        last = await append(log, S1, HistoryCleared(), said("fresh start"))
        await runtime.wait_for(last, timeout=10)
        texts = [m.text for m in await history.messages(app_name="app", user_id="ann",
                                                        session_id="s1")]
        assert texts == ["fresh start"]
        assert await history.search("kenobi", app_name="app") == []
        assert await history.count(app_name="app", user_id="bob", session_id="s1") == 1


async def test_deleted_and_purged_sessions_leave_history(store_url: str,
                                                         modes: dict[str, str]) -> None:
    async with opened(store_url, modes) as (log, runtime):
        await append(log, S1, SessionCreated(), said("secret one"))
        await append(log, S2, SessionCreated(), said("secret two"))
        await append(log, S1, SessionDeleted())
        last = await purge(log, S2, SessionPurged(reason="gdpr"))
        await runtime.wait_for(last, timeout=10)
        assert await read_models(runtime).history.search("secret", app_name="app") == []
        for key in (S1, S2):
            assert await read_models(runtime).history.messages(
                app_name=key.app_name, user_id=key.user_id, session_id=key.session_id) == []
        assert await runtime.verify() == []


async def test_user_index(store_url: str, modes: dict[str, str]) -> None:
    async with opened(store_url, modes) as (log, runtime):
        first = await append(log, S1, SessionCreated(), said("hi", tokens=(10, 0)),
                             said("yo", "assistant", tokens=(0, 20)))
        await append(log, S2, SessionCreated(), InteractionTracked(tokens_in=5, tokens_out=6))
        await append(log, S3, SessionCreated())
        await append(log, OTHER, SessionCreated(), said("elsewhere"))
        await append(log, SessionKey("app", "ann", "s3"), SessionCreated(), said("x"))
        await append(log, SessionKey("app", "ann", "s3"), SessionDeleted())
        await append(log, S2, SessionArchived())
        last = await append(log, S1, SessionExpired(), StateChanged(delta={"k": 1}))
        await runtime.wait_for(last, timeout=10)
        ann = await read_models(runtime).users.get(app_name="app", user_id="ann")
        assert ann is not None
        assert ann.sessions == {"active": 1, "archived": 1, "ended": 0, "expired": 0}
        assert ann.session_count == 2
        assert (ann.messages, ann.tokens_in, ann.tokens_out) == (3, 15, 26)  # deleted s3 too
        assert ann.first_seen <= ann.last_active
        assert first > 0
        listed = await read_models(runtime).users.list(app_name="app")
        assert [u.user_id for u in listed] == ["ann", "bob"]
        after = await read_models(runtime).users.list(app_name="app", after="ann")
        assert [u.user_id for u in after] == ["bob"]
        sessions = await read_models(runtime).users.sessions(app_name="app", user_id="ann")
        assert {(s.session_id, s.status) for s in sessions} == {("s1", "active"),
                                                                ("s2", "archived")}
        archived = await read_models(runtime).users.sessions(app_name="app", user_id="ann",
                                                status="archived")
        assert [(s.session_id, s.tokens_in, s.tokens_out) for s in archived] == [("s2", 5, 6)]
        assert await read_models(runtime).users.get(app_name="app", user_id="nobody") is None

        await purge(log, S1, SessionPurged())
        last = await purge(log, S2, SessionPurged())
        await runtime.wait_for(last, timeout=10)
        ann = await read_models(runtime).users.get(app_name="app", user_id="ann")
        assert ann is not None and ann.session_count == 0 and ann.messages == 1  # s3 remains
        last = await purge(log, S3, SessionPurged())
        await runtime.wait_for(last, timeout=10)
        forgotten = await read_models(runtime).users.get(app_name="app", user_id="bob")
        assert forgotten is None
        assert await runtime.verify() == []


async def test_analytics(store_url: str, modes: dict[str, str]) -> None:
    async with opened(store_url, modes) as (log, runtime):
        times = [0.1 * (i + 1) for i in range(100)]  # 0.1 .. 10.0 seconds
        payloads: list[Payload] = [SessionCreated()]
        for index, seconds in enumerate(times):
            payloads.append(said(f"q{index}"))
            payloads.append(said(f"a{index}", "assistant", tokens=(3, 7),
                                 response_time=seconds))
        await append(log, S1, *payloads)
        await append(log, S2, SessionCreated(), said("plain"),
                     InteractionTracked(tokens_in=1, tokens_out=1),
                     InteractionTracked(tokens_in=2, tokens_out=2, response_time=20.0),
                     said("timed", "assistant", response_time=0.5))
        last = await append(log, S3, SessionCreated(), said("bob", tokens=(100, 0)))
        await runtime.wait_for(last, timeout=10)
        analytics = read_models(runtime).analytics

        one = await analytics.by_session("app", "ann", "s1")
        assert one is not None
        assert (one.interactions, one.messages, one.tokens_in, one.tokens_out) == (
            100, 200, 300, 700)
        assert one.messages_by_role == {"assistant": 100, "user": 100}
        rt = one.response_time
        assert rt.count == 100 and rt.min == pytest.approx(0.1) and rt.max == pytest.approx(10.0)
        assert rt.total == pytest.approx(sum(times)) and rt.mean == pytest.approx(5.05)
        for value, want in ((rt.p50, 5.0), (rt.p95, 9.5), (rt.p99, 9.9)):
            assert value is not None and abs(value - want) / want < 0.03

        two = await analytics.by_session("app", "ann", "s2")
        assert two is not None
        assert (two.interactions, two.messages, two.tokens_in, two.tokens_out) == (3, 2, 3, 3)
        assert (two.response_time.count, two.response_time.max) == (2, 20.0)

        users = {s.user_id: s for s in await analytics.by_user("app")}
        assert set(users) == {"ann", "bob"}
        assert users["ann"].interactions == 103 and users["ann"].response_time.count == 102
        assert users["ann"].response_time.max == 20.0
        apps = await analytics.by_app()
        assert [(a.app_name, a.messages, a.tokens_in) for a in apps] == [("app", 203, 403)]
        days = await analytics.by_day("app")
        assert len(days) == 1 and days[0].messages == 203 and days[0].day is not None
        assert await analytics.by_day("app", since="2999-01-01") == []
        assert len(await analytics.sessions("app")) == 3

        await append(log, S2, SessionDeleted())
        last = await purge(log, S3, SessionPurged())
        await runtime.wait_for(last, timeout=10)
        assert await analytics.by_session("app", "ann", "s2") is None  # hidden
        users = {s.user_id: s for s in await analytics.by_user("app")}
        assert set(users) == {"ann"} and users["ann"].interactions == 103  # kept in rollups
        apps = await analytics.by_app()
        assert [(a.messages, a.tokens_in) for a in apps] == [(202, 303)]  # bob forgotten
        assert (await analytics.by_day("app"))[0].response_time.max == 20.0
        assert await runtime.verify() == []


async def test_wait_for_times_out_and_inline_needs_no_wait(store_url: str) -> None:
    async with opened(store_url, ALL_INLINE) as (log, runtime):
        last = await append(log, S1, SessionCreated(), said("now"))
        await runtime.wait_for(last + 1000, timeout=0.1)  # nothing to wait for: all inline
        history = read_models(runtime).history
        assert await history.count(app_name="app", user_id="ann", session_id="s1") == 1
    async with opened(store_url, ALL_CATCHUP) as (log, runtime):
        with pytest.raises(TimeoutError):
            await runtime.wait_for(last + 1000, timeout=0.2)


def test_modes_are_checked() -> None:
    from projections.runtime import resolve_modes

    assert resolve_modes({"history": "catch-up"})["history"] == "catchup"
    with pytest.raises(ValueError, match="unknown projection"):
        resolve_modes({"histories": "inline"})
    with pytest.raises(ValueError, match="mode must be"):
        resolve_modes({"users": "eventually"})
    with pytest.raises(ValueError, match="always runs inline"):
        resolve_modes({"heads": "catchup"})
