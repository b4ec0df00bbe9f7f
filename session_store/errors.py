"""Typed errors. Each says what went wrong and, where it can, what to do about it."""

from __future__ import annotations

TYPE_CHECKING = False  # not `typing`'s: this leaf stays cheap to import (the CLI's start-up)
if TYPE_CHECKING:
    from collections.abc import Iterator


def causes(error: BaseException) -> Iterator[BaseException]:
    """The error, what it wraps (SQLAlchemy's `orig`) and what caused it, outermost first:
    where to look for the driver's own error behind a wrapped one."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.extend([getattr(current, "orig", None), current.__cause__, current.__context__])


class SessionStoreError(Exception):
    """Base class of every error the store raises on purpose."""


class SessionNotFound(SessionStoreError):
    """The session does not exist, was deleted, or belongs to another app or user."""


class SessionIdNotFound(SessionNotFound, KeyError):
    """No visible session has this bare id (the compat modules' id-only lookups); a
    `KeyError` too, as those frameworks raise for an unknown id."""

    def __str__(self) -> str:  # KeyError's own would quote the message
        return str(self.args[0]) if self.args else ""


class AmbiguousSession(SessionStoreError, LookupError):
    """A bare session id names sessions of several apps or users: give the app and user."""


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


class MessageNotFound(SessionNotFound):
    """No visible message with that id in that session (unknown, of another session,
    retracted or cleared)."""
