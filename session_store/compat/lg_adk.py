"""LG-ADK's session managers (`lg_adk.sessions.session_manager`) on the store.

`SessionManager`, `SynchronizedSessionManager`, `DatabaseSessionManager` and
`AsyncSessionManager` have LG-ADK's methods, arguments and return shapes: sessions are
named by a bare id (`create_session` returns it), found through the store's index of
session ids within the manager's app (`app_name`, "lg_adk" by default); an unknown id
raises `SessionIdNotFound` (a `KeyError`, as LG-ADK's), one that several users share
`AmbiguousSession`. Every manager has the blocking forms and the `a`-prefixed async ones.

Given nothing (or a URL), a manager opens a `SyncSessionStore` of its own (at
`$SESSION_STORE_URL`, else ./sessions.db) and closes it with `close()`; given a
`SyncSessionStore` it runs on that store's loop; given an async `SessionStore` only the
async forms work (on that store's loop).

One turn is one interaction: `track_interaction` right after a message that carried
usage or a response time (the graph runner's, `lg_adk_graph`) completes that turn
(`InteractionTracked.turn`) instead of counting a second interaction; the message's own
usage and time win over the call's, which fills in what the message lacked.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType, TracebackType
from typing import Any, TypeVar

from session_store.compat._lookup import local, resolve
from session_store.domain import validation
from session_store.domain.events import Event, InteractionTracked, MessageAppended, SessionKey
from session_store.domain.snapshot import Session as StoreSession
from session_store.errors import (
    ConcurrencyError,
    SessionClosed,
    SessionIdNotFound,
    StoreUnavailable,
)
from session_store.store import SessionStore
from session_store.sync import SyncSessionStore

T = TypeVar("T")

DEFAULT_APP = "lg_adk"
"""The app of a manager given none (LG-ADK has no app)."""
ANONYMOUS = "anonymous"
"""The user of a session created without one (neither `user_id` nor `metadata["user_id"]`)."""
_LIVE = frozenset({"active", "archived"})
_TRACK_ATTEMPTS = 8


@dataclass(frozen=True)
class Session:
    """LG-ADK's session record: identity, metadata and the tracked totals."""

    session_id: str
    user_id: str
    status: str
    metadata: Mapping[str, Any]
    created_at: datetime
    last_active: datetime
    interactions: int
    total_tokens_in: int
    total_tokens_out: int
    total_response_time: float
    timeout: float | None
    native: StoreSession = field(repr=False, compare=False)
    """The store's snapshot it was read from."""


def session_of(native: StoreSession) -> Session:
    stats = native.statistics()
    message_time = sum(m.response_time or 0.0 for m in native.messages)
    timeout = (None if native.expires_at is None
               else native.expires_at - native.last_update_time)
    return Session(
        session_id=native.id, user_id=native.user_id, status=native.status,
        metadata=native.metadata, created_at=local(native.created_at),
        last_active=local(native.last_update_time), interactions=stats.interactions,
        total_tokens_in=stats.tokens_in, total_tokens_out=stats.tokens_out,
        total_response_time=message_time + native.tracked.response_time_sum,
        timeout=timeout, native=native)


