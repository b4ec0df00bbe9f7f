"""Purging: a purged session takes its `app:`/`user:` writes with it, `purge_user` forgets a
user, and what purge keeps (the facts, the chain) still verifies."""

from __future__ import annotations

from typing import Any

import msgspec
import sqlalchemy as sa

from session_store import Event
from session_store.domain.events import (
    PayloadErased,
    RecordedEvent,
    ScopePurged,
    SessionKey,
    SessionPurged,
    StateChanged,
)
from session_store.errors import SessionNotFound
from session_store.store import SessionStore
from tests.kit import unchanged


async def _stream(store: SessionStore, key: SessionKey) -> list[RecordedEvent]:
    return [record async for record in store.log.read_stream(key)]


async def _raw_payloads(store: SessionStore) -> list[bytes]:
    async with store.db.engine.connect() as conn:
        return [bytes(row[0]) for row in
                (await conn.execute(sa.text("SELECT data FROM ss_events"))).all()]


async def test_a_purged_session_takes_its_shared_writes_with_it(store: SessionStore) -> None:
    """After purging A: what only A wrote to the user and app streams is gone from the log
    and from every read; what other sessions wrote stays, even under a key A overwrote."""
    b = await store.create_session(app_name="app", user_id="ann", session_id="b",
                                   state={"user:theme": "dark-by-b"})
    a = await store.create_session(app_name="app", user_id="ann", session_id="a",
                                   state={"user:colour": "red-secret-a", "own": "own-secret-a"})
    await store.append_event(a, Event(role="user", text="hi", state_delta={
        "user:theme": "light-secret-a", "app:motto": "motto-secret-a"}))
    await store.update_state(b, {"app:banner": "banner-by-b", "user:lang": "en-by-b"})
    await store.update_state(a, {"app:banner": "banner-secret-a"})
    await store.create_session(app_name="app", user_id="bob", session_id="a",
                               state={"user:theme": "bob-theme", "app:bob": "bob-app"})

    await store.delete_session(app_name="app", user_id="ann", session_id="a", purge=True)

    assert not any(b"secret-a" in data for data in await _raw_payloads(store))
    assert await store.get_user_state(app_name="app", user_id="ann") == {
        "theme": "dark-by-b", "lang": "en-by-b"}
    assert await store.get_app_state(app_name="app") == {"banner": "banner-by-b",
                                                         "bob": "bob-app"}
    again = await store.create_session(app_name="app", user_id="ann", session_id="new")
    assert dict(again.state) == {"user:theme": "dark-by-b", "user:lang": "en-by-b",
                                 "app:banner": "banner-by-b", "app:bob": "bob-app"}
    assert again == await store.replay(again)
    # Bob's session "a" (the same id) keeps his own writes; it sees the app state as it is.
    after = await store.get_session(app_name="app", user_id="bob", session_id="a")
    assert after is not None and dict(after.state) == {
        "user:theme": "bob-theme", "app:bob": "bob-app", "app:banner": "banner-by-b"}
    assert await store.get_user_state(app_name="app", user_id="bob") == {"theme": "bob-theme"}
    # The purge facts name exactly what was erased, on each scope stream.
    for stream, erased in ((SessionKey("app", "ann", ""), 2), (SessionKey("app", "", ""), 2)):
        records = await _stream(store, stream)
        facts = [r.data for r in records if isinstance(r.data, ScopePurged)]
        assert len(facts) == 1 and facts[0].session_id == "a"
        gone = [r.event_id for r in records if isinstance(r.data, PayloadErased)]
        assert sorted(facts[0].event_ids) == sorted(gone) and len(gone) == erased
    assert (await store.verify()).ok
    # Purging again is a no-op.
    position = await store.last_position()
    await store.delete_session(app_name="app", user_id="ann", session_id="a", purge=True)
    assert await store.last_position() == position
    # A rebuild folds the erased log to the same read models.
    await store.rebuild()
    assert await store.get_user_state(app_name="app", user_id="ann") == {
        "theme": "dark-by-b", "lang": "en-by-b"}
    assert (await store.verify()).ok


