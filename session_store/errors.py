"""Typed errors. Each says what went wrong and, where it can, what to do about it."""

from __future__ import annotations


class SessionStoreError(Exception):
    """Base class of every error the store raises on purpose."""


class SessionNotFound(SessionStoreError):
    """The session does not exist, was deleted, or belongs to another app or user."""


class SessionAlreadyExists(SessionStoreError):
    """The `(app_name, user_id, session_id)` is taken (or was taken by a deleted session)."""


class ConcurrencyError(SessionStoreError):
    """The stream moved on since the caller read it: `expected_version` is stale."""

    def __init__(self, message: str, *, expected: object = None, actual: int | None = None):
        super().__init__(message)
        self.expected = expected
        self.actual = actual


class SessionClosed(SessionStoreError):
    """The session was ended or deleted and refuses new events."""


class InvalidEvent(SessionStoreError, ValueError):
    """Bad input, refused before anything was written."""


class SchemaError(SessionStoreError):
    """The database schema does not match this code (e.g. written by a newer version)."""


class StoreUnavailable(SessionStoreError):
    """The database cannot be opened: a bad URL, a missing driver, a server that refuses."""


class CorruptEvent(SessionStoreError):
    """A stored event does not decode: the log was changed behind the store's back (or
    by a release that wrote what this one cannot read). `session-store audit` names it."""

    def __init__(self, message: str, *, position: int | None = None):
        super().__init__(message)
        self.position = position
