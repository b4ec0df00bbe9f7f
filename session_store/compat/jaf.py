"""JAF's immutable sessions (`adk.types`) on the store's event log.

`ImmutableAdkSession` is a frozen snapshot, deeply (its metadata and message contents are
read-only mappings and tuples). `with_message`, `with_metadata` and the pure functions
(`add_message_to_session` & co.) return a NEW snapshot carrying the change as a pending
event; the original is unchanged. A provider's `store_session`
(`session_store.compat.jaf_providers`) appends the pending events with `expected_version`
= the snapshot's `version`: a snapshot that another write overtook raises
`ConcurrencyError`, so no write is ever lost.

"After" a time means strictly later (`get_messages_after`), as the store's own snapshot;
naive `datetime`s are local time, as `datetime.now()`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

import msgspec

from session_store.compat._lookup import epoch, local
from session_store.domain.events import (
    AnyPayload,
    Event,
    MessageAppended,
    MetadataChanged,
    Payload,
    SessionCreated,
)
from session_store.domain.ids import new_id
from session_store.domain.snapshot import Session
from session_store.errors import InvalidEvent


class SessionError(InvalidEvent):
    """JAF's session error: a message or session the operation cannot take."""


def freeze(value: Any) -> Any:
    """A read-only copy: mappings become `MappingProxyType`s, lists and tuples tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    if isinstance(value, set | frozenset):
        return frozenset(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """The plain JSON-ready form of a frozen value."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list | frozenset | set):
        return [thaw(v) for v in value]
    return value


