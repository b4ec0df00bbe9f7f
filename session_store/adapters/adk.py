"""Google ADK `SessionService` backed by the event log: switch by changing one line.

    from session_store.adapters.adk import EventSourcedSessionService
    runner = Runner(agent=agent, app_name="app",
                    session_service=EventSourcedSessionService("sessions.db"))

Every non-partial ADK event becomes one `MessageAppended` in the session's
stream, carrying the ADK event whole (`Event.native`) so it reads back equal.
The stream version the caller last saw rides on the ADK `Session` object (the
same private revision marker ADK's own database services use) and is passed as
`expected_version`, so a writer holding a stale session gets ADK's
`StaleSessionError` instead of silently interleaving with a newer one.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import weakref
from collections import OrderedDict
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any

from google.adk.errors import StaleSessionError
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events.event import Event as AdkEvent
from google.adk.sessions.base_session_service import (
    BaseSessionService,
    GetSessionConfig,
    ListSessionsResponse,
)
from google.adk.sessions.session import Session as AdkSession
from typing_extensions import override

from session_store.adapters.adk_codec import (
    from_store_event,
    json_safe_state,
    store_event_id,
    to_store_event,
)
from session_store.domain.events import Event, MessageAppended, SessionKey
from session_store.domain.snapshot import Session
from session_store.errors import (
    ConcurrencyError,
    SessionAlreadyExists,
    SessionClosed,
    SessionNotFound,
)
from session_store.gc_pause import fewer_collections
from session_store.store import SessionStore, open_store

_MARKER_PREFIX = "session-store:v"
_LIST_PAGE = 1000
_STALE_MESSAGE = (
    "The session has been modified in storage since it was loaded "
    "(stored version {actual}, this session object has seen {expected}). "
    "Reload it with get_session before appending more events."
)


def _marker(version: int) -> str:
    return f"{_MARKER_PREFIX}{version}"


def _seen_version(session: AdkSession) -> int | None:
    """The stream version this ADK session object was loaded at, if we loaded it."""
    marker = session._storage_update_marker
    if marker is None or not marker.startswith(_MARKER_PREFIX):
        return None
    try:
        return int(marker.removeprefix(_MARKER_PREFIX))
    except ValueError:
        return None


def _key(session: AdkSession) -> SessionKey:
    return SessionKey(session.app_name, session.user_id, session.id)


async def _exists(store: SessionStore, key: SessionKey) -> bool:
    found = await store.get_session(
        app_name=key.app_name, user_id=key.user_id, session_id=key.session_id,
        num_recent_events=0,
    )
    return found is not None


def _update_time(stored: Session) -> float:
    """ADK's `last_update_time`: the newest event's own timestamp (what ADK's services
    record), the creation time before any."""
    found = stored.last_message_time
    return stored.last_update_time if found is None else found


def _to_adk(stored: Session, events: list[AdkEvent]) -> AdkSession:
    session = AdkSession(
        id=stored.id,
        app_name=stored.app_name,
        user_id=stored.user_id,
        state=copy.deepcopy(dict(stored.state)),
        events=events,
        last_update_time=_update_time(stored),
    )
    session._storage_update_marker = _marker(stored.version)
    return session


class EventCache:
    """Decoded ADK events by log event id, least recently used dropped first.

    Building an ADK `Event` (pydantic validation of every part) is most of what
    a full `get_session` costs; a deep copy is about 40% cheaper. Log events
    never change, so a cached one never goes stale; callers always get a copy.
    A just-appended event is kept as its store message and decoded by the first
    read that wants it, so an append does not pay for a read that may never come.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._events: OrderedDict[str, AdkEvent | Event] = OrderedDict()

    def get(self, message: Event) -> AdkEvent:
        if self.size <= 0:
            return from_store_event(message)
        cached = self._events.get(message.id)
        if not isinstance(cached, AdkEvent):
            cached = from_store_event(message)
            self._remember(message.id, cached)
        else:
            self._events.move_to_end(message.id)
        return copy.deepcopy(cached)

    def put(self, message: Event) -> None:
        """Remember a just-appended event (state as JSON, like ADK's) for later reads."""
        if self.size > 0:
            self._remember(message.id, message)

    def _remember(self, event_id: str, event: AdkEvent | Event) -> None:
        self._events[event_id] = event
        self._events.move_to_end(event_id)
        if len(self._events) > self.size:
            self._events.popitem(last=False)


