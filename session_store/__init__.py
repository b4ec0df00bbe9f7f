"""session-store: AI-agent conversations as an event-sourced log."""

from session_store.errors import (
    ConcurrencyError,
    InvalidEvent,
    SchemaError,
    SessionAlreadyExists,
    SessionClosed,
    SessionNotFound,
    SessionStoreError,
    StoreUnavailable,
)
from session_store.events import Event, RecordedEvent, SessionKey, Usage
from session_store.session import Session, SessionPage, SessionStatistics
from session_store.store import SessionStore, open_store
from session_store.sync import SyncSessionStore

__all__ = [
    "ConcurrencyError",
    "Event",
    "InvalidEvent",
    "RecordedEvent",
    "SchemaError",
    "SessionAlreadyExists",
    "SessionClosed",
    "SessionKey",
    "SessionNotFound",
    "Session",
    "SessionPage",
    "SessionStatistics",
    "SessionStore",
    "SyncSessionStore",
    "open_store",
    "SessionStoreError",
    "StoreUnavailable",
    "Usage",
]
