"""The `Session` snapshot: an immutable view of one session at one version.

Queries on it are pure: they look only at what the snapshot holds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import msgspec

from session_store.domain.events import (
    Event,
    HistoryCompacted,
    MessageAppended,
    RecordedEvent,
    SessionKey,
)
from session_store.domain.lifecycle import ACTIVE, EXPIRED, ForkLink, Head


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


@dataclass(frozen=True, slots=True)
class TrackedTotals:
    """Interactions recorded with `track_interaction` (not tied to a message)."""

    interactions: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    response_time_sum: float = 0.0
    timed: int = 0
    """How many of them carried a response time."""


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
    last_message_time: float | None = None
    """The newest message's own timestamp, as its runner stamped it (None before any)."""
    forked_from: ForkLink | None = None
    """The session (and its version) this one was forked from."""
    forks: tuple[ForkLink, ...] = ()
    """The sessions forked from this one, oldest first, each with the version it left at."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", MappingProxyType(dict(self.state)))
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))

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

    def messages_after(self, timestamp: float) -> tuple[Event, ...]:
        return tuple(m for m in self.messages if m.timestamp > timestamp)

    def search(self, text: str) -> tuple[Event, ...]:
        """Messages whose text contains `text`, ignoring case."""
        needle = text.casefold()
        return tuple(m for m in self.messages if m.text and needle in m.text.casefold())

    def statistics(self) -> SessionStatistics:
        """Counts, tokens and response times of the messages held plus tracked interactions.

        The mean response time covers messages and tracked interactions that carried
        one; the p95 covers message response times only (tracked ones are kept as totals).
        """
        by_role: dict[str, int] = {}
        tokens_in, tokens_out, times = self.tracked.tokens_in, self.tracked.tokens_out, []
        interactions = self.tracked.interactions
        for message in self.messages:
            by_role[message.role] = by_role.get(message.role, 0) + 1
            if message.usage is not None:
                tokens_in += message.usage.tokens_in
                tokens_out += message.usage.tokens_out
            if message.response_time is not None:
                times.append(message.response_time)
            if message.usage is not None or message.response_time is not None:
                interactions += 1
        total_time = sum(times) + self.tracked.response_time_sum
        timed = len(times) + self.tracked.timed
        times.sort()
        return SessionStatistics(
            messages=sum(by_role.values()),
            messages_by_role=MappingProxyType(by_role),
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            interactions=interactions,
            mean_response_time=total_time / timed if timed else None,
            p95_response_time=times[max(0, math.ceil(0.95 * len(times)) - 1)] if times else None,
            duration=max(0.0, self.last_update_time - self.created_at),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (events included, as their builtins form)."""
        return {
            "id": self.id, "app_name": self.app_name, "user_id": self.user_id,
            "version": self.version, "status": self.status, "state": dict(self.state),
            "metadata": dict(self.metadata), "tags": list(self.tags),
            "created_at": self.created_at, "last_update_time": self.last_update_time,
            "expires_at": self.expires_at, "last_message_time": self.last_message_time,
            "forked_from": None if self.forked_from is None else list(self.forked_from.key)
            + [self.forked_from.version],
            "forks": [[*link.key, link.version] for link in self.forks],
            "events": [msgspec.to_builtins(e) for e in self.events],
        }


@dataclass(frozen=True, slots=True)
class SessionPage:
    sessions: list[Session]
    next_cursor: str | None


def snapshot(head: Head, scoped: Mapping[str, Any], messages: Sequence[RecordedEvent],
             now: float | None = None) -> Session:
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
                              head.tracked_timed),
        last_message_time=head.last_message_at, forked_from=head.forked_from,
        forks=tuple(head.forks),
    )
