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
    "SessionStoreError",
    "StoreUnavailable",
    "Usage",
]
