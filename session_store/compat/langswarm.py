"""LangSwarm V2's session manager (`langswarm.core.session`) on the store.

`create_session_manager(storage=...)` takes "memory" (a SQLite file in a temporary
directory, removed by `close()`), "sqlite" (`storage_config["db_path"]`, default
./langswarm_sessions.db) or a store URL; the store opens on the first awaited call. The
manager's sessions live in one app (`app_name`, "langswarm" by default); the session
handles and messages are in `session_store.compat.langswarm_session`.

Middleware (`add_middleware`, an object with `async process_message(session_id, message,
context)`) runs as the store's middleware (`store.use`) on every message of the app before
it is written; lifecycle hooks (`add_lifecycle_hook`, an object with any of `on_session_
created(session_id, user_id)`, `on_message_sent(session_id, message)`,
`on_session_archived(session_id)`, ... `on_session_error(session_id, error)`) run as the
store's hooks (`store.on`) after commit.

Where a native feature is coming (analytics summary, cleanup, optimize), the call maps
onto today's API in one `_...` function of `langswarm_upkeep`: the place to re-point.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec

from session_store.compat._lazy import LazyStore
from session_store.compat._lookup import epoch, local, resolve, seconds_of
from session_store.compat.langswarm_session import (
    LangSwarmSession,
    MockProvider,
    Provider,
    SessionContext,
    SessionMessage,
    message_of,
    tags_of,
)
from session_store.compat.langswarm_upkeep import (
    SessionAnalytics,
    _cleanup,
    _optimize,
    _sessions,
    _summary,
)
from session_store.domain import validation
from session_store.domain.events import MessageAppended, Payload, RecordedEvent, SessionKey
from session_store.domain.snapshot import Session
from session_store.errors import InvalidEvent
from session_store.logs import get_logger
from session_store.store import SessionStore

log = get_logger(__name__)

DEFAULT_APP = "langswarm"

_HOOKS = {"SessionCreated": "on_session_created", "MessageAppended": "on_message_sent",
          "SessionArchived": "on_session_archived", "SessionReactivated":
          "on_session_reactivated", "SessionEnded": "on_session_ended",
          "SessionExpired": "on_session_expired", "SessionDeleted": "on_session_deleted"}
_EVENTS = {"SessionCreated": "session_created", "MessageAppended": "message_sent",
           "SessionArchived": "session_archived", "SessionReactivated": "session_reactivated",
           "SessionEnded": "session_ended", "SessionExpired": "session_expired",
           "SessionDeleted": "session_deleted", "StateChanged": "context_updated",
           "MetadataChanged": "session_updated", "HistoryCleared": "messages_cleared"}


@dataclass(frozen=True)
class SessionEvent:
    """One thing that happened to a session of the manager's app (`session_events()`)."""

    type: str
    session_id: str
    user_id: str
    timestamp: datetime
    position: int
    message_preview: str | None = None


@dataclass(frozen=True)
class InMemorySessionStorage:
    """LangSwarm's in-memory storage: a store in a temporary directory, gone at close."""


@dataclass(frozen=True)
class SQLiteSessionStorage:
    db_path: str = "langswarm_sessions.db"


Storage = str | InMemorySessionStorage | SQLiteSessionStorage