class _Bridge:
    """Where the manager's coroutines run: the store's loop."""

    def __init__(self, store: SessionStore | SyncSessionStore | str | None) -> None:
        self.owned: SyncSessionStore | None = None
        self.sync: SyncSessionStore | None = None
        if store is None or isinstance(store, str):
            store = self.owned = SyncSessionStore(store)
        if isinstance(store, SyncSessionStore):
            self.sync, self.store = store, store.store
        elif isinstance(store, SessionStore):
            self.store = store
        else:
            raise TypeError(f"a session manager takes a SessionStore, a SyncSessionStore or "
                            f"a URL, not {type(store).__name__}")

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if self.sync is None:
            coroutine.close()
            raise StoreUnavailable("the blocking forms need a SyncSessionStore (or no store: "
                                   "the manager opens one); use the a-prefixed forms here")
        if _running_loop() is self.sync.loop:
            coroutine.close()
            raise StoreUnavailable("a blocking form was called on the store's own loop: "
                                   "use its a-prefixed form there")
        return self.sync.run(coroutine)

    async def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if self.sync is None or _running_loop() is self.sync.loop:
            return await coroutine
        return await asyncio.to_thread(self.sync.run, coroutine)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class SessionManager:
    """LG-ADK's `SessionManager`: sessions by bare id, user tracking, metadata, analytics.

    Thread-safe (every call is handed to the store's loop), so it is also LG-ADK's
    `SynchronizedSessionManager`.
    """

    def __init__(self, store: SessionStore | SyncSessionStore | str | None = None, *,
                 app_name: str = DEFAULT_APP) -> None:
        self.app_name = validation.check_id(app_name, "app_name")
        self._bridge = _Bridge(store)

    @property
    def store(self) -> SessionStore:
        """The async store underneath."""
        return self._bridge.store

    def close(self) -> None:
        """Close the store the manager opened itself (not one it was given)."""
        if self._bridge.owned is not None:
            self._bridge.owned.close()

    def __enter__(self) -> SessionManager:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    # --- async forms -----------------------------------------------------------------

    async def acreate_session(self, user_id: str | None = None,
                              metadata: Mapping[str, Any] | None = None,
                              timeout: float | timedelta | None = None,
                              session_id: str | None = None) -> str:
        """A new session's id; the user is `user_id`, else `metadata["user_id"]`, else
        "anonymous"; `timeout`: seconds or a `timedelta` of inactivity."""
        user = user_id if user_id is not None else (metadata or {}).get("user_id", ANONYMOUS)
        created = await self._bridge.call(self.store.create_session(
            app_name=self.app_name, user_id=user, session_id=session_id, metadata=metadata,
            timeout=timeout))
        return created.id

    async def aget_session(self, session_id: str) -> Session:
        """The session (ended ones too); `SessionIdNotFound` for an unknown id."""
        return session_of(await self._bridge.call(self._native(session_id)))

    async def asession_exists(self, session_id: str) -> bool:
        """Whether the id names a live session: False once ended, expired or deleted."""
        try:
            native = await self._bridge.call(self._native(session_id))
        except SessionIdNotFound:
            return False
        return native.status in _LIVE

    async def aget_session_metadata(self, session_id: str) -> dict[str, Any]:
        """The session's metadata, with `user_id` and `created_at` (a `datetime`) added
        unless the metadata holds its own."""
        native = await self._bridge.call(self._native(session_id))
        return {"user_id": native.user_id, "created_at": local(native.created_at),
                **_thawed(native.metadata)}

    async def aupdate_session_metadata(self, session_id: str, metadata: Mapping[str, Any],
                                       merge: bool = True) -> None:
        """Merge `metadata` into the session's (or replace it, `merge=False`)."""
        async def update() -> None:
            key = await self._key(session_id)
            await self.store.update_session_metadata(key, metadata, merge=merge)
        await self._bridge.call(update())

    async def atrack_interaction(self, session_id: str, tokens_in: int = 0,
                                 tokens_out: int = 0, response_time: float = 0.0) -> None:
        """Record one interaction's tokens and response time (seconds); right after a
        measured message it completes that turn instead (see the module's docstring)."""
        validation.check_tokens(tokens_in, "tokens_in")
        validation.check_tokens(tokens_out, "tokens_out")
        validation.check_non_negative(response_time, "response_time")
        await self._bridge.call(self._track(session_id, tokens_in, tokens_out,
                                            float(response_time)))

    async def aget_user_sessions(self, user_id: str) -> list[str]:
        """Ids of the user's active sessions in the manager's app, oldest activity first."""
        sessions = await self._bridge.call(self.store.get_user_sessions(
            app_name=self.app_name, user_id=user_id))
        return [s.id for s in sessions if s.status == "active"]

    async def aend_session(self, session_id: str) -> None:
        """End the session: it refuses new messages, `session_exists` says False; ending
        an ended session again is a no-op."""
        async def end() -> None:
            with contextlib.suppress(SessionClosed):
                await self.store.end_session(await self._key(session_id))
        await self._bridge.call(end())

    async def aadd_messages(self, session_id: str, events: Sequence[Event]) -> None:
        """Append messages to the session in one transaction (what the graph runner of
        `lg_adk_graph` writes for a turn)."""
        async def add() -> None:
            await self.store.append_events(await self._key(session_id), events)
        await self._bridge.call(add())

    async def acleanup_expired_sessions(self) -> int:
        """Expire the sessions idle past their timeout (in every app); how many."""
        return await self._bridge.call(self.store.cleanup_expired_sessions())

    # --- blocking forms --------------------------------------------------------------

    def create_session(self, user_id: str | None = None,
                       metadata: Mapping[str, Any] | None = None,
                       timeout: float | timedelta | None = None,
                       session_id: str | None = None) -> str:
        return self._bridge.run(self.acreate_session(user_id, metadata, timeout, session_id))

    def get_session(self, session_id: str) -> Session:
        return self._bridge.run(self.aget_session(session_id))

    def session_exists(self, session_id: str) -> bool:
        return self._bridge.run(self.asession_exists(session_id))

    def get_session_metadata(self, session_id: str) -> dict[str, Any]:
        return self._bridge.run(self.aget_session_metadata(session_id))

    def update_session_metadata(self, session_id: str, metadata: Mapping[str, Any],
                                merge: bool = True) -> None:
        self._bridge.run(self.aupdate_session_metadata(session_id, metadata, merge))

    def track_interaction(self, session_id: str, tokens_in: int = 0, tokens_out: int = 0,
                          response_time: float = 0.0) -> None:
        self._bridge.run(self.atrack_interaction(session_id, tokens_in, tokens_out,
                                                 response_time))

    def get_user_sessions(self, user_id: str) -> list[str]:
        return self._bridge.run(self.aget_user_sessions(user_id))

    def end_session(self, session_id: str) -> None:
        self._bridge.run(self.aend_session(session_id))

    def add_messages(self, session_id: str, events: Sequence[Event]) -> None:
        self._bridge.run(self.aadd_messages(session_id, events))

    def cleanup_expired_sessions(self) -> int:
        return self._bridge.run(self.acleanup_expired_sessions())

    # --- on the store's loop ---------------------------------------------------------

    async def _key(self, session_id: str) -> SessionKey:
        return await resolve(self.store, session_id, app_name=self.app_name)

    async def _native(self, session_id: str, recent: int | None = None) -> StoreSession:
        key = await self._key(session_id)
        native = await self.store.get_session(app_name=key.app_name, user_id=key.user_id,
                                              session_id=key.session_id,
                                              num_recent_events=recent)
        if native is None:  # deleted since the lookup
            raise SessionIdNotFound(f"no session {session_id!r} in app {self.app_name!r}")
        return native

    async def _track(self, session_id: str, tokens_in: int, tokens_out: int,
                     response_time: float) -> None:
        for _ in range(_TRACK_ATTEMPTS):
            native = await self._native(session_id, recent=1)
            tracked = _interaction(native, tokens_in, tokens_out, response_time)
            try:
                await self.store.append_payloads(native.key, [tracked],
                                                 expected_version=native.version)
                return
            except ConcurrencyError:
                continue  # the session moved on: decide again which turn this is
        raise ConcurrencyError(f"session {session_id!r} kept changing while an interaction "
                               f"was tracked ({_TRACK_ATTEMPTS} attempts)")