_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class AdkMessage:
    role: str
    content: Any
    """Text, or (a tool's result) a read-only mapping."""
    message_id: str = field(default_factory=new_id)
    timestamp: datetime = field(default_factory=datetime.now)
    tool_name: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.role, str) or not self.role:
            raise SessionError(f"a message role is a non-empty string, not {self.role!r}")
        if not isinstance(self.content, str | Mapping | list | tuple):
            raise SessionError(f"message content is text or (a tool's result) a mapping or "
                               f"list, not {type(self.content).__name__}")
        if not isinstance(self.metadata, Mapping):
            raise SessionError(f"message metadata is a mapping, not "
                               f"{type(self.metadata).__name__}")
        object.__setattr__(self, "content", freeze(self.content))
        object.__setattr__(self, "metadata", freeze(self.metadata))
        object.__setattr__(self, "text", _text_of(self.content))

    text: str = field(init=False, default="", compare=False, repr=False)
    """The content as text (a mapping or list as JSON)."""


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    try:
        return json.dumps(thaw(content), sort_keys=True, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise SessionError(f"a message's content must be JSON: {error}") from None


def create_user_message(content: str, metadata: Mapping[str, Any] | None = None) -> AdkMessage:
    return AdkMessage("user", content, metadata=metadata or _EMPTY)


def create_assistant_message(content: str,
                             metadata: Mapping[str, Any] | None = None) -> AdkMessage:
    return AdkMessage("assistant", content, metadata=metadata or _EMPTY)


def create_system_message(content: str, metadata: Mapping[str, Any] | None = None) -> AdkMessage:
    return AdkMessage("system", content, metadata=metadata or _EMPTY)


def create_tool_message(tool_name: str, content: Any,
                        metadata: Mapping[str, Any] | None = None) -> AdkMessage:
    return AdkMessage("tool", content, tool_name=tool_name, metadata=metadata or _EMPTY)


# --- messages <-> the log's events (where per-message metadata is mapped today) ------------

def _event_of(message: AdkMessage) -> Event:
    """The stored form of a message. Today its metadata (and a mapping content) ride in
    `Event.native`; re-point the metadata to `Event(metadata=...)` once it exists."""
    native: dict[str, Any] = {"metadata": thaw(message.metadata)}
    if not isinstance(message.content, str):
        native["content"] = thaw(message.content)
    return Event(role=message.role, text=message.text, author=message.tool_name or "",
                 id=message.message_id, timestamp=message.timestamp.timestamp(),
                 native=native)


def message_of(event: Event) -> AdkMessage:
    native = event.native if isinstance(event.native, dict) else {}
    return AdkMessage(
        event.role, native.get("content", event.text or ""),
        message_id=event.id, timestamp=local(event.timestamp),
        tool_name=event.author if event.role == "tool" else None,
        metadata=native.get("metadata") or _EMPTY)


# --- the snapshot --------------------------------------------------------------------------

@dataclass(frozen=True)
class ImmutableAdkSession:
    """A session as of `version` of its stream (0: never stored), plus `pending` changes
    made since, which `store_session` appends."""

    session_id: str
    user_id: str
    app_name: str
    messages: tuple[AdkMessage, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    created_at: datetime = field(default_factory=datetime.now)
    version: int = 0
    pending: tuple[AnyPayload, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "messages", tuple(self.messages))
        object.__setattr__(self, "metadata", freeze(self.metadata))
        object.__setattr__(self, "pending", tuple(self.pending))

    # functional updates
    def with_message(self, message: AdkMessage) -> ImmutableAdkSession:
        if not isinstance(message, AdkMessage):
            raise SessionError(f"with_message takes an AdkMessage, not "
                               f"{type(message).__name__}")
        return dataclasses.replace(
            self, messages=(*self.messages, message),
            pending=(*self.pending, MessageAppended(message=_event_of(message))))

    def with_metadata(self, metadata: Mapping[str, Any]) -> ImmutableAdkSession:
        if not isinstance(metadata, Mapping):
            raise SessionError(f"metadata is a mapping, not {type(metadata).__name__}")
        patch = thaw(metadata)
        return dataclasses.replace(
            self, metadata={**thaw(self.metadata), **patch},
            pending=(*self.pending, MetadataChanged(patch=patch, merge=True)))

    def _replace(self, **changes: Any) -> ImmutableAdkSession:
        """A copy with fields replaced (a view: not a change to store)."""
        return dataclasses.replace(self, **changes)

    # queries (pure)
    def get_recent_messages(self, count: int = 10) -> tuple[AdkMessage, ...]:
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise SessionError(f"count must be a non-negative int, not {count!r}")
        return self.messages[-count:] if count else ()

    def get_messages_by_role(self, role: str) -> tuple[AdkMessage, ...]:
        return tuple(m for m in self.messages if m.role == role)

    def get_messages_after(self, timestamp: datetime | float) -> tuple[AdkMessage, ...]:
        """Messages strictly after `timestamp`."""
        after = epoch(timestamp, "timestamp")
        return tuple(m for m in self.messages if m.timestamp.timestamp() > after)

    def search_messages(self, text: str) -> tuple[AdkMessage, ...]:
        """Messages whose text contains `text`, ignoring case."""
        if not isinstance(text, str):
            raise SessionError(f"search text must be a string, not {type(text).__name__}")
        needle = text.casefold()
        return tuple(m for m in self.messages if needle in m.text.casefold())

    def get_statistics(self) -> dict[str, Any]:
        """Counts by role and the span from creation to the last message, in minutes."""
        by_role = {role: len(self.get_messages_by_role(role))
                   for role in ("user", "assistant", "system", "tool")}
        last = self.messages[-1].timestamp if self.messages else self.created_at
        return {"total_messages": len(self.messages),
                **{f"{role}_messages": n for role, n in by_role.items()},
                "duration_minutes": max(0.0, (last - self.created_at).total_seconds() / 60),
                "pending_changes": len(self.pending), "version": self.version}


def create_immutable_session(session_id: str, user_id: str, app_name: str,
                             created_at: datetime | None = None,
                             metadata: Mapping[str, Any] | None = None,
                             timeout: float | None = None) -> ImmutableAdkSession:
    """A new session, not stored yet: its creation is its first pending event."""
    for value, what in ((session_id, "session_id"), (user_id, "user_id"),
                        (app_name, "app_name")):
        if not isinstance(value, str) or not value:
            raise SessionError(f"{what} must be a non-empty string, not {value!r}")
    initial = thaw(metadata or {})
    return ImmutableAdkSession(
        session_id, user_id, app_name, metadata=initial,
        created_at=created_at or datetime.now(),
        pending=(SessionCreated(metadata=initial, timeout=timeout),))


def snapshot_of(session: Session) -> ImmutableAdkSession:
    """The snapshot of a stored session (nothing pending)."""
    return ImmutableAdkSession(
        session.id, session.user_id, session.app_name,
        messages=tuple(message_of(m) for m in session.messages),
        metadata=session.metadata, created_at=local(session.created_at),
        version=session.version)


# --- pure functions ------------------------------------------------------------------------

def add_message_to_session(session: ImmutableAdkSession,
                           message: AdkMessage) -> ImmutableAdkSession:
    return session.with_message(message)


def add_metadata_to_session(session: ImmutableAdkSession,
                            metadata: Mapping[str, Any]) -> ImmutableAdkSession:
    return session.with_metadata(metadata)


def filter_messages_by_role(session: ImmutableAdkSession, role: str) -> tuple[AdkMessage, ...]:
    return session.get_messages_by_role(role)


def merge_sessions(base: ImmutableAdkSession, other: ImmutableAdkSession
                   ) -> ImmutableAdkSession:
    """`base` with the messages of `other` it lacks (by id) added, oldest first."""
    known = {m.message_id for m in base.messages}
    added = sorted((m for m in other.messages if m.message_id not in known),
                   key=lambda m: m.timestamp)
    return functools.reduce(ImmutableAdkSession.with_message, added, base)


def transform_session(session: ImmutableAdkSession,
                      transformations: Iterable[Callable[[ImmutableAdkSession],
                                                         ImmutableAdkSession]]
                      ) -> ImmutableAdkSession:
    return functools.reduce(lambda current, step: step(current), transformations, session)


# --- serialization -------------------------------------------------------------------------

def serialize_session(session: ImmutableAdkSession) -> str:
    """JSON of the snapshot, pending changes included (a restored one can still be stored)."""
    return json.dumps({
        "session_id": session.session_id, "user_id": session.user_id,
        "app_name": session.app_name, "version": session.version,
        "created_at": session.created_at.timestamp(), "metadata": thaw(session.metadata),
        "messages": [msgspec.to_builtins(_event_of(m)) for m in session.messages],
        "pending": msgspec.to_builtins(list(session.pending)),
    }, ensure_ascii=False)


def deserialize_session(document: str | bytes) -> ImmutableAdkSession:
    try:
        data = json.loads(document)
        messages = msgspec.convert(data["messages"], list[Event])
        pending: Sequence[Payload] = msgspec.convert(data["pending"], list[AnyPayload])
        return ImmutableAdkSession(
            data["session_id"], data["user_id"], data["app_name"],
            messages=tuple(message_of(m) for m in messages), metadata=data["metadata"],
            created_at=local(data["created_at"]), version=data["version"],
            pending=tuple(pending))  # type: ignore[arg-type]
    except (ValueError, KeyError, TypeError, msgspec.ValidationError) as error:
        raise SessionError(f"not a serialized session: {error}") from None