class SessionManager:
    """LangSwarm's unified session manager."""

    def __init__(self, storage: Storage = "memory", *, storage_config: Mapping[str, Any]
                 | None = None, providers: Mapping[str, Any] | None = None,
                 middleware: Sequence[Any] = (), hooks: Sequence[Any] = (),
                 cleanup_config: Mapping[str, Any] | None = None,
                 app_name: str = DEFAULT_APP, clock: Callable[[], float] = time.time) -> None:
        self.app_name = validation.check_id(app_name, "app_name")
        self.cleanup_config = dict(cleanup_config or {})
        """Kept for the retention policy; run the cleanups yourself meanwhile."""
        self._store = LazyStore(_url_of(storage, dict(storage_config or {})),
                                prefix="langswarm-", prepare=self._prepare)
        self.url = self._store.url
        self.providers = dict(providers or {})
        self._middleware: list[Any] = list(middleware)
        self._hooks: list[Any] = list(hooks)
        self._clock = clock

    def _prepare(self, store: SessionStore) -> None:
        for middleware in self._middleware:
            self._use(store, middleware)
        for hook in self._hooks:
            store.on("*", self._hook_of(hook))

    async def store(self) -> SessionStore:
        """The store, opened on first use."""
        return await self._store.get()

    async def close(self) -> None:
        """Close the store (and remove an in-memory one)."""
        await self._store.close()

    # --- sessions --------------------------------------------------------------------

    async def create_session(self, user_id: str, provider: str = "mock",
                             model: str = "mock-model", *,
                             session_config: Mapping[str, Any] | None = None,
                             provider_config: Mapping[str, Any] | None = None,
                             session_id: str | None = None) -> LangSwarmSession:
        """A new session of `user_id` talking to `provider`'s `model`. `session_config`:
        `name`, `description`, `tags`, `max_messages`, `auto_archive_after` (a timedelta)."""
        config = dict(session_config or {})
        tags = config.pop("tags", None)
        archive_after = config.pop("auto_archive_after", None)
        if archive_after is not None:
            config["auto_archive_after"] = (archive_after.total_seconds()
                                            if isinstance(archive_after, timedelta)
                                            else archive_after)
        self._provider(provider)  # refuses a provider it cannot call, before writing
        store = await self.store()
        created = await store.create_session(
            app_name=self.app_name, user_id=user_id, session_id=session_id, tags=tags,
            metadata={"provider": provider, "model": model,
                      "provider_config": dict(provider_config or {}), **config})
        return self._handle(store, created)

    async def get_session(self, session_id: str, user_id: str | None = None
                          ) -> LangSwarmSession:
        store = await self.store()
        key = await resolve(store, session_id, app_name=self.app_name, user_id=user_id)
        found = await store.get_session(app_name=key.app_name, user_id=key.user_id,
                                        session_id=key.session_id)
        assert found is not None
        return self._handle(store, found)

    async def get_user_sessions(self, user_id: str, status: str | None = None,
                                since: datetime | float | None = None
                                ) -> list[LangSwarmSession]:
        """The user's sessions (of `status`, with activity at or after `since`)."""
        store = await self.store()
        start = None if since is None else epoch(since, "since")
        return [self._handle(store, s) for s in await _sessions(
            store, self.app_name, user_id=user_id, status=status, since=start)]

    async def search_sessions(self, user_id: str | None = None,
                              tags: Sequence[str] | None = None, status: str | None = None,
                              query: str | None = None) -> list[LangSwarmSession]:
        """Sessions with every tag of `tags` (of `user_id`, of `status`), or with a message
        matching `query` (the history's full-text search)."""
        store = await self.store()
        wanted = set(validation.tags_of(tags)) if tags else set()
        found = await _sessions(store, self.app_name, user_id=user_id, status=status)
        if query is not None:
            hits = await store.history.search(query, app_name=self.app_name, user_id=user_id,
                                              limit=1000)
            matching = {(m.user_id, m.session_id) for m in hits}
            found = [s for s in found if (s.user_id, s.id) in matching]
        return [self._handle(store, s) for s in found if wanted <= set(tags_of(s))]

    # --- analytics, events -----------------------------------------------------------

    async def get_analytics(self, start_date: datetime | float | None = None,
                            end_date: datetime | float | None = None) -> SessionAnalytics:
        start = None if start_date is None else epoch(start_date, "start_date")
        end = None if end_date is None else epoch(end_date, "end_date")
        if start is not None and end is not None and end < start:
            raise InvalidEvent("end_date is before start_date")
        return await _summary(await self.store(), self.app_name, start, end)

    async def session_events(self, from_position: int | None = None
                             ) -> AsyncIterator[SessionEvent]:
        """What happens to the app's sessions from now on (or from `from_position`), as it
        is committed; never ends by itself."""
        store = await self.store()
        start = await store.last_position() + 1 if from_position is None else from_position
        async for record in store.subscribe(from_position=start, app_name=self.app_name):
            kind = _EVENTS.get(record.type)
            if kind is not None and record.session_id:
                yield _session_event(kind, record)

    # --- middleware and hooks --------------------------------------------------------

    def add_middleware(self, middleware: Any) -> None:
        if not callable(getattr(middleware, "process_message", None)):
            raise InvalidEvent(f"{middleware!r} has no process_message(session_id, message, "
                               "context)")
        self._middleware.append(middleware)
        if self._store.opened is not None:
            self._use(self._store.opened, middleware)

    def add_lifecycle_hook(self, hook: Any) -> None:
        self._hooks.append(hook)
        if self._store.opened is not None:
            self._store.opened.on("*", self._hook_of(hook))

    def _use(self, store: SessionStore, middleware: Any) -> None:
        app = self.app_name

        async def adapted(key: SessionKey, payload: Payload) -> Payload:
            if key.app_name != app or not isinstance(payload, MessageAppended):
                return payload
            message = message_of(payload.message)
            changed = middleware.process_message(
                key.session_id, message, SessionContext(key.session_id, key.user_id, app))
            if inspect.isawaitable(changed):
                changed = await changed
            if not isinstance(changed, SessionMessage):
                raise InvalidEvent(f"middleware {middleware!r} returned {changed!r}, not a "
                                   "SessionMessage")
            before = payload.message.native
            native = {**(before if isinstance(before, dict) else {}),
                      "metadata": dict(changed.metadata)}
            return MessageAppended(message=msgspec.structs.replace(
                payload.message, text=changed.content, native=native))

        store.use(adapted)

    def _hook_of(self, hook: Any) -> Callable[[RecordedEvent], Any]:
        app = self.app_name

        async def dispatch(record: RecordedEvent) -> None:
            name = _HOOKS.get(record.type)
            method = getattr(hook, name, None) if name else None
            if record.app_name != app or not record.session_id or not callable(method):
                return
            if record.type == "SessionCreated":
                outcome = method(record.session_id, record.user_id)
            elif isinstance(record.data, MessageAppended):
                outcome = method(record.session_id, message_of(record.data.message))
            else:
                outcome = method(record.session_id)
            if inspect.isawaitable(outcome):
                await outcome

        return dispatch

    async def _session_error(self, session_id: str, error: Exception) -> None:
        for hook in self._hooks:
            method = getattr(hook, "on_session_error", None)
            if not callable(method):
                continue
            try:
                outcome = method(session_id, error)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception as failed:  # noqa: BLE001 - a hook never hides the error
                log.warning("langswarm.hook_failed", hook=repr(hook), error=repr(failed))

    # --- maintenance -----------------------------------------------------------------

    async def cleanup_inactive_sessions(self, days: float = 30) -> int:
        """Archive active sessions idle for more than `days`; how many."""
        return await _cleanup(await self.store(), self.app_name, self._clock(),
                              inactive_for=seconds_of(days))

    async def cleanup_archived_sessions(self, days: float = 90) -> int:
        """Delete archived sessions idle for more than `days`; how many."""
        return await _cleanup(await self.store(), self.app_name, self._clock(),
                              archived_for=seconds_of(days))

    async def cleanup_deleted_sessions(self, days: float = 365) -> int:
        """Purge (erase the payloads of) sessions deleted more than `days` ago; how many."""
        return await _cleanup(await self.store(), self.app_name, self._clock(),
                              deleted_for=seconds_of(days))

    async def optimize_storage(self) -> None:
        await _optimize(await self.store())

    # --- helpers ---------------------------------------------------------------------

    def _provider(self, name: str) -> Provider:
        given = self.providers.get(name)
        if callable(given):
            return given  # type: ignore[no-any-return]
        if name == "mock":
            return MockProvider()
        raise InvalidEvent(f"provider {name!r} has no callable here: pass providers="
                           f"{{{name!r}: callable}} (the store calls no provider itself)")

    def _handle(self, store: SessionStore, session: Session) -> LangSwarmSession:
        provider = str(session.metadata.get("provider", "mock"))
        return LangSwarmSession(store, session, self._provider(provider), self._session_error)


