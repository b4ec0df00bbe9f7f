"""Middleware (transform or reject before append) and lifecycle hooks (after commit)."""

from __future__ import annotations

import re
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa
import structlog

from session_store import Event, InvalidEvent, RecordedEvent, SessionKey
from session_store.domain.events import (
    MessageAppended,
    Payload,
    SessionCreated,
    StateChanged,
)
from session_store.store import SessionStore
from tests.kit import unchanged

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


def redact(key: SessionKey, payload: Payload) -> Payload:
    if isinstance(payload, MessageAppended) and payload.message.text:
        text = _EMAIL.sub("[email]", payload.message.text)
        return msgspec.structs.replace(
            payload, message=msgspec.structs.replace(payload.message, text=text))
    return payload


async def test_middleware_redacts_before_anything_is_stored(store: SessionStore) -> None:
    store.use(redact)
    session = await store.create_session(app_name="app", user_id="u")
    recorded = await store.add_message(session, "user", "mail me at ann.lee@example.com please")
    assert isinstance(recorded.data, MessageAppended)
    assert recorded.data.message.text == "mail me at [email] please"
    found = await store.get_session(app_name="app", user_id="u", session_id=session.id)
    assert found is not None and found.messages[0].text == "mail me at [email] please"
    async for record in store.read_all():
        assert b"example.com" not in msgspec.json.encode(record.data)


def _hide_mail(value: Any) -> Any:
    return _EMAIL.sub("[email]", value) if isinstance(value, str) else value


def redact_state(key: SessionKey, payload: Payload) -> Payload:
    """Redacts e-mail addresses in every state a payload carries (initial state and deltas)."""
    if isinstance(payload, SessionCreated):
        return msgspec.structs.replace(
            payload, state={k: _hide_mail(v) for k, v in payload.state.items()})
    if isinstance(payload, StateChanged):
        return msgspec.structs.replace(
            payload, delta={k: _hide_mail(v) for k, v in payload.delta.items()})
    if isinstance(payload, MessageAppended) and payload.message.state_delta:
        delta = {k: _hide_mail(v) for k, v in payload.message.state_delta.items()}
        return msgspec.structs.replace(
            payload, message=msgspec.structs.replace(payload.message, state_delta=delta))
    return payload


async def test_middleware_runs_before_shared_state_is_split(store: SessionStore) -> None:
    """What the middleware changes is what every stream stores: the app and user scope
    streams get the redacted values too, and no row of the log holds the raw ones."""
    store.use(redact_state)
    session = await store.create_session(
        app_name="app", user_id="u", state={"user:mail": "ann@home.example", "own": 1,
                                            "app:desk": "desk@corp.example"})
    await store.append_event(session, Event(role="user", text="hi", state_delta={
        "user:work": "ann@work.example", "temp:t": "tmp@temp.example"}))
    await store.update_state(session, {"app:help": "help@corp.example", "temp:x": 1})
    assert await store.get_user_state(app_name="app", user_id="u") == {
        "mail": "[email]", "work": "[email]"}
    assert await store.get_app_state(app_name="app") == {"desk": "[email]", "help": "[email]"}
    found = await store.get_session(app_name="app", user_id="u", session_id=session.id)
    assert found is not None and dict(found.state) == {
        "user:mail": "[email]", "own": 1, "app:desk": "[email]", "user:work": "[email]",
        "app:help": "[email]"}
    assert found == await store.replay(session)
    async with store.db.engine.connect() as conn:
        rows = (await conn.execute(sa.text("SELECT session_id, data FROM ss_events"))).all()
    assert {row[0] for row in rows} == {"", session.id}  # the scope streams were written
    for _, data in rows:
        assert b".example" not in bytes(data) and b"temp:" not in bytes(data)
    assert (await store.verify()).ok


async def test_async_middleware_that_rejects_writes_nothing(store: SessionStore) -> None:
    seen: list[SessionKey] = []

    async def no_shouting(key: SessionKey, payload: Payload) -> Payload:
        seen.append(key)
        if isinstance(payload, MessageAppended) and (payload.message.text or "").isupper():
            raise InvalidEvent("no shouting")
        return payload

    store.use(no_shouting)
    session = await store.create_session(app_name="app", user_id="u")
    await unchanged(store, lambda: store.append_event(
        session, Event(role="user", text="HELLO", state_delta={"app:x": 1})), InvalidEvent)
    await store.add_message(session, "user", "hello")
    found = await store.get_session(app_name="app", user_id="u", session_id=session.id)
    assert found is not None and [m.text for m in found.messages] == ["hello"]
    assert "app:x" not in found.state
    assert seen[0] == session.key


async def test_middleware_returning_garbage_is_refused(store: SessionStore) -> None:
    session = await store.create_session(app_name="app", user_id="u")
    store.use(lambda key, payload: None)  # type: ignore[arg-type,return-value]
    await unchanged(store, lambda: store.add_message(session, "user", "x"), InvalidEvent)


async def test_lifecycle_hooks_run_after_commit(store: SessionStore) -> None:
    calls: list[tuple[str, int, int]] = []

    async def record(event: RecordedEvent) -> None:
        # After commit: a fresh read already sees the event.
        found = await store.get_session(app_name=event.app_name, user_id=event.user_id,
                                        session_id=event.session_id)
        calls.append((event.type, event.version, found.version if found else -1))

    for name in ("session_created", "message_appended", "SessionArchived", "session_deleted",
                 "session_expired"):
        store.on(name, record)
    everything: list[str] = []
    store.on("*", lambda event: everything.append(event.type))
    session = await store.create_session(app_name="app", user_id="u", timeout=0.01)
    event = Event(role="user", text="hi")
    await store.append_event(session, event)
    await store.append_event(session, event)  # idempotent re-send: not a new fact
    await store.archive_session(session)
    await store.reactivate_session(session)
    await store.delete_session(app_name="app", user_id="u", session_id=session.id)
    assert calls == [("SessionCreated", 1, 1), ("MessageAppended", 2, 2),
                     ("SessionArchived", 3, 3), ("SessionDeleted", 5, -1)]
    assert everything == ["SessionCreated", "MessageAppended", "SessionArchived",
                          "SessionReactivated", "SessionDeleted"]


async def test_expiry_hook(store: SessionStore) -> None:
    import asyncio

    expired: list[str] = []
    store.on("session_expired", lambda event: expired.append(event.session_id))
    session = await store.create_session(app_name="app", user_id="u", timeout=0.05)
    await asyncio.sleep(0.1)
    assert await store.cleanup_expired_sessions() == 1
    assert expired == [session.id]


async def test_a_raising_hook_is_logged_and_the_append_kept(store: SessionStore) -> None:
    def broken(event: RecordedEvent) -> None:
        raise RuntimeError("hook bug")

    later: list[int] = []
    store.on("message_appended", broken)
    store.on("message_appended", lambda event: later.append(event.version))
    session = await store.create_session(app_name="app", user_id="u")
    with structlog.testing.capture_logs() as logs:
        recorded = await store.add_message(session, "user", "kept")
    assert recorded.version == 2
    assert later == [2]  # the other hooks still ran
    failures = [entry for entry in logs if entry["event"] == "session_store.hook_failed"]
    assert len(failures) == 1 and "hook bug" in failures[0]["error"]
    found = await store.get_session(app_name="app", user_id="u", session_id=session.id)
    assert found is not None and found.messages[0].text == "kept"


async def test_unknown_hook_name_is_refused(store: SessionStore) -> None:
    with pytest.raises(ValueError):
        store.on("message_apended", lambda event: None)
