"""Bring the sessions of an existing Google ADK database into the log.

Sources: a `DatabaseSessionService` database (current JSON schema or the legacy
pickled one, on SQLite or PostgreSQL) or a `SqliteSessionService` file. The
source is read through ADK's own service, so every event comes back exactly as
ADK's `get_session` returns it; it is appended the way the adapter appends
(`adk_codec`), with event ids derived from ADK's, so a second run finds every
event already stored and writes nothing. State is then compared with ADK's and
any difference (state changed outside events) is appended as `StateChanged`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from google.adk.sessions.base_session_service import BaseSessionService
from google.adk.sessions.database_session_service import DatabaseSessionService
from google.adk.sessions.session import Session as AdkSession
from google.adk.sessions.sqlite_session_service import SqliteSessionService
from google.adk.sessions.state import State
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from session_store.adapters.adk_codec import json_safe_state, store_event_id, to_store_event
from session_store.appending import appended
from session_store.domain import validation
from session_store.domain.events import (
    Payload,
    RecordedEvent,
    SessionCreated,
    SessionKey,
    type_name,
)
from session_store.errors import SessionStoreError
from session_store.store import SessionStore

CONCURRENCY = 8
"""Sessions imported at once (the store's group commit batches their appends)."""


class ImportSourceError(SessionStoreError, ValueError):
    """The source is not an ADK session database this importer can read."""


@dataclass(frozen=True, slots=True)
class ImportProgress:
    sessions_done: int
    sessions_total: int
    events_done: int
    events_total: int


@dataclass(slots=True)
class ImportReport:
    source: str
    """Which ADK layout was read, e.g. 'DatabaseSessionService (schema 1)'."""
    sessions_found: int = 0
    sessions_created: int = 0
    events_found: int = 0
    events_imported: int = 0
    state_fixes: int = 0
    """`StateChanged` events appended where ADK's state differed from the events' fold."""
    skipped: list[str] = field(default_factory=list)
    """Sessions that could not be imported, with the reason."""
    seconds: float = 0.0

    @property
    def changed_anything(self) -> bool:
        return bool(self.sessions_created or self.events_imported or self.state_fixes)


ProgressCallback = Callable[[ImportProgress], None]


@dataclass(frozen=True, slots=True)
class _Source:
    kind: str
    async_url: str
    service: BaseSessionService


def _sqlite_path(source_url: str) -> Path | None:
    if "://" not in source_url:
        return Path(source_url)
    url = make_url(source_url)
    if url.get_backend_name() != "sqlite":
        return None
    if not url.database:
        raise ImportSourceError("an in-memory SQLite database has nothing to import")
    return Path(url.database)


def _sqlite_layout(path: Path) -> str:
    """'database-v1', 'database-v0' or 'sqlite' for an ADK SQLite file."""
    if not path.is_file():
        raise ImportSourceError(f"{path} does not exist")
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
            if not {"sessions", "events"} <= tables:
                raise ImportSourceError(f"{path} has no ADK sessions and events tables")
            columns = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
    except sqlite3.DatabaseError as error:
        raise ImportSourceError(f"{path} is not a readable SQLite database: {error}") from error
    if "adk_internal_metadata" in tables:
        return "database-v1"
    return "sqlite" if "event_data" in columns else "database-v0"


def open_source(source_url: str) -> _Source:
    """Recognise the source's layout and open it with the ADK service that wrote it."""
    path = _sqlite_path(source_url)
    if path is None:
        url = make_url(source_url)
        if url.get_backend_name() != "postgresql":
            raise ImportSourceError(
                f"unsupported source {url.get_backend_name()!r}: give a SQLite file or a "
                "PostgreSQL URL of an ADK DatabaseSessionService database"
            )
        async_url = url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
        return _Source("DatabaseSessionService (PostgreSQL)", async_url,
                       DatabaseSessionService(async_url))
    async_url = f"sqlite+aiosqlite:///{path}"
    layout = _sqlite_layout(path)
    if layout == "sqlite":
        return _Source("SqliteSessionService", async_url, SqliteSessionService(str(path)))
    kind = "DatabaseSessionService (SQLite, %s schema)" % (
        "JSON" if layout == "database-v1" else "legacy pickled")
    return _Source(kind, async_url, DatabaseSessionService(async_url))


async def _inventory(async_url: str) -> tuple[list[SessionKey], int]:
    """Every session key of the source (oldest activity first) and its event count."""
    engine = create_async_engine(async_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(sa.text(
                "SELECT app_name, user_id, id FROM sessions "
                "ORDER BY update_time, app_name, user_id, id"))
            keys = [SessionKey(*row) for row in rows]
            events = (await conn.execute(sa.text("SELECT count(*) FROM events"))).scalar_one()
    finally:
        await engine.dispose()
    return keys, int(events)


def _split(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    scopes: dict[str, dict[str, Any]] = {"app": {}, "user": {}, "session": {}}
    for key, value in state.items():
        if key.startswith(State.APP_PREFIX):
            scopes["app"][key] = value
        elif key.startswith(State.USER_PREFIX):
            scopes["user"][key] = value
        elif not key.startswith(State.TEMP_PREFIX):
            scopes["session"][key] = value
    return scopes


def _changed(want: dict[str, Any], have: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in want.items() if k not in have or have[k] != v}


class _Importer:
    def __init__(self, store: SessionStore, report: ImportReport, total_events: int,
                 progress: ProgressCallback | None) -> None:
        self.store = store
        self.report = report
        self.progress = progress
        self.total_events = total_events
        self.sessions_done = 0
        self.events_done = 0
        self.scope_targets: dict[SessionKey, SessionKey] = {}
        """App (`(app, "", "")`) and user (`(app, user, "")`) scopes -> a session to fix them on."""
        self.scope_state: dict[SessionKey, dict[str, Any]] = {}
        """ADK's state of each app and user scope, as its sessions report it."""

    def tick(self, events: int) -> None:
        self.sessions_done += 1
        self.events_done += events
        if self.progress is not None:
            self.progress(ImportProgress(self.sessions_done, self.report.sessions_found,
                                         self.events_done, self.total_events))

    async def session(self, adk: BaseSessionService, key: SessionKey) -> None:
        source = await adk.get_session(app_name=key.app_name, user_id=key.user_id,
                                       session_id=key.session_id)
        if source is None:  # deleted while we were reading
            self.tick(0)
            return
        try:
            await self._import(key, source)
        except SessionStoreError as error:
            self.report.skipped.append(f"{key.app_name}/{key.user_id}/{key.session_id}: {error}")
        self.tick(len(source.events))

    async def _import(self, key: SessionKey, source: AdkSession) -> None:
        scopes = _split(json_safe_state(source.state))
        app_scope, user_scope = SessionKey(key.app_name, "", ""), SessionKey(*key[:2], "")
        self.scope_state[app_scope] = scopes["app"]
        self.scope_state[user_scope] = scopes["user"]
        self.scope_targets[app_scope] = self.scope_targets[user_scope] = key
        self.report.events_found += len(source.events)

        touched = {k for e in source.events for k in (e.actions.state_delta or {})}
        initial = {k: v for k, v in scopes["session"].items() if k not in touched}
        # ADK's own times are kept: each event's `timestamp` is its `recorded_at`, and the
        # session was created at its first event (or its last update, without events).
        stored_ids = {recorded.event_id async for recorded in self.store.read_stream(key)}
        records: list[RecordedEvent] = []
        if not stored_ids:
            created = min([source.last_update_time, *(e.timestamp for e in source.events[:1])])
            records.append(_record(key, 1, SessionCreated(state=validation.check_mapping(
                initial, "state")), store_event_id(key, _CREATED), created))
        for event in source.events:
            if store_event_id(key, event.id) not in stored_ids:
                message = appended(to_store_event(key, event))
                records.append(_record(key, len(records) + 1, message, message.message.id,
                                       event.timestamp))
        if records:
            added = (await self.store.import_records(records)).added
            created = int(not stored_ids and added > 0)  # its SessionCreated is no ADK event
            self.report.sessions_created += created
            self.report.events_imported += added - created
        await self._fix_state(key, scopes["session"])

    async def _fix_state(self, key: SessionKey, want: dict[str, Any]) -> None:
        """Append a `StateChanged` on `key` where its (merged) state differs from `want`."""
        current = await self.store.get_session(app_name=key.app_name, user_id=key.user_id,
                                               session_id=key.session_id, num_recent_events=0)
        if current is None:
            raise SessionStoreError("the session is deleted in the store")
        delta = _changed(want, dict(current.state))
        if delta:
            await self.store.update_state(key, delta)
            self.report.state_fixes += 1

    async def scopes(self) -> None:
        """Make app and user state equal ADK's (whose last writer may differ from ours)."""
        for scope, want in self.scope_state.items():
            if want:
                await self._fix_state(self.scope_targets[scope], want)


_CREATED = "\x00session-created"
"""The ADK-side name of an imported session's `SessionCreated` (its event id derives from it)."""


def _record(key: SessionKey, version: int, payload: Payload, event_id: str,
            at: float) -> RecordedEvent:
    """An event to import (`SessionStore.import_records` keeps its id and time)."""
    return RecordedEvent(position=0, app_name=key.app_name, user_id=key.user_id,
                         session_id=key.session_id, version=version, type=type_name(payload),
                         data=payload, event_id=event_id, recorded_at=at, hash="")  # type: ignore[arg-type]


async def _bounded(jobs: Iterable[Any], limit: int) -> None:
    gate = asyncio.Semaphore(limit)

    async def run(job: Any) -> None:
        async with gate:
            await job

    await asyncio.gather(*(run(job) for job in jobs))


async def import_adk(source_url: str, store: SessionStore, *,
                     progress: ProgressCallback | None = None) -> ImportReport:
    """Append every session and event of the ADK database at `source_url` to `store`.

    Idempotent: running it again imports only what was added to the source
    since. `progress` is called after each session.
    """
    started = time.perf_counter()
    source = open_source(source_url)
    report = ImportReport(source=source.kind)
    try:
        keys, total_events = await _inventory(source.async_url)
        report.sessions_found = len(keys)
        importer = _Importer(store, report, total_events, progress)
        if progress is not None:
            progress(ImportProgress(0, len(keys), 0, total_events))
        await _bounded((importer.session(source.service, key) for key in keys), CONCURRENCY)
        await importer.scopes()
    finally:
        close = getattr(source.service, "close", None)
        if close is not None:
            await close()
    report.seconds = time.perf_counter() - started
    return report