async def test_scope_events_are_linked_to_their_session_and_share_its_commit(
        store: SessionStore) -> None:
    """What a purge's lookup relies on: a scope event names the session (and, on the app
    stream, the user) that wrote it, and is recorded at the time of that session's event."""
    session = await store.create_session(app_name="app", user_id="u", session_id="s",
                                         state={"user:a": 1})
    await store.append_events(session, [Event(role="user", text="x", state_delta={"app:b": 2}),
                                        Event(role="user", text="y", state_delta={"user:c": 3})])
    exported = [record async for record in store.read_stream(session)]
    await store.delete_session(app_name="app", user_id="u", session_id="s", purge=True)
    await store.import_records([_moved(record, "t") for record in exported])
    records = [record async for record in store.read_all()]
    times: dict[tuple[str, str], set[float]] = {}
    for record in records:
        times.setdefault((record.user_id, record.session_id), set()).add(record.recorded_at)
    linked = [r for r in records if not r.session_id and isinstance(r.data, StateChanged)]
    assert {r.data.session_id for r in linked} == {"t"}  # type: ignore[union-attr]
    for record in linked:
        data = record.data
        assert isinstance(data, StateChanged)
        assert data.user_id == (None if record.user_id else "u")
        assert record.recorded_at in times[("u", "t")]


def _moved(record: RecordedEvent, session_id: str) -> RecordedEvent:
    """`record` as if exported from session `session_id` (fresh event ids)."""
    return msgspec.structs.replace(record, session_id=session_id,
                                   event_id=f"{record.event_id}-{session_id}")


async def test_an_imported_session_is_purged_with_its_shared_writes(store: SessionStore
                                                                    ) -> None:
    session = await store.create_session(app_name="app", user_id="u", session_id="s",
                                         state={"user:k": "imported-secret"})
    await store.add_message(session, "user", "hello", state_delta={"app:k": "app-secret"})
    exported = [record async for record in store.read_stream(session)]
    await store.import_records([_moved(record, "t") for record in exported])
    await store.delete_session(app_name="app", user_id="u", session_id="s", purge=True)
    assert await store.get_user_state(app_name="app", user_id="u") == {"k": "imported-secret"}
    await store.delete_session(app_name="app", user_id="u", session_id="t", purge=True)
    assert await store.get_user_state(app_name="app", user_id="u") == {}
    assert await store.get_app_state(app_name="app") == {}
    assert not any(b"secret" in data for data in await _raw_payloads(store))
    assert (await store.verify()).ok


async def test_purging_an_unknown_session_is_refused(store: SessionStore) -> None:
    await unchanged(store, lambda: store.delete_session(app_name="app", user_id="u",
                                                        session_id="nope", purge=True),
                    SessionNotFound)


async def test_a_write_racing_the_purge_is_erased_too(store: SessionStore) -> None:
    """The purge commits at the version it read: a write that lands in between (with its
    scope events, which the purge's lookup missed) makes it look again."""
    session = await store.create_session(app_name="app", user_id="u", session_id="s",
                                         state={"user:a": "first-secret"})
    commit = store._commit
    raced: list[int] = []

    async def racing(appends: Any) -> Any:
        if not raced and any(isinstance(p, SessionPurged) for a in appends for p in a.payloads):
            raced.append(1)
            await store.add_message(session, "user", "late", state_delta={
                "user:b": "late-secret", "app:c": "late-secret"})
        return await commit(appends)

    store._commit = racing  # type: ignore[method-assign]
    await store.delete_session(app_name="app", user_id="u", session_id="s", purge=True)
    assert raced
    assert await store.get_user_state(app_name="app", user_id="u") == {}
    assert await store.get_app_state(app_name="app") == {}
    assert not any(b"secret" in data for data in await _raw_payloads(store))
    assert (await store.verify()).ok


async def test_scope_events_from_before_the_link(store: SessionStore) -> None:
    """A scope event written before scope events named their session cannot be told apart:
    purging a session leaves it, purging the user erases the user's stream whole."""
    session = await store.create_session(app_name="app", user_id="u", session_id="s")
    await store.log.append(SessionKey("app", "u", ""), [StateChanged(delta={"user:x": "old"})])
    await store.delete_session(app_name="app", user_id="u", session_id="s", purge=True)
    assert await store.get_user_state(app_name="app", user_id="u") == {"x": "old"}
    report = await store.purge_user(app_name="app", user_id="u")
    assert (report.sessions, report.scope_events) == (0, 1)
    assert await store.get_user_state(app_name="app", user_id="u") == {}
    assert session.id == "s" and (await store.verify()).ok