class EventSourcedSessionService(BaseSessionService):
    """An ADK `BaseSessionService` over a session-store (SQLite or PostgreSQL).

    Give it a store URL (opened lazily, closed by `close()`) or an open
    `SessionStore` (left open: its owner closes it). `event_cache_size` bounds
    the decoded events kept for re-reads (0 turns the cache off).
    """

    def __init__(self, url: str | None = None, store: SessionStore | None = None, *,
                 event_cache_size: int = 20_000) -> None:
        if url is not None and store is not None:
            raise ValueError("give EventSourcedSessionService a url or a store, not both")
        self._url = url
        self._store = store
        self._exit = AsyncExitStack()
        self._opening = asyncio.Lock()
        self._locks: weakref.WeakValueDictionary[SessionKey, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self._events = EventCache(event_cache_size)

    # --- lifecycle -------------------------------------------------------------

    async def store(self) -> SessionStore:
        """The underlying store, opened on first use."""
        if self._store is None:
            async with self._opening:
                if self._store is None:
                    self._store = await self._exit.enter_async_context(open_store(self._url))
        return self._store

    async def close(self) -> None:
        """Close the store if this service opened it."""
        await self._exit.aclose()
        if self._url is not None:
            self._store = None

    async def __aenter__(self) -> EventSourcedSessionService:
        await self.store()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- sessions --------------------------------------------------------------

    @override
    async def create_session(
        self,
        *,
        app_name: str,
        user_id: str,
        state: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> AdkSession:
        store = await self.store()
        try:
            created = await store.create_session(
                app_name=app_name,
                user_id=user_id,
                session_id=session_id or None,
                state=json_safe_state(state or {}),
            )
        except SessionAlreadyExists as error:
            raise AlreadyExistsError(f"Session with id {session_id} already exists.") from error
        return _to_adk(created, [])

    @override
    async def get_session(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        config: GetSessionConfig | None = None,
    ) -> AdkSession | None:
        store = await self.store()
        limit = config.num_recent_events if config else None
        after = (config.after_timestamp or None) if config else None
        stored = await store.get_session(
            app_name=app_name,
            user_id=user_id,
            session_id=session_id,
            # The store filters `after_timestamp` on when an event was recorded, ADK on the
            # event's own timestamp. An event is recorded after it is made, so the store's
            # answer is a superset; the exact filter (and then the limit) is applied here.
            num_recent_events=limit if after is None else (0 if limit == 0 else None),
            after_timestamp=after,
        )
        if stored is None:
            return None
        with fewer_collections():  # thousands of pydantic objects in one go
            events = [
                self._events.get(recorded.data.message)
                for recorded in stored.events
                if isinstance(recorded.data, MessageAppended)
                and (after is None or recorded.data.message.timestamp >= after)
            ]
        if after is not None and limit is not None:
            events = events[-limit:] if limit else []
        return _to_adk(stored, events)

    @override
    async def list_sessions(
        self, *, app_name: str, user_id: str | None = None
    ) -> ListSessionsResponse:
        store = await self.store()
        summaries: list[Session] = []
        cursor: str | None = None
        while True:
            page = await store.list_sessions(
                app_name=app_name, user_id=user_id, limit=_LIST_PAGE, cursor=cursor
            )
            summaries.extend(page.sessions)
            cursor = page.next_cursor
            if cursor is None:
                break
        summaries.sort(key=lambda s: (s.last_update_time, s.user_id, s.id))
        return ListSessionsResponse(sessions=[_to_adk(s, []) for s in summaries])

    @override
    async def delete_session(self, *, app_name: str, user_id: str, session_id: str) -> None:
        store = await self.store()
        with contextlib.suppress(SessionNotFound):  # ADK deletes a missing session silently
            await store.delete_session(app_name=app_name, user_id=user_id, session_id=session_id)

    @override
    async def get_user_state(self, *, app_name: str, user_id: str) -> dict[str, Any]:
        store = await self.store()
        return await store.get_user_state(app_name=app_name, user_id=user_id)

    # --- appending -------------------------------------------------------------

    @override
    async def append_event(self, session: AdkSession, event: AdkEvent) -> AdkEvent:
        if event.partial:
            return event
        self._apply_temp_state(session, event)
        event = self._trim_temp_delta_state(event)
        store = await self.store()
        key = _key(session)
        message = to_store_event(key, event)
        async with self._lock(key):
            expected = _seen_version(session)
            if expected is None:
                expected = await self._version_of_unmarked(store, session)
            try:
                recorded = await store.append_event(key, message, expected_version=expected)
            except SessionNotFound as error:
                raise SessionNotFoundError(f"Session {session.id} not found.") from error
            except (ConcurrencyError, SessionClosed) as error:
                if not await _exists(store, key):  # deleted meanwhile: ADK says "not found"
                    raise SessionNotFoundError(f"Session {session.id} not found.") from error
                if isinstance(error, SessionClosed):
                    raise
                raise StaleSessionError(
                    _STALE_MESSAGE.format(actual=error.actual, expected=expected)
                ) from error
            if recorded.version > expected:  # written now, not an idempotent replay
                self._events.put(message)
            session._storage_update_marker = _marker(max(expected, recorded.version))
            session.last_update_time = event.timestamp  # as ADK's own services do
        return self._commit_event_to_session(session, event)

    def _lock(self, key: SessionKey) -> asyncio.Lock:
        """One lock per session: appends through one session object never race each other."""
        lock = self._locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[key] = lock
        return lock

    async def _version_of_unmarked(self, store: SessionStore, session: AdkSession) -> int:
        """The version to expect for a session object this service did not load.

        Like ADK's database service: accept it when the store has not moved past
        `last_update_time`, or when its newest event is the object's newest one.
        """
        stored = await store.get_session(
            app_name=session.app_name, user_id=session.user_id, session_id=session.id,
            num_recent_events=1,
        )
        if stored is None:
            raise SessionNotFoundError(f"Session {session.id} not found.")
        if _update_time(stored) > session.last_update_time:
            newest = stored.events[-1].data if stored.events else None
            theirs = newest.message.id if isinstance(newest, MessageAppended) else None
            mine = store_event_id(_key(session), session.events[-1].id) if session.events else None
            if theirs != mine:
                raise StaleSessionError(
                    _STALE_MESSAGE.format(actual=stored.version, expected="an older one")
                )
        return stored.version
