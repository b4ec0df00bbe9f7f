"""`state_history(session, key)`: every value a key took, in order, for session keys and the
shared `user:`/`app:` scopes, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from session_store.errors import InvalidEvent, SessionNotFound
from session_store.store import SessionStore


async def test_every_value_of_every_scope_in_order(store: SessionStore) -> None:
    ann = await store.create_session(app_name="app", user_id="ann", session_id="s1",
                                     state={"k": "created", "user:lang": "en"})
    await store.add_message(ann, "user", "hi", state_delta={"k": "said", "app:n": 1})
    await store.update_state(ann, {"k": "said", "other": 1})  # the same value, written again
    await store.update_state(ann, {"k": {"nested": [1]}, "user:lang": "fr"})
    other = await store.create_session(app_name="app", user_id="ann", session_id="s2")
    await store.update_state(other, {"user:lang": "de", "app:n": 2})
    bob = await store.create_session(app_name="app", user_id="bob", session_id="s3")
    await store.update_state(bob, {"app:n": 3, "user:lang": "nl"})
    await store.rewind(ann, to_version=2)  # k goes back to "said"

    values = await store.state_history(ann, "k")
    assert [(v.value, v.present, v.version) for v in values] == [
        ("created", True, 1), ("said", True, 2), ("said", True, 3),
        ({"nested": [1]}, True, 4), ("said", True, 5)]
    assert all(v.stream == ann.key and v.session_id == "s1" for v in values)
    times = [v.recorded_at for v in values]
    assert times == sorted(times)

    lang = await store.state_history(ann, "user:lang")
    assert [(v.value, v.session_id) for v in lang] == [("en", "s1"), ("fr", "s1"), ("de", "s2")]
    assert {v.stream for v in lang} == {("app", "ann", "")}
    assert [v.value for v in await store.state_history(bob, "user:lang")] == ["nl"]
    app = await store.state_history(bob, "app:n")
    assert [(v.value, v.session_id) for v in app] == [(1, "s1"), (2, "s2"), (3, "s3")]
    positions = [v.position for v in app]
    assert positions == sorted(positions)

    assert await store.state_history(ann, "never") == []
    fork = await store.fork_session(ann, at_version=1, session_id="f")
    assert [v.value for v in await store.state_history(fork, "k")] == ["created"]


async def test_state_history_refusals(store: SessionStore) -> None:
    s = await store.create_session(app_name="app", user_id="ann", session_id="s1")
    for bad in ("temp:x", "", None, 3):
        with pytest.raises(InvalidEvent):
            await store.state_history(s, bad)  # type: ignore[arg-type]
    with pytest.raises(SessionNotFound):
        await store.state_history(("app", "ann", "nobody"), "k")
    await store.delete_session(app_name="app", user_id="ann", session_id="s1")
    with pytest.raises(SessionNotFound):
        await store.state_history(s, "k")
    assert [v.value for v in await store.state_history(
        await store.create_session(app_name="app", user_id="ann", session_id="ü✓",
                                   state={"ключ": "значение"}), "ключ")] == ["значение"]
