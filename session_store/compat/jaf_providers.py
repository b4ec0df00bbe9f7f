"""JAF's session providers (`adk.sessions`) on the store: `store_session` appends a
snapshot's pending events with `expected_version` = its version, `get_session` reads one
back by bare id (through the store's index of session ids).

`create_in_memory_session_provider(config)` keeps sessions in a store in a temporary
directory (removed by `close()`); `ttl_seconds` becomes new sessions' inactivity timeout.
`create_session_provider({"url": ...})` uses any store (SQLite path, PostgreSQL URL); it
stands in for JAF's Redis provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from session_store.compat._lazy import LazyStore
from session_store.compat._lookup import resolve
from session_store.compat.jaf import ImmutableAdkSession, snapshot_of
from session_store.domain.events import SessionCreated, SessionKey
from session_store.errors import (
    AmbiguousSession,
    ConcurrencyError,
    InvalidEvent,
    SessionIdNotFound,
)
from session_store.store import SessionStore


@dataclass(frozen=True)
class StoreResult:
    success: bool
    session: ImmutableAdkSession | None = None
    """The snapshot as stored (its new version, nothing pending)."""


@dataclass(frozen=True)
class RetrieveResult:
    success: bool
    session: ImmutableAdkSession | None = None
    error: Exception | None = None
    """`SessionIdNotFound` or `AmbiguousSession` when nothing was retrieved."""


class StoreSessionProvider:
    """Sessions of JAF, kept in the store at `url` (opened on first use)."""

    def __init__(self, url: str | None, *, ttl_seconds: float | None = None) -> None:
        """`url=None`: a store in a temporary directory, removed by `close()`."""
        self._store = LazyStore(url, prefix="jaf-sessions-")
        self.url, self.ttl_seconds = self._store.url, ttl_seconds

    async def store(self) -> SessionStore:
        return await self._store.get()

    async def close(self) -> None:
        await self._store.close()

    async def store_session(self, session: ImmutableAdkSession) -> StoreResult:
        """Append what the snapshot changed since it was read (or created), in one
        transaction. `ConcurrencyError` when the stored session moved past the snapshot's
        version (read it again, re-apply the change); nothing is written then."""
        if not isinstance(session, ImmutableAdkSession):
            raise InvalidEvent(f"store_session takes an ImmutableAdkSession, not "
                               f"{type(session).__name__}")
        store = await self.store()
        key = SessionKey(session.app_name, session.user_id, session.session_id)
        pending = [self._with_ttl(p) for p in session.pending]
        if pending:
            try:
                await store.append_payloads(key, pending, expected_version=session.version)
            except ConcurrencyError as error:
                raise ConcurrencyError(
                    f"session {session.session_id!r} is past version {session.version} of "
                    "this snapshot: get it again and re-apply the change",
                    expected=session.version, actual=error.actual) from None
        stored = await store.get_session(app_name=key.app_name, user_id=key.user_id,
                                         session_id=key.session_id)
        return StoreResult(True, None if stored is None else snapshot_of(stored))

    async def get_session(self, session_id: str, *, user_id: str | None = None,
                          app_name: str | None = None) -> RetrieveResult:
        """The stored session with this id (narrowed by user and app when given)."""
        store = await self.store()
        try:
            key = await resolve(store, session_id, app_name=app_name, user_id=user_id)
        except (SessionIdNotFound, AmbiguousSession) as error:
            return RetrieveResult(False, error=error)
        stored = await store.get_session(app_name=key.app_name, user_id=key.user_id,
                                         session_id=key.session_id)
        if stored is None:
            return RetrieveResult(False, error=SessionIdNotFound(f"no session {session_id!r}"))
        return RetrieveResult(True, snapshot_of(stored))

    async def delete_session(self, session_id: str, *, user_id: str | None = None,
                             app_name: str | None = None) -> StoreResult:
        store = await self.store()
        key = await resolve(store, session_id, app_name=app_name, user_id=user_id)
        await store.delete_session(app_name=key.app_name, user_id=key.user_id,
                                   session_id=key.session_id)
        return StoreResult(True)

    def _with_ttl(self, payload: Any) -> Any:
        if (isinstance(payload, SessionCreated) and payload.timeout is None
                and self.ttl_seconds is not None):
            return msgspec.structs.replace(payload, timeout=self.ttl_seconds)
        return payload


def create_in_memory_session_provider(config: Mapping[str, Any] | None = None
                                      ) -> StoreSessionProvider:
    """`ttl_seconds`: new sessions' inactivity timeout; `max_sessions` is not enforced."""
    return StoreSessionProvider(None, ttl_seconds=dict(config or {}).get("ttl_seconds"))


def create_session_provider(config: Mapping[str, Any]) -> StoreSessionProvider:
    """A provider on the store at `config["url"]` (with `ttl_seconds` as above)."""
    url = config.get("url") if isinstance(config, Mapping) else None
    if not isinstance(url, str) or not url:
        raise InvalidEvent(f"a provider config names the store's url, not {config!r}")
    return StoreSessionProvider(url, ttl_seconds=config.get("ttl_seconds"))
