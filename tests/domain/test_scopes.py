"""State scopes: where a key lives, and how a delta splits over the scope streams."""

from __future__ import annotations

from session_store.domain.events import (
    Event,
    MessageAppended,
    SessionCreated,
    SessionEnded,
    SessionKey,
    StateChanged,
)
from session_store.domain.scopes import (
    delta_of,
    key_scope,
    scope_of,
    shared_change,
    shared_deltas,
    update_stream_state,
    without_temp,
    written_by,
)

KEY = SessionKey("app", "ada", "s1")


def test_key_scopes_by_prefix() -> None:
    assert [key_scope(k) for k in ("app:x", "user:x", "temp:x", "x", "apps:x")] == [
        "app", "user", "temp", "session", "session"]


def test_streams_and_their_scope() -> None:
    assert scope_of(KEY) == "session"
    assert scope_of(SessionKey("app", "ada", "")) == "user"
    assert scope_of(SessionKey("app", "", "")) == "app"


def test_a_delta_splits_app_first_then_user_and_keeps_the_rest_out() -> None:
    delta = {"user:home": "Oslo", "city": "Lisbon", "app:n": 1, "temp:draft": "..."}
    assert shared_deltas(KEY, delta) == [
        (SessionKey("app", "", ""), {"app:n": 1}),
        (SessionKey("app", "ada", ""), {"user:home": "Oslo"}),
    ]
    assert shared_deltas(KEY, {"city": "x"}) == [] and shared_deltas(KEY, None) == []
    assert without_temp(delta) == {"user:home": "Oslo", "city": "Lisbon", "app:n": 1}


def test_each_stream_folds_only_its_own_keys() -> None:
    delta = {"user:home": "Oslo", "city": "Lisbon", "app:n": 1, "temp:draft": "..."}
    for key, expected in ((KEY, {"city": "Lisbon"}),
                          (SessionKey("app", "ada", ""), {"user:home": "Oslo"}),
                          (SessionKey("app", "", ""), {"app:n": 1})):
        state: dict[str, object] = {}
        update_stream_state(key, state, delta)
        assert state == expected


def test_the_delta_each_event_records() -> None:
    message = Event(role="user", text="hi", state_delta={"user:a": 1})
    assert delta_of(MessageAppended(message=message)) == {"user:a": 1}
    assert delta_of(MessageAppended(message=Event(role="user"))) == {}
    assert delta_of(StateChanged(delta={"b": 2})) == {"b": 2}
    assert delta_of(SessionCreated(state={"app:c": 3})) == {"app:c": 3}
    assert delta_of(SessionEnded()) == {}


def test_a_shared_change_names_the_session_that_wrote_it() -> None:
    user_stream, app_stream = SessionKey("app", "ada", ""), SessionKey("app", "", "")
    on_user = shared_change(KEY, user_stream, {"user:a": 1})
    on_app = shared_change(KEY, app_stream, {"app:a": 1})
    assert on_user == StateChanged(delta={"user:a": 1}, session_id="s1")
    assert on_app == StateChanged(delta={"app:a": 1}, session_id="s1", user_id="ada")
    assert written_by(user_stream, on_user, "ada", {"s1"})
    assert written_by(app_stream, on_app, "ada", {"s1", "s2"})
    # The same session id of another user, another session, or no link at all: not hers.
    assert not written_by(app_stream, on_app, "bob", {"s1"})
    assert not written_by(user_stream, on_user, "ada", {"s2"})
    assert not written_by(app_stream, StateChanged(delta={"app:a": 1}), "ada", {"s1"})
