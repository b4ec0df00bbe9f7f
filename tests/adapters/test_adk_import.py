"""Importing ADK databases: every layout ADK writes, into a store on each backend.

Sources are written by ADK's own services; after the import, ADK's
`get_session` on the source and the adapter's on the store must agree, and a
second import must write nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from google.adk.events import Event as AdkEvent
from google.adk.events import EventActions
from google.adk.sessions import BaseSessionService
from google.adk.sessions.database_session_service import DatabaseSessionService
from google.adk.sessions.schemas.v0 import Base as BaseV0
from google.adk.sessions.sqlite_session_service import SqliteSessionService
from google.genai import types

from session_store.adapters.adk import EventSourcedSessionService
from session_store.adapters.adk_import import ImportProgress, ImportSourceError, import_adk
from session_store.store import SessionStore
from tests.conftest import fresh_pg_database

APP = "imported"
Layout = Callable[[Path], AsyncIterator[tuple[str, BaseSessionService]]]


def event(text: str, author: str = "agent", delta: dict[str, Any] | None = None) -> AdkEvent:
    return AdkEvent(
        author=author,
        invocation_id=f"inv-{text}",
        content=types.Content(
            role="user" if author == "user" else "model",
            parts=[types.Part(text=text),
                   types.Part(inline_data=types.Blob(mime_type="x/y", data=text.encode()))],
        ),
        actions=EventActions(state_delta=delta or {}),
        usage_metadata=types.GenerateContentResponseUsageMetadata(
            prompt_token_count=3, candidates_token_count=len(text)),
    )


async def fill(service: BaseSessionService) -> list[tuple[str, str]]:
    """Three sessions of two users with scoped state; returns their (user, id)."""
    a = await service.create_session(app_name=APP, user_id="u1", session_id="a",
                                     state={"greeting": "hi", "app:plan": "free", "user:tz": 1})
    for i in range(4):
        await service.append_event(a, event(f"a{i}", "user" if i % 2 == 0 else "agent",
                                            {"step": i, "user:tz": i}))
    b = await service.create_session(app_name=APP, user_id="u1", session_id="b")
    await service.append_event(b, event("b0", delta={"app:plan": "pro", "temp:t": 1}))
    c = await service.create_session(app_name=APP, user_id="u2", session_id="a",
                                     state={"mine": [1, 2]})
    await service.append_event(c, event("c0", delta={"mine": [3]}))
    return [("u1", "a"), ("u1", "b"), ("u2", "a")]


async def assert_same(source: BaseSessionService, store: SessionStore,
                      keys: list[tuple[str, str]]) -> None:
    target = EventSourcedSessionService(store=store)
    for user, sid in keys:
        want = await source.get_session(app_name=APP, user_id=user, session_id=sid)
        got = await target.get_session(app_name=APP, user_id=user, session_id=sid)
        assert want is not None and got is not None
        assert (got.id, got.app_name, got.user_id) == (want.id, want.app_name, want.user_id)
        assert got.state == want.state
        assert got.events == want.events
    for user in ("u1", "u2"):
        assert (await target.get_user_state(app_name=APP, user_id=user)
                == await source.get_user_state(app_name=APP, user_id=user))


async def database_sqlite(tmp: Path) -> AsyncIterator[tuple[str, BaseSessionService]]:
    path = tmp / "adk_database.db"
    service = DatabaseSessionService(f"sqlite+aiosqlite:///{path}")
    yield f"sqlite:///{path}", service
    await service.close()


async def sqlite_service(tmp: Path) -> AsyncIterator[tuple[str, BaseSessionService]]:
    path = tmp / "adk_sqlite.db"
    yield str(path), SqliteSessionService(str(path))


async def legacy_database(tmp: Path) -> AsyncIterator[tuple[str, BaseSessionService]]:
    """The pre-JSON (pickled, column per field) DatabaseSessionService schema."""
    path = tmp / "adk_legacy.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    BaseV0.metadata.create_all(engine)
    engine.dispose()
    service = DatabaseSessionService(f"sqlite+aiosqlite:///{path}")
    yield str(path), service
    await service.close()


@pytest.mark.parametrize(("layout", "kind"), [
    (database_sqlite, "DatabaseSessionService (SQLite, JSON schema)"),
    (sqlite_service, "SqliteSessionService"),
    (legacy_database, "DatabaseSessionService (SQLite, legacy pickled schema)"),
], ids=["database-service", "sqlite-service", "legacy-schema"])
async def test_import_then_import_again(layout: Layout, kind: str, tmp_path: Path,
                                        store: SessionStore) -> None:
    async for url, source in layout(tmp_path):
        keys = await fill(source)
        seen: list[ImportProgress] = []
        report = await import_adk(url, store, progress=seen.append)
        assert report.source == kind
        assert (report.sessions_found, report.sessions_created) == (3, 3)
        assert report.events_found == report.events_imported == 6
        assert not report.skipped
        assert seen[-1] == ImportProgress(3, 3, 6, 6)
        await assert_same(source, store, keys)

        again = await import_adk(url, store)
        assert not again.changed_anything
        assert (again.sessions_found, again.events_found, again.events_imported) == (3, 6, 0)
        await assert_same(source, store, keys)

        # New activity in the source is picked up, and only that.
        a = await source.get_session(app_name=APP, user_id="u1", session_id="a")
        assert a is not None
        await source.append_event(a, event("later", delta={"step": 99}))
        await source.create_session(app_name=APP, user_id="u3", session_id="new")
        third = await import_adk(url, store)
        assert (third.sessions_created, third.events_imported) == (1, 1)
        await assert_same(source, store, [*keys, ("u3", "new")])


async def test_state_changed_outside_events_is_carried_over(tmp_path: Path,
                                                           store: SessionStore) -> None:
    path = tmp_path / "adk_sqlite.db"
    source = SqliteSessionService(str(path))
    keys = await fill(source)
    with sqlite3.connect(path) as conn:  # an operator edited state by hand
        conn.execute("UPDATE sessions SET state = json_set(state, '$.step', 42, '$.extra', 'x')"
                     " WHERE user_id = 'u1' AND id = 'a'")
        conn.execute("UPDATE app_states SET state = json_set(state, '$.plan', 'enterprise')")
    report = await import_adk(str(path), store)
    assert report.state_fixes == 2
    await assert_same(source, store, keys)
    assert (await import_adk(str(path), store)).state_fixes == 0


async def test_import_from_postgresql(store: SessionStore) -> None:
    async with fresh_pg_database() as url:
        source = DatabaseSessionService(url)
        try:
            keys = await fill(source)
            report = await import_adk(url.replace("+asyncpg", ""), store)
            assert (report.sessions_created, report.events_imported) == (3, 6)
            await assert_same(source, store, keys)
            assert not (await import_adk(url, store)).changed_anything
        finally:
            await source.close()


async def test_sources_that_are_not_adk_databases(tmp_path: Path, store: SessionStore) -> None:
    with pytest.raises(ImportSourceError, match="does not exist"):
        await import_adk(str(tmp_path / "missing.db"), store)
    plain = tmp_path / "plain.db"
    with sqlite3.connect(plain) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(ImportSourceError, match="no ADK sessions"):
        await import_adk(str(plain), store)
    with pytest.raises(ImportSourceError, match="unsupported source"):
        await import_adk("mysql://somewhere/db", store)


async def test_import_keeps_adk_times(store: SessionStore, tmp_path: Path) -> None:
    """Each ADK event's own timestamp becomes its `recorded_at`; the session starts at its
    first event, so a replay shows no negative offsets."""
    path = tmp_path / "adk_times.db"
    source = SqliteSessionService(str(path))
    session = await source.create_session(app_name=APP, user_id="u1", session_id="old")
    stamps = [1_600_000_000.0, 1_600_000_060.5, 1_600_003_600.25]
    for index, stamp in enumerate(stamps):
        adk_event = event(f"t{index}")
        adk_event.timestamp = stamp
        await source.append_event(session, adk_event)
    await import_adk(str(path), store)
    imported = await store.get_session(app_name=APP, user_id="u1", session_id="old")
    assert imported is not None
    assert [e.recorded_at for e in imported.events] == stamps
    assert imported.created_at == stamps[0]
    assert imported.last_update_time == stamps[-1]
    assert (await store.verify()).ok
