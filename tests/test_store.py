"""Sessions table of API.md: create, get, list, delete, archive/reactivate/end, expiry."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from session_store import (
    Event,
    InvalidEvent,
    SessionAlreadyExists,
    SessionClosed,
    SessionKey,
    SessionNotFound,
    open_store,
)
from session_store.storage.schema import events
from session_store.store import SessionStore
from tests.kit import unchanged


async def test_create_generates_a_uuid_and_returns_the_session(store: SessionStore) -> None:
    session = await store.create_session(app_name="app", user_id="u1", state={"a": 1},
                                         metadata={"m": "x"}, tags=["t1", "t2", "t1"],
                                         timeout=60)
    assert uuid.UUID(session.id).version == 7  # time-ordered (see events.new_ids)
    assert session.key == SessionKey("app", "u1", session.id)
    assert session.version == 1 and session.status == "active"
    assert dict(session.state) == {"a": 1} and dict(session.metadata) == {"m": "x"}
    assert session.tags == ("t1", "t2")
    assert session.events == ()
    assert session.expires_at == pytest.approx(session.last_update_time + 60)
    again = await store.get_session(app_name="app", user_id="u1", session_id=session.id)
    assert again == session


async def test_create_with_explicit_id_and_timedelta(store: SessionStore) -> None:
    session = await store.create_session(app_name="app", user_id="u1", session_id="s-1",
                                         timeout=timedelta(minutes=2))
    assert session.id == "s-1"
    assert session.expires_at == pytest.approx(session.created_at + 120)


async def test_two_creates_get_distinct_ids(store: SessionStore) -> None:
    ids = {(await store.create_session(app_name="a", user_id="u")).id for _ in range(5)}
    assert len(ids) == 5


async def test_taken_id_raises_already_exists_and_writes_nothing(store: SessionStore) -> None:
    await store.create_session(app_name="app", user_id="u1", session_id="s")
    await unchanged(store, lambda: store.create_session(app_name="app", user_id="u1",
                                                        session_id="s", state={"user:x": 1}),
                    SessionAlreadyExists)
    # The same id under another user or app is another session.
    other = await store.create_session(app_name="app", user_id="u2", session_id="s")
    assert other.key == SessionKey("app", "u2", "s")
    await store.create_session(app_name="app2", user_id="u1", session_id="s")


async def test_deleted_id_is_never_reused(store: SessionStore) -> None:
    await store.create_session(app_name="app", user_id="u", session_id="s")
    await store.delete_session(app_name="app", user_id="u", session_id="s")
    await unchanged(store, lambda: store.create_session(app_name="app", user_id="u",
                                                        session_id="s"),
                    SessionAlreadyExists)
    await store.delete_session(app_name="app", user_id="u", session_id="s", purge=True)
    await unchanged(store, lambda: store.create_session(app_name="app", user_id="u",
                                                        session_id="s"),
                    SessionAlreadyExists)


async def test_concurrent_creates_of_one_id_have_one_winner(store: SessionStore) -> None:
    results = await asyncio.gather(
        *(store.create_session(app_name="app", user_id="u", session_id="race", state={"i": i})
          for i in range(10)), return_exceptions=True)
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, SessionAlreadyExists) for r in results if r not in winners)
    assert [e.version async for e in store.read_stream(("app", "u", "race"))] == [1]


async def test_get_session_is_scoped_by_app_user_and_id(store: SessionStore) -> None:
    session = await store.create_session(app_name="app", user_id="u1", session_id="s")
    assert await store.get_session(app_name="app", user_id="u1", session_id="s") == session
    assert await store.get_session(app_name="app", user_id="u2", session_id="s") is None
    assert await store.get_session(app_name="other", user_id="u1", session_id="s") is None
    assert await store.get_session(app_name="app", user_id="u1", session_id="nope") is None


async def _seed(store: SessionStore) -> dict[str, float]:
    """Sessions with distinct activity times; returns session id -> last_update_time."""
    made: dict[str, float] = {}
    for index in range(7):
        user = "alice" if index % 2 == 0 else "bob"
        tags = ["even"] if index % 2 == 0 else ["odd"]
        if index % 3 == 0:
            tags.append("third")
        session = await store.create_session(app_name="app", user_id=user,
                                             session_id=f"s{index}", tags=tags)
        made[session.id] = session.last_update_time
    await store.create_session(app_name="other-app", user_id="alice", session_id="x")
    return made


async def test_list_sessions_filters(store: SessionStore) -> None:
    made = await _seed(store)

    async def ids(**filters: object) -> list[str]:
        page = await store.list_sessions(app_name="app", **filters)  # type: ignore[arg-type]
        return [s.id for s in page.sessions]

    everything = await ids()
    assert everything == sorted(made, key=lambda i: made[i])  # oldest activity first
    assert await ids(user_id="alice") == ["s0", "s2", "s4", "s6"]
    assert await ids(tags=["odd"]) == ["s1", "s3", "s5"]
    assert await ids(tags=["even", "third"]) == ["s0", "s6"]
    assert await ids(tags=["nope"]) == []
    cut = made["s4"]
    assert await ids(since=cut) == ["s4", "s5", "s6"]
    await store.archive_session(("app", "bob", "s3"))
    await store.end_session(("app", "alice", "s2"))
    assert await ids(status="archived") == ["s3"]
    assert await ids(status="ended") == ["s2"]
    assert "s2" not in await ids(status="active") and "s3" not in await ids(status="active")
    assert await ids(status="expired") == []
    page = await store.list_sessions(app_name="app", user_id="alice", limit=2)
    assert all(s.events == () for s in page.sessions)
    assert [s.user_id for s in page.sessions] == ["alice", "alice"]


async def test_list_sessions_pages_without_duplicates_or_misses(store: SessionStore) -> None:
    expected = []
    for index in range(23):
        session = await store.create_session(app_name="app", user_id=f"u{index % 3}",
                                             state={"i": index})
        expected.append(session.id)
    for user_id, wanted in ((None, expected), ("u1", expected[1::3])):
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            page = await store.list_sessions(app_name="app", user_id=user_id, limit=4,
                                             cursor=cursor)
            pages += 1
            assert len(page.sessions) <= 4
            seen.extend(s.id for s in page.sessions)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == wanted
        assert pages == -(-len(wanted) // 4)


async def test_list_sessions_summaries_carry_state_and_metadata(store: SessionStore) -> None:
    await store.create_session(app_name="app", user_id="u", session_id="s",
                               state={"k": 1, "user:name": "Ann", "app:v": 2},
                               metadata={"title": "hi"})
    (summary,) = (await store.list_sessions(app_name="app")).sessions
    assert dict(summary.state) == {"k": 1, "user:name": "Ann", "app:v": 2}
    assert dict(summary.metadata) == {"title": "hi"}


async def test_get_user_sessions(store: SessionStore) -> None:
    await _seed(store)
    sessions = await store.get_user_sessions(app_name="app", user_id="bob")
    assert sorted(s.id for s in sessions) == ["s1", "s3", "s5"]
    assert await store.get_user_sessions(app_name="app", user_id="nobody") == []
    assert [s.id for s in await store.get_user_sessions(app_name="other-app",
                                                          user_id="alice")] == ["x"]


async def test_delete_hides_everywhere_and_refuses_late_appends(store: SessionStore) -> None:
    session = await store.create_session(app_name="app", user_id="u", session_id="s",
                                         tags=["t"])
    await store.add_message(session, "user", "hello")
    await store.delete_session(app_name="app", user_id="u", session_id="s")
    assert await store.get_session(app_name="app", user_id="u", session_id="s") is None
    assert await store.get_session(app_name="app", user_id="u", session_id="s",
                                   at_version=2) is None
    assert (await store.list_sessions(app_name="app")).sessions == []
    assert (await store.list_sessions(app_name="app", tags=["t"])).sessions == []
    assert await store.get_user_sessions(app_name="app", user_id="u") == []
    with pytest.raises(SessionNotFound):
        await store.replay(session)
    await unchanged(store, lambda: store.add_message(session, "user", "late"), SessionClosed)
    await unchanged(store, lambda: store.update_state(session, {"user:x": 1}), SessionClosed)
    await unchanged(store, lambda: store.reactivate_session(session), SessionClosed)
    # The log keeps everything: the tombstone is a new event.
    types = [e.type async for e in store.read_stream(session)]
    assert types == ["SessionCreated", "MessageAppended", "SessionDeleted"]
    # Deleting again is a no-op; a missing session is an error.
    before = await store.log.last_position()
    await store.delete_session(app_name="app", user_id="u", session_id="s")
    assert await store.log.last_position() == before
    await unchanged(store, lambda: store.delete_session(app_name="app", user_id="u",
                                                        session_id="missing"),
                    SessionNotFound)
    await unchanged(store, lambda: store.delete_session(app_name="app", user_id="other",
                                                        session_id="s"),
                    SessionNotFound)


async def test_purge_erases_payloads_and_keeps_the_facts(store: SessionStore) -> None:
    session = await store.create_session(app_name="app", user_id="u", session_id="s",
                                         state={"secret": "pw"}, metadata={"email": "a@b.c"})
    await store.add_message(session, "user", "my card is 4111")
    keep = await store.create_session(app_name="app", user_id="u", session_id="keep",
                                      state={"secret": "other"})
    await store.delete_session(app_name="app", user_id="u", session_id="s", purge=True)
    async with store.db.engine.connect() as conn:
        rows = (await conn.execute(
            sa.select(events.c.type, events.c.data).where(events.c.session_id == "s")
            .order_by(events.c.version))).all()
    assert [r[0] for r in rows] == ["SessionCreated", "MessageAppended", "SessionDeleted",
                                    "SessionPurged"]
    assert all(bytes(r[1]) == b"" for r in rows[:3])
    assert b"4111" not in bytes(rows[3][1]) and b"pw" not in bytes(rows[3][1])
    assert await store.get_session(app_name="app", user_id="u", session_id="s") is None
    assert await store.get_session(app_name="app", user_id="u", session_id="s",
                                   at_version=2) is None
    # Other sessions are untouched.
    assert await store.get_session(app_name="app", user_id="u", session_id="keep") == keep
    assert [s.id for s in (await store.list_sessions(app_name="app")).sessions] == ["keep"]


async def test_purge_after_plain_delete(store: SessionStore) -> None:
    await store.create_session(app_name="app", user_id="u", session_id="s", state={"k": "v"})
    await store.delete_session(app_name="app", user_id="u", session_id="s")
    await store.delete_session(app_name="app", user_id="u", session_id="s", purge=True)
    stored = [e async for e in store.read_stream(("app", "u", "s"))]
    assert [e.type for e in stored] == ["SessionCreated", "SessionDeleted", "SessionPurged"]
    assert [type(e.data).__name__ for e in stored] == ["PayloadErased", "PayloadErased",
                                                       "SessionPurged"]


async def test_archive_reactivate_end(store: SessionStore) -> None:
    session = await store.create_session(app_name="app", user_id="u")

    async def status() -> str:
        found = await store.get_session(app_name="app", user_id="u", session_id=session.id)
        assert found is not None
        return found.status

    await store.archive_session(session)
    assert await status() == "archived"
    await store.add_message(session, "user", "still writable while archived")
    await store.reactivate_session(session)
    assert await status() == "active"
    await store.end_session(session)
    assert await status() == "ended"
    await unchanged(store, lambda: store.add_message(session, "user", "x"), SessionClosed)
    await unchanged(store, lambda: store.reactivate_session(session), SessionClosed)
    await unchanged(store, lambda: store.archive_session(session), SessionClosed)
    # Ended sessions can still be deleted.
    await store.delete_session(app_name="app", user_id="u", session_id=session.id)
    assert await store.get_session(app_name="app", user_id="u", session_id=session.id) is None


async def test_cleanup_expired_sessions(store: SessionStore) -> None:
    await store.create_session(app_name="app", user_id="u", session_id="long", timeout=3600)
    await store.create_session(app_name="app", user_id="u", session_id="forever")
    ended = await store.create_session(app_name="app", user_id="u", session_id="ended",
                                       timeout=0.2)
    await store.end_session(ended)
    gone = await store.create_session(app_name="app", user_id="u", session_id="gone",
                                      timeout=0.2)
    await store.delete_session(app_name="app", user_id="u", session_id="gone")
    assert await store.cleanup_expired_sessions() == 0  # long and forever are not due
    short = await store.create_session(app_name="app", user_id="u", session_id="short",
                                       timeout=0.2)
    await asyncio.sleep(0.3)
    # Overdue but not yet cleaned: reads already call it expired.
    found = await store.get_session(app_name="app", user_id="u", session_id="short")
    assert found is not None and found.status == "expired"
    assert await store.cleanup_expired_sessions() == 1
    assert await store.cleanup_expired_sessions() == 0  # idempotent
    types = [e.type async for e in store.read_stream(short)]
    assert types == ["SessionCreated", "SessionExpired"]
    page = await store.list_sessions(app_name="app", status="expired")
    assert [s.id for s in page.sessions] == ["short"]
    assert gone.id not in [s.id for s in (await store.list_sessions(app_name="app")).sessions]
    # Activity brings an expired session back.
    await store.add_message(short, "user", "back")
    found = await store.get_session(app_name="app", user_id="u", session_id="short")
    assert found is not None and found.status == "active"


async def test_timeout_must_be_positive(store: SessionStore) -> None:
    for bad in (0, -1, 0.0, float("nan"), float("inf"), timedelta(0), timedelta(seconds=-5),
                "10", True):
        await unchanged(store, lambda bad=bad: store.create_session(  # type: ignore[misc]
            app_name="app", user_id="u", timeout=bad), InvalidEvent)


async def test_created_at_and_activity_times(store: SessionStore) -> None:
    before = time.time()
    session = await store.create_session(app_name="app", user_id="u")
    assert before <= session.created_at <= time.time()
    await asyncio.sleep(0.01)
    await store.append_event(session, Event(role="user", text="hi"))
    found = await store.get_session(app_name="app", user_id="u", session_id=session.id)
    assert found is not None and found.last_update_time > session.last_update_time
    assert found.created_at == session.created_at


async def test_find_sessions_and_import_records_refuse_bad_input(store: SessionStore) -> None:
    await store.create_session(app_name="a", user_id="u", session_id="s")
    assert await store.find_sessions("s") == [("a", "u", "s")]
    assert await store.find_sessions("s", app_name="b") == []
    for bad in ({"app_name": 7}, {"user_id": ""}, {"limit": 0}):
        with pytest.raises(InvalidEvent):
            await store.find_sessions("s", **bad)  # type: ignore[arg-type]
    before = await store.count_events()
    with pytest.raises(InvalidEvent, match="RecordedEvent"):
        await store.import_records([{"type": "SessionCreated"}])  # type: ignore[list-item]
    assert await store.count_events() == before
    exported = [record async for record in store.read_stream(("a", "u", "s"))]
    report = await store.import_records(exported)
    assert (report.events, report.added, report.present) == (1, 0, 1)  # nothing added
    assert await store.count_events() == before


async def test_import_adds_what_a_continued_session_added_since(store: SessionStore,
                                                               tmp_path: Path) -> None:
    session = await store.create_session(app_name="a", user_id="u", session_id="s")
    await store.add_message(session, "user", "one", state_delta={"app:k": 1})
    early = [record async for record in store.read_stream(session)]
    await store.add_message(session, "user", "two", state_delta={"user:k": 2})
    later = [record async for record in store.read_stream(session)]
    async with open_store(str(tmp_path / "other.db")) as other:
        first = await other.import_records(early)
        assert (first.added, first.present, first.sessions_added) == (2, 0, 1)
        second = await other.import_records(later)
        assert (second.events, second.added, second.present) == (3, 1, 2)
        assert second.sessions_added == 0
        again = await other.import_records(later)
        assert (again.added, again.present) == (0, 3)
        copied = await other.get_session(app_name="a", user_id="u", session_id="s")
        assert copied is not None and dict(copied.state) == {"app:k": 1, "user:k": 2}
        assert (await other.verify()).ok
