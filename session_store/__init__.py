"""session-store: AI-agent conversations as an event-sourced log.

The public names are imported lazily (PEP 562): `import session_store.domain.events`
does not pull in the facade, the database drivers or the projections.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"
"""As in pyproject.toml (tests/test_version.py keeps them equal); a constant, so that
`session-store --version` needs no importlib.metadata."""

TYPE_CHECKING = False  # not `typing`'s: importing it costs `--help` a tenth of its start
if TYPE_CHECKING:  # what the lazy names are, for type checkers and readers
    from typing import Any

    from session_store.domain.events import Event, RecordedEvent, SessionKey, Usage
    from session_store.domain.messages import StoredMessage
    from session_store.domain.retention import RetentionPolicy
    from session_store.domain.snapshot import Session, SessionPage, SessionStatistics
    from session_store.errors import (
        ConcurrencyError,
        InvalidEvent,
        MessageNotFound,
        SchemaError,
        SessionAlreadyExists,
        SessionClosed,
        SessionNotFound,
        SessionStoreError,
        StoreUnavailable,
    )
    from session_store.store import SessionStore, open_store
    from session_store.sync import SyncSessionStore

_HOMES = {
    "ConcurrencyError": "session_store.errors",
    "InvalidEvent": "session_store.errors",
    "SchemaError": "session_store.errors",
    "SessionAlreadyExists": "session_store.errors",
    "SessionClosed": "session_store.errors",
    "SessionNotFound": "session_store.errors",
    "SessionStoreError": "session_store.errors",
    "StoreUnavailable": "session_store.errors",
    "Event": "session_store.domain.events",
    "RecordedEvent": "session_store.domain.events",
    "SessionKey": "session_store.domain.events",
    "Usage": "session_store.domain.events",
    "Session": "session_store.domain.snapshot",
    "SessionPage": "session_store.domain.snapshot",
    "SessionStatistics": "session_store.domain.snapshot",
    "SessionStore": "session_store.store",
    "open_store": "session_store.store",
    "SyncSessionStore": "session_store.sync",
    "StoredMessage": "session_store.domain.messages",
    "MessageNotFound": "session_store.errors",
    "RetentionPolicy": "session_store.domain.retention",
}

__all__ = [
    "ConcurrencyError",
    "Event",
    "InvalidEvent",
    "MessageNotFound",
    "RecordedEvent",
    "RetentionPolicy",
    "SchemaError",
    "Session",
    "SessionAlreadyExists",
    "SessionClosed",
    "SessionKey",
    "SessionNotFound",
    "SessionPage",
    "SessionStatistics",
    "SessionStore",
    "SessionStoreError",
    "StoreUnavailable",
    "StoredMessage",
    "SyncSessionStore",
    "Usage",
    "open_store",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'session_store' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # once found, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})
