"""Retention policies: how long an app keeps its sessions, and how many messages each shows.

A `RetentionPolicy` is a value; `store.set_retention` records it as a `RetentionSet`
event on the app's scope stream `(app, "", "")` (where `app:` state lives), so the
policy an app had at any time is in the log. `session_store.retention` enforces it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from session_store.domain import validation
from session_store.domain.events import RetentionSet
from session_store.errors import InvalidEvent

Duration = float | timedelta


@dataclass(frozen=True)
class RetentionPolicy:
    """What retention does to the sessions of one app (each rule off when None).

    - `archive_after`: an active (or expired) session idle this long is archived;
    - `delete_after`: a session idle this long is deleted (tombstoned, hidden);
    - `purge_after`: a deleted session is purged this long after its delete;
    - `max_messages`: a session shows at most this many messages: older ones leave
      the visible history (a `HistoryTrimmed` marker; the log keeps them).

    Durations are seconds or `timedelta`s, read back as float seconds. Idleness is
    measured from the session's last activity (`Session.last_update_time`).
    """

    archive_after: float | None = None
    delete_after: float | None = None
    purge_after: float | None = None
    max_messages: int | None = None

    def __init__(self, *, archive_after: Duration | None = None,
                 delete_after: Duration | None = None, purge_after: Duration | None = None,
                 max_messages: int | None = None) -> None:
        for name, value in (("archive_after", archive_after), ("delete_after", delete_after),
                            ("purge_after", purge_after)):
            object.__setattr__(self, name, validation.timeout_of(value, name))
        if max_messages is not None:
            validation.check_count(max_messages, "max_messages")
            if max_messages < 1:
                raise InvalidEvent("max_messages must be at least 1 (None: no limit)")
        object.__setattr__(self, "max_messages", max_messages)

    @property
    def empty(self) -> bool:
        """No rule is on: retention leaves the app alone."""
        return self == RetentionPolicy()

    def payload(self) -> RetentionSet:
        return RetentionSet(archive_after=self.archive_after, delete_after=self.delete_after,
                            purge_after=self.purge_after, max_messages=self.max_messages)

    @classmethod
    def of(cls, payload: RetentionSet) -> RetentionPolicy:
        return cls(archive_after=payload.archive_after, delete_after=payload.delete_after,
                   purge_after=payload.purge_after, max_messages=payload.max_messages)

