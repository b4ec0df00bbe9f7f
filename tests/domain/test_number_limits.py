"""Numbers a read model stores are bounded at the API: past a limit, `InvalidEvent` names the
field and the limit, and nothing is written (on every backend)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from session_store import Event, InvalidEvent, Session, Usage
from session_store.domain import validation
from session_store.domain.events import InteractionTracked, MessageAppended, RecordedEvent
from session_store.store import SessionStore

Call = Callable[[SessionStore, Session], Awaitable[Any]]
TOKENS = "2**40"
SECONDS = "1,000,000 seconds"
YEAR_9999 = "253,402,300,799"

CASES: dict[str, tuple[Call, str, str]] = {
    "usage tokens_in 2**63": (
        lambda st, s: st.append_event(s, Event(role="assistant", text="x",
                                               usage=Usage(tokens_in=2**63))),
        "usage.tokens_in", TOKENS),
    "usage tokens_out past the limit": (
        lambda st, s: st.add_message(s, "assistant", "x",
                                     usage=Usage(tokens_out=validation.MAX_TOKENS + 1)),
        "usage.tokens_out", TOKENS),
    "usage tokens a bool": (
        lambda st, s: st.add_message(s, "assistant", "x", usage=Usage(tokens_in=True)),
        "usage.tokens_in", "int"),
    "message response_time 1e13": (
        lambda st, s: st.add_message(s, "assistant", "x", response_time=1e13),
        "response_time", SECONDS),
    "message response_time a huge int": (
        lambda st, s: st.append_event(s, Event(role="assistant", response_time=10**400)),
        "response_time", SECONDS),
    "message timestamp 1e13": (
        lambda st, s: st.add_message(s, "user", "x", timestamp=1e13),
        "timestamp", YEAR_9999),
    "message timestamp a huge int": (
        lambda st, s: st.add_message(s, "user", "x", timestamp=10**400),
        "timestamp", YEAR_9999),
    "message timestamp a bool": (
        lambda st, s: st.add_message(s, "user", "x", timestamp=True),
        "timestamp", "number"),
    "tracked tokens_in 2**63": (
        lambda st, s: st.track_interaction(s, tokens_in=2**63), "tokens_in", TOKENS),
    "tracked tokens_out past the limit": (
        lambda st, s: st.track_interaction(s, tokens_out=2**41), "tokens_out", TOKENS),
    "tracked tokens a bool": (
        lambda st, s: st.track_interaction(s, tokens_in=True), "tokens_in", "int"),
    "tracked response_time 1e13": (
        lambda st, s: st.track_interaction(s, response_time=1e13), "response_time", SECONDS),
    "tracked response_time a huge int": (
        lambda st, s: st.track_interaction(s, response_time=10**400), "response_time",
        "limit"),
    "tracked response_time a bool": (
        lambda st, s: st.track_interaction(s, response_time=True), "response_time", "number"),
    "timeout 1e12 seconds": (
        lambda st, s: st.create_session(app_name="app", user_id="u", timeout=1e12),
        "timeout", "100 years"),
    "timeout of 200 years": (
        lambda st, s: st.create_session(app_name="app", user_id="u",
                                        timeout=timedelta(days=365 * 200)),
        "timeout", "100 years"),
    "the log refuses what the facade would": (
        lambda st, s: st.log.append(s.key, [InteractionTracked(tokens_in=2**63)]),
        "tokens_in", TOKENS),
    "an import carrying a poison event": (
        lambda st, s: st.import_records([RecordedEvent(
            position=1, app_name="app", user_id="u", session_id=s.id, version=2,
            type="MessageAppended", event_id="imported-1", recorded_at=1.0, hash="",
            data=MessageAppended(message=Event(role="user", timestamp=1e13)))]),
        "timestamp", YEAR_9999),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_a_number_past_its_limit_is_refused_and_nothing_written(
        store: SessionStore, case: str) -> None:
    session = await store.create_session(app_name="app", user_id="u")
    call, field, limit = CASES[case]
    before = await store.count_events()
    with pytest.raises(InvalidEvent) as refused:
        await call(store, session)
    message = str(refused.value)
    assert field in message and limit in message, message
    assert await store.count_events() == before


async def test_counts_past_int64_are_refused(store: SessionStore) -> None:
    session = await store.create_session(app_name="app", user_id="u")
    with pytest.raises(InvalidEvent, match=r"num_recent_events .*2\*\*63 - 1"):
        await store.get_session(app_name="app", user_id="u", session_id=session.id,
                                num_recent_events=2**64)


async def test_the_limits_themselves_are_accepted_and_folded(store: SessionStore) -> None:
    top = validation.MAX_TOKENS
    session = await store.create_session(app_name="app", user_id="u",
                                         timeout=validation.MAX_TIMEOUT)
    await store.add_message(session, "assistant", "at the limits",
                            usage=Usage(tokens_in=top, tokens_out=top),
                            response_time=validation.MAX_RESPONSE_TIME,
                            timestamp=validation.MAX_TIMESTAMP)
    await store.track_interaction(session, tokens_in=top, tokens_out=top,
                                  response_time=validation.MAX_RESPONSE_TIME)
    await store.add_message(session, "user", "the epoch", timestamp=0)
    stats = await store.analytics.by_session("app", "u", session.id)
    assert stats is not None and stats.tokens_in == 2 * top
    assert stats.response_time.max == validation.MAX_RESPONSE_TIME
    user = await store.users.get(app_name="app", user_id="u")
    assert user is not None and user.tokens_out == 2 * top
    messages = await store.history.messages(app_name="app", user_id="u", session_id=session.id)
    assert [m.timestamp for m in messages] == [validation.MAX_TIMESTAMP, 0]
    assert (await store.verify()).ok
    assert (await store.health()).ok
