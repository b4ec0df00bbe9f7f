"""Bad input: a typed error, nothing written, and the store still consistent afterwards."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from session_store import (
    Event,
    InvalidEvent,
    Session,
    SessionClosed,
    SessionNotFound,
    SessionStoreError,
    Usage,
)
from session_store.store import SessionStore
from tests.kit import unchanged

Call = Callable[[SessionStore, Session], Awaitable[Any]]

NAN = float("nan")

CASES: dict[str, tuple[Call, type[SessionStoreError]]] = {
    "unknown session": (lambda st, s: st.add_message(("app", "u", "nope"), "user", "x"),
                        SessionNotFound),
    "unknown session, shared state": (
        lambda st, s: st.update_state(("app", "u", "nope"), {"app:k": 1, "user:k": 1}),
        SessionNotFound),
    "wrong user": (lambda st, s: st.add_message(("app", "mallory", s.id), "user", "x"),
                   SessionNotFound),
    "wrong app": (lambda st, s: st.update_state(("other", "u", s.id), {"k": 1}),
                  SessionNotFound),
    "empty role": (lambda st, s: st.add_message(s, "", "x"), InvalidEvent),
    "blank role": (lambda st, s: st.add_message(s, "  ", "x"), InvalidEvent),
    "role not a string": (lambda st, s: st.add_message(s, 7, "x"), InvalidEvent),  # type: ignore[arg-type]
    "text not a string": (lambda st, s: st.add_message(s, "user", 5), InvalidEvent),  # type: ignore[arg-type]
    "parts not a list": (lambda st, s: st.add_message(s, "user", parts="x"), InvalidEvent),
    "event not an Event": (lambda st, s: st.append_event(s, {"role": "user"}),  # type: ignore[arg-type]
                           InvalidEvent),
    "non-JSON state": (lambda st, s: st.update_state(s, {"k": {1, 2}}), InvalidEvent),
    "bytes in state": (lambda st, s: st.update_state(s, {"k": b"x"}), InvalidEvent),
    "object in delta": (lambda st, s: st.add_message(s, "user", "x",
                                                      state_delta={"k": object()}),
                        InvalidEvent),
    "NaN in state": (lambda st, s: st.update_state(s, {"k": NAN}), InvalidEvent),
    "NaN in shared state": (lambda st, s: st.update_state(s, {"app:k": [1.0, NAN]}),
                            InvalidEvent),
    "infinity in metadata": (lambda st, s: st.update_session_metadata(s, {"k": float("inf")}),
                             InvalidEvent),
    "non-string key": (lambda st, s: st.update_state(s, {1: "x"}), InvalidEvent),  # type: ignore[dict-item]
    "nested non-string key": (lambda st, s: st.update_session_metadata(s, {"k": {(1,): 2}}),
                              InvalidEvent),
    "delta not a mapping": (lambda st, s: st.update_state(s, [("k", 1)]), InvalidEvent),  # type: ignore[arg-type]
    "negative tokens": (lambda st, s: st.track_interaction(s, tokens_in=-1), InvalidEvent),
    "float tokens": (lambda st, s: st.track_interaction(s, tokens_out=1.5), InvalidEvent),  # type: ignore[arg-type]
    "negative usage": (lambda st, s: st.add_message(s, "user", "x",
                                                     usage=Usage(tokens_out=-3)),
                       InvalidEvent),
    "usage as dict": (lambda st, s: st.add_message(s, "user", "x", usage={"tokens_in": 1}),
                      InvalidEvent),
    "NaN response time": (lambda st, s: st.track_interaction(s, response_time=NAN),
                          InvalidEvent),
    "negative response time": (lambda st, s: st.add_message(s, "user", "x",
                                                             response_time=-0.1),
                               InvalidEvent),
    "timestamp as text": (lambda st, s: st.add_message(s, "user", "x", timestamp="now"),
                          InvalidEvent),
    "empty event id": (lambda st, s: st.append_event(s, Event(role="user", id="")),
                       InvalidEvent),
    "bad expected_version": (lambda st, s: st.append_event(s, Event(role="user"),
                                                            expected_version=-1),
                             InvalidEvent),
    "session ref garbage": (lambda st, s: st.add_message(42, "user", "x"),  # type: ignore[arg-type]
                            InvalidEvent),
    "empty app in ref": (lambda st, s: st.add_message(("", "u", s.id), "user", "x"),
                         InvalidEvent),
    "scope stream as ref": (lambda st, s: st.add_message(("app", "u", ""), "user", "x"),
                            InvalidEvent),
    "metadata patch not a mapping": (lambda st, s: st.update_session_metadata(s, "x"),  # type: ignore[arg-type]
                                     InvalidEvent),
    "create: state not JSON": (lambda st, s: st.create_session(app_name="app", user_id="u",
                                                               state={"k": NAN}),
                               InvalidEvent),
    "create: metadata key": (lambda st, s: st.create_session(app_name="app", user_id="u",
                                                             metadata={2: 1}),  # type: ignore[dict-item]
                             InvalidEvent),
    "create: tags a string": (lambda st, s: st.create_session(app_name="app", user_id="u",
                                                              tags="abc"),
                              InvalidEvent),
    "create: empty tag": (lambda st, s: st.create_session(app_name="app", user_id="u",
                                                          tags=[""]),
                          InvalidEvent),
    "create: timeout 0": (lambda st, s: st.create_session(app_name="app", user_id="u",
                                                          timeout=0), InvalidEvent),
    "create: timeout < 0": (lambda st, s: st.create_session(app_name="app", user_id="u",
                                                            timeout=-5), InvalidEvent),
    "create: empty session id": (lambda st, s: st.create_session(app_name="app", user_id="u",
                                                                 session_id=""),
                                 InvalidEvent),
    "create: user id not str": (lambda st, s: st.create_session(app_name="app", user_id=3),  # type: ignore[arg-type]
                                InvalidEvent),
    "create: control chars": (lambda st, s: st.create_session(app_name="app", user_id="u",
                                                              session_id="a\nb"),
                              InvalidEvent),
    "get: negative recent": (lambda st, s: st.get_session(app_name="app", user_id="u",
                                                          session_id=s.id,
                                                          num_recent_events=-1),
                             InvalidEvent),
    "get: after_timestamp text": (lambda st, s: st.get_session(app_name="app", user_id="u",
                                                               session_id=s.id,
                                                               after_timestamp="yesterday"),
                                  InvalidEvent),
    "get: after_timestamp NaN": (lambda st, s: st.get_session(app_name="app", user_id="u",
                                                              session_id=s.id,
                                                              after_timestamp=NAN),
                                 InvalidEvent),
    "get: at_version text": (lambda st, s: st.get_session(app_name="app", user_id="u",
                                                          session_id=s.id, at_version="1"),
                             InvalidEvent),
    "list: bad status": (lambda st, s: st.list_sessions(app_name="app", status="gone"),
                         InvalidEvent),
    "list: limit 0": (lambda st, s: st.list_sessions(app_name="app", limit=0), InvalidEvent),
    "list: forged cursor": (lambda st, s: st.list_sessions(app_name="app", cursor="!!"),
                            InvalidEvent),
    "list: cursor not a string": (lambda st, s: st.list_sessions(app_name="app", cursor=5),
                                  InvalidEvent),
    "list: cursor of wrong shape": (lambda st, s: st.list_sessions(app_name="app",
                                                                   cursor="WzEsMl0="),
                                    InvalidEvent),
    "list: since text": (lambda st, s: st.list_sessions(app_name="app", since="x"),
                         InvalidEvent),
    "list: tags a string": (lambda st, s: st.list_sessions(app_name="app", tags="abc"),
                            InvalidEvent),
    "replay: missing": (lambda st, s: st.replay(("app", "u", "nope")), SessionNotFound),
    "delete: missing": (lambda st, s: st.delete_session(app_name="app", user_id="u",
                                                        session_id="nope"),
                        SessionNotFound),
}


async def test_bad_input_is_refused_and_nothing_written(store: SessionStore) -> None:
    """Every case in CASES, one after another on one store (a database per case is slow)."""
    session = await store.create_session(app_name="app", user_id="u", state={"k": 0})
    await store.add_message(session, "user", "before")
    texts = ["before"]
    failures: list[str] = []
    for case, (call, error) in CASES.items():
        before = await store.log.last_position()
        try:
            await call(store, session)
        except error:
            pass
        except Exception as other:  # noqa: BLE001 - reported below with the case name
            failures.append(f"{case}: raised {other!r}, wanted {error.__name__}")
        else:
            failures.append(f"{case}: did not raise {error.__name__}")
        if await store.log.last_position() != before:
            failures.append(f"{case}: wrote to the log")
        # Still consistent: reads as before, accepts appends, replays equal.
        found = await store.get_session(app_name="app", user_id="u", session_id=session.id)
        if found is None or dict(found.state) != {"k": 0} or found.version != len(texts) + 1:
            failures.append(f"{case}: session changed: {found}")
        await store.add_message(session, "user", case)
        texts.append(case)
    assert failures == []
    found = await store.get_session(app_name="app", user_id="u", session_id=session.id)
    assert found is not None and [m.text for m in found.messages] == texts
    assert found == await store.replay(session)
    assert [s.id for s in (await store.list_sessions(app_name="app")).sessions] == [session.id]


async def test_closed_session_refuses_every_command(store: SessionStore) -> None:
    session = await store.create_session(app_name="app", user_id="u")
    await store.end_session(session)
    for call in (lambda: store.add_message(session, "user", "x"),
                 lambda: store.update_state(session, {"user:k": 1}),
                 lambda: store.update_session_metadata(session, {"k": 1}),
                 lambda: store.track_interaction(session, tokens_in=1),
                 lambda: store.clear_history(session),
                 lambda: store.end_session(session)):
        await unchanged(store, call, SessionClosed)
