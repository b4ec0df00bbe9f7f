"""The `Session` snapshot: an immutable view of one session at one version.

Queries on it are pure: they look only at what the snapshot holds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

import msgspec

from session_store.domain import search as searching
from session_store.domain.events import (
    Event,
    HistoryCompacted,
    MessageAppended,
    RecordedEvent,
    SessionKey,
)
from session_store.domain.frozen import frozen, thawed
from session_store.domain.lifecycle import ACTIVE, EXPIRED, ForkLink, Head
from session_store.domain.times import seconds
from session_store.errors import InvalidEvent

SESSION, WINDOW, SUMMARY = "session", "window", "summary"
"""What a snapshot's `events` (and so its `statistics()`) cover: every visible message of
the session; only some of them (`num_recent_events`, `after_timestamp`); none (a summary
from `list_sessions`)."""


@dataclass(frozen=True, slots=True)
class SessionStatistics:
    messages: int
    messages_by_role: Mapping[str, int]
    tokens_in: int
    tokens_out: int
    interactions: int
    mean_response_time: float | None
    p95_response_time: float | None
    duration: float
    covers: str = SESSION
    """`session`: every visible message and every tracked interaction; `window`: only the
    messages the snapshot holds (tracked interactions are not tied to a message, so none)."""


@dataclass(frozen=True, slots=True)
class TrackedTotals:
    """Interactions recorded with `track_interaction` (not tied to a message)."""

    interactions: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    response_time_sum: float = 0.0
    timed: int = 0
    """How many of them carried a response time."""
    response_times: tuple[float, ...] = ()
    """Each of those response times, when the snapshot covers the whole session."""


@dataclass(frozen=True, slots=True)
class Session:
    """A session as of `version`. `events` holds its visible messages, oldest first (after
    a compaction, the `HistoryCompacted` whose summary stands for the older ones comes
    first)."""

    id: str
    app_name: str
    user_id: str
    version: int
    status: str
    state: Mapping[str, Any]
    metadata: Mapping[str, Any]
    tags: tuple[str, ...]
    events: tuple[RecordedEvent, ...]
    created_at: float
    last_update_time: float
    expires_at: float | None
    tracked: TrackedTotals = field(default_factory=TrackedTotals)
    covers: str = SESSION
    """What `events` hold: `session` (every visible message), `window` (some of them) or
    `summary` (none: `list_sessions`)."""
    last_message_time: float | None = None
    """The newest message's own timestamp, as its runner stamped it (None before any)."""
    forked_from: ForkLink | None = None
    """The session (and its version) this one was forked from."""
    forks: tuple[ForkLink, ...] = ()
    """The sessions forked from this one, oldest first, each with the version it left at."""

    def __post_init__(self) -> None:  # deeply immutable: nested values cannot change either
        object.__setattr__(self, "state", MappingProxyType(frozen(dict(self.state))))
        object.__setattr__(self, "metadata", MappingProxyType(frozen(dict(self.metadata))))

    @property
    def key(self) -> SessionKey:
        return SessionKey(self.app_name, self.user_id, self.id)

    @property
    def messages(self) -> tuple[Event, ...]:
        return tuple(e.data.message if isinstance(e.data, MessageAppended) else e.data.summary
                     for e in self.events
                     if isinstance(e.data, (MessageAppended, HistoryCompacted)))

    def recent_messages(self, n: int) -> tuple[Event, ...]:
        return self.messages[-n:] if n > 0 else ()

    def messages_by_role(self, role: str) -> tuple[Event, ...]:
        return tuple(m for m in self.messages if m.role == role)

    def messages_after(self, timestamp: float | datetime) -> tuple[Event, ...]:
        """Messages whose own time is at or after `timestamp` (epoch seconds or an aware
        datetime): `>=`, the one meaning of every time filter (`session_store.domain.times`)."""
        since = seconds(timestamp, "timestamp")
        return tuple(m for m in self.messages if m.timestamp >= since)

    def search(self, text: str) -> tuple[Event, ...]:
        """Messages matching every word, `prefix*` and `"phrase"` of `text`, ignoring case
        and accents: the rule of `history.search` (`session_store.domain.search`)."""
        if not isinstance(text, str):
            raise InvalidEvent(f"search text must be a string, not {type(text).__name__}")
        terms = searching.parse(text)
        return tuple(m for m in self.messages if searching.matches(terms, searching.text_of(m)))

    def statistics(self) -> SessionStatistics:
        """Counts, tokens and response times of what the snapshot covers (`covers`): the
        whole session (visible messages and tracked interactions), or only the window of
        messages it holds. The mean and the p95 take every response time covered, tracked
        interactions' included. A summary (`list_sessions`) holds no messages: `InvalidEvent`
        (read the session with `get_session`)."""
        if self.covers == SUMMARY:
            raise InvalidEvent(f"session {self.id!r} is a summary from list_sessions and holds "
                               "no messages: read it with get_session for its statistics")
        tracked = self.tracked if self.covers == SESSION else TrackedTotals()
        by_role: dict[str, int] = {}
        tokens_in, tokens_out = tracked.tokens_in, tracked.tokens_out
        times = list(tracked.response_times)
        interactions = tracked.interactions
        for message in self.messages:
            by_role[message.role] = by_role.get(message.role, 0) + 1
            if message.usage is not None:
                tokens_in += message.usage.tokens_in
                tokens_out += message.usage.tokens_out
            if message.response_time is not None:
                times.append(message.response_time)
            if message.usage is not None or message.response_time is not None:
                interactions += 1
        timed = len(times)
        total_time = sum(times)
        if len(tracked.response_times) != tracked.timed:  # totals only (an old caller's)
            total_time += tracked.response_time_sum
            timed += tracked.timed
        times.sort()
        return SessionStatistics(
            messages=sum(by_role.values()),
            messages_by_role=MappingProxyType(by_role),
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            interactions=interactions,
            mean_response_time=total_time / timed if timed else None,
            p95_response_time=times[max(0, math.ceil(0.95 * len(times)) - 1)] if times else None,
            duration=max(0.0, self.last_update_time - self.created_at), covers=self.covers,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (events included, as their builtins form)."""
        return {
            "id": self.id, "app_name": self.app_name, "user_id": self.user_id,
            "version": self.version, "status": self.status, "state": thawed(self.state),
            "metadata": thawed(self.metadata), "tags": list(self.tags),
            "created_at": self.created_at, "last_update_time": self.last_update_time,
            "expires_at": self.expires_at, "last_message_time": self.last_message_time,
            "forked_from": None if self.forked_from is None else list(self.forked_from.key)
            + [self.forked_from.version],
            "forks": [[*link.key, link.version] for link in self.forks],
            "events": [msgspec.to_builtins(e) for e in self.events],
            "tracked": thawed(msgspec.to_builtins(self.tracked)), "covers": self.covers,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Session:
        """The snapshot `to_dict` gave (`Session.from_dict(s.to_dict()) == s`); `InvalidEvent`
        for anything else."""
        return session_of(data)


@dataclass(frozen=True, slots=True)
class SessionPage:
    sessions: list[Session]
    next_cursor: str | None


def snapshot(head: Head, scoped: Mapping[str, Any], messages: Sequence[RecordedEvent],
             now: float | None = None, *, covers: str = SESSION,
             tracked_times: Sequence[float] = ()) -> Session:
    """The public `Session` of a head, its app/user scope state and its messages.

    An active session idle past its timeout shows as expired before the store has
    recorded `SessionExpired` (`cleanup_expired_sessions` does).
    """
    status = head.status
    expires_at = head.expires_at
    if status == ACTIVE and expires_at is not None and expires_at < (now or time.time()):
        status = EXPIRED
    return Session(
        id=head.session_id, app_name=head.app_name, user_id=head.user_id, version=head.version,
        status=status, state={**head.state, **scoped}, metadata=head.metadata,
        tags=tuple(head.tags), events=tuple(messages), created_at=head.created_at,
        last_update_time=head.last_update_time, expires_at=expires_at,
        tracked=TrackedTotals(head.tracked_interactions, head.tracked_tokens_in,
                              head.tracked_tokens_out, head.tracked_response_time,
                              head.tracked_timed, tuple(tracked_times)),
        covers=covers, last_message_time=head.last_message_at,
        forked_from=head.forked_from, forks=tuple(head.forks),
    )


class _SessionDict(msgspec.Struct, kw_only=True):
    """The shape of `Session.to_dict()`, as `from_dict` checks it."""

    id: str
    app_name: str
    user_id: str
    version: int
    status: str
    state: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    tags: list[str] = []
    created_at: float
    last_update_time: float
    expires_at: float | None = None
    events: list[RecordedEvent] = []
    tracked: TrackedTotals = TrackedTotals()
    covers: str = SESSION
    last_message_time: float | None = None
    forked_from: ForkLink | None = None
    forks: list[ForkLink] = []


def session_of(data: Mapping[str, Any]) -> Session:
    """The `Session` of a `to_dict()` dict."""
    if not isinstance(data, Mapping):
        raise InvalidEvent(f"Session.from_dict takes a dict from Session.to_dict, not "
                           f"{type(data).__name__}")
    try:
        found = msgspec.convert(dict(data), _SessionDict, strict=False)
    except (msgspec.ValidationError, TypeError) as error:
        raise InvalidEvent(f"not a dict from Session.to_dict: {error}") from None
    if found.covers not in (SESSION, WINDOW, SUMMARY):
        raise InvalidEvent(f"covers must be one of session, window, summary, not "
                           f"{found.covers!r}")
    return Session(
        id=found.id, app_name=found.app_name, user_id=found.user_id, version=found.version,
        status=found.status, state=found.state, metadata=found.metadata,
        tags=tuple(found.tags), events=tuple(found.events), created_at=found.created_at,
        last_update_time=found.last_update_time, expires_at=found.expires_at,
        tracked=found.tracked, covers=found.covers, last_message_time=found.last_message_time,
        forked_from=found.forked_from, forks=tuple(found.forks))