def create_session_manager(storage: Storage = "memory", *,
                           storage_config: Mapping[str, Any] | None = None,
                           providers: Mapping[str, Any] | None = None,
                           middleware: Sequence[Any] = (), hooks: Sequence[Any] = (),
                           cleanup_config: Mapping[str, Any] | None = None,
                           preset: str | None = None, app_name: str = DEFAULT_APP,
                           clock: Callable[[], float] = time.time) -> SessionManager:
    """LangSwarm's factory. `preset="development"` means in-memory storage;
    `cleanup_config` is accepted, and kept for the retention policy (run the cleanups
    yourself meanwhile)."""
    if preset not in (None, "development", "production"):
        raise InvalidEvent(f"preset must be 'development' or 'production', not {preset!r}")
    if preset == "development":
        storage = "memory"
    elif preset == "production" and storage == "memory":
        storage = "sqlite"
    return SessionManager(storage, storage_config=storage_config, providers=providers,
                          middleware=middleware, hooks=hooks, cleanup_config=cleanup_config,
                          app_name=app_name, clock=clock)


def _url_of(storage: Storage, config: dict[str, Any]) -> str | None:
    """The store's URL; None: in memory (a temporary directory)."""
    if isinstance(storage, InMemorySessionStorage) or storage == "memory":
        return None
    if isinstance(storage, SQLiteSessionStorage):
        return storage.db_path
    if storage == "sqlite":
        return str(config.get("db_path", SQLiteSessionStorage.db_path))
    if isinstance(storage, str) and storage:
        return storage
    raise InvalidEvent(f"storage must be 'memory', 'sqlite' or a store URL, not {storage!r}")


def _session_event(kind: str, record: RecordedEvent) -> SessionEvent:
    preview = None
    if isinstance(record.data, MessageAppended):
        preview = (record.data.message.text or "")[:50]
    return SessionEvent(type=kind, session_id=record.session_id, user_id=record.user_id,
                        timestamp=local(record.recorded_at), position=record.position,
                        message_preview=preview)