def _interaction(native: StoreSession, tokens_in: int, tokens_out: int,
                 response_time: float) -> InteractionTracked:
    """The interaction to record: a completion of the newest turn when the session's newest
    event is a message that already counted it, else an interaction of its own."""
    newest = native.events[-1] if native.events else None
    if newest is None or newest.version != native.version or not isinstance(
            newest.data, MessageAppended):
        return InteractionTracked(tokens_in=tokens_in, tokens_out=tokens_out,
                                  response_time=response_time)
    message = newest.data.message
    if message.usage is None and message.response_time is None:
        return InteractionTracked(tokens_in=tokens_in, tokens_out=tokens_out,
                                  response_time=response_time)
    counted = message.usage is not None
    return InteractionTracked(
        tokens_in=0 if counted else tokens_in, tokens_out=0 if counted else tokens_out,
        response_time=0.0 if message.response_time is not None else response_time,
        turn=message.id)


def _thawed(value: Any) -> Any:
    if isinstance(value, Mapping | MappingProxyType):
        return {k: _thawed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_thawed(v) for v in value]
    return value


class SynchronizedSessionManager(SessionManager):
    """LG-ADK's thread-safe manager: every `SessionManager` already is."""


class AsyncSessionManager(SessionManager):
    """LG-ADK's async manager: use the a-prefixed forms (`acreate_session`, ...)."""


@dataclass(frozen=True)
class DatabaseManager:
    """LG-ADK's database handle: here, the URL of the store (default `$SESSION_STORE_URL`,
    then ./sessions.db)."""

    url: str | None = None


class DatabaseSessionManager(SessionManager):
    """LG-ADK's persistent manager: sessions live in the store at `db_manager.url`."""

    def __init__(self, db_manager: DatabaseManager | None = None, *,
                 app_name: str = DEFAULT_APP) -> None:
        super().__init__((db_manager or DatabaseManager()).url, app_name=app_name)
