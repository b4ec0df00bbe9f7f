"""LangSwarm V2's session objects (`langswarm.core.session`): `SessionMessage`,
`SessionContext`, `SessionMetrics`, the deterministic `MockProvider`, and the live session
handle `LangSwarmSession` the manager (`session_store.compat.langswarm`) hands out.

A provider is any callable `provider(messages, model=..., config=...)` (sync or async)
returning a `ProviderResponse`; the store records what it returned: the reply's text,
model, provider, usage and latency (measured around the call when the provider gives none).

Functions named `_...` below map a call onto today's native API where a native feature is
coming (per-message metadata, last-N history, message by id, export, tag changes): each is
the one place to re-point.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from session_store.compat._lookup import epoch, local
from session_store.domain.events import Event, SessionKey, Usage
from session_store.domain.snapshot import Session
from session_store.errors import InvalidEvent, SessionNotFound
from session_store.store import SessionStore


@dataclass
class SessionMessage:
    """A message as LangSwarm shows it (mutable, as its middleware expects)."""

    role: str
    content: str
    timestamp: datetime = field(default_factory=datetime.now)
    message_id: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    provider_message_id: str | None = None
    provider_metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class SessionContext:
    """What middleware is told about the session a message belongs to."""

    session_id: str
    user_id: str
    app_name: str


@dataclass(frozen=True)
class SessionMetrics:
    total_messages: int
    user_messages: int
    assistant_messages: int
    system_messages: int
    avg_response_time_ms: float
    """Mean over the replies and interactions that were timed; 0.0 when none was."""
    total_tokens: int
    tokens_in: int
    tokens_out: int
    session_duration: timedelta


@dataclass(frozen=True)
class ProviderResponse:
    content: str
    model: str | None = None
    provider: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    latency: float | None = None
    """Seconds; measured around the call when None."""
    provider_message_id: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


Provider = Callable[..., "ProviderResponse | Awaitable[ProviderResponse]"]


class MockProvider:
    """LangSwarm's mock provider: "Mock response to: {input}" (or the pattern set), usage
    in words, latency 0: the same conversation gets the same replies."""

    name = "mock"

    def __init__(self, pattern: str = "Mock response to: {input}") -> None:
        self.pattern = pattern

    def set_response_pattern(self, pattern: str) -> None:
        if not isinstance(pattern, str) or "{input}" not in pattern:
            raise InvalidEvent(f"a response pattern holds '{{input}}', not {pattern!r}")
        self.pattern = pattern

    def __call__(self, messages: Sequence[SessionMessage], *, model: str,
                 config: Mapping[str, Any]) -> ProviderResponse:
        last = next((m.content for m in reversed(messages) if m.role == "user"), "")
        reply = self.pattern.format(input=last)
        prompt = sum(len(m.content.split()) for m in messages)
        return ProviderResponse(content=reply, model=model, provider=self.name,
                                tokens_in=prompt, tokens_out=len(reply.split()), latency=0.0)


# --- where coming native features are mapped today ----------------------------------------

def _message_event(role: str, content: str, *, metadata: Mapping[str, Any] | None = None,
                   author: str = "", timestamp: float | None = None,
                   reply: ProviderResponse | None = None,
                   latency: float | None = None) -> Event:
    """The stored form of a message. Today its metadata and the provider's fields ride in
    `Event.native`; re-point to `Event(metadata=...)` once it exists."""
    if not isinstance(content, str):
        raise InvalidEvent(f"message content must be a string, not {type(content).__name__}")
    native: dict[str, Any] = {"metadata": dict(metadata or {})}
    usage = None
    if reply is not None:
        native.update(provider=reply.provider, provider_message_id=reply.provider_message_id,
                      provider_metadata=dict(reply.metadata))
        usage = Usage(tokens_in=reply.tokens_in, tokens_out=reply.tokens_out, model=reply.model)
    fields: dict[str, Any] = {} if timestamp is None else {"timestamp": timestamp}
    return Event(role=role, text=content, author=author, usage=usage, response_time=latency,
                 native=native, **fields)


def message_of(event: Event) -> SessionMessage:
    """The `SessionMessage` of a stored message (reads what `_message_event` wrote)."""
    native = event.native if isinstance(event.native, dict) else {}
    return SessionMessage(
        role=event.role, content=event.text or "", timestamp=local(event.timestamp),
        message_id=event.id, metadata=dict(native.get("metadata") or {}),
        provider_message_id=native.get("provider_message_id"),
        provider_metadata=dict(native.get("provider_metadata") or {}))


async def _message_by_id(store: SessionStore, key: SessionKey, message_id: str) -> Event:
    """One visible message by id. Today: the session's messages, searched; re-point to
    `store.get_message(app_name=, user_id=, session_id=, message_id=)`."""
    if not isinstance(message_id, str) or not message_id:
        raise InvalidEvent(f"message_id must be a non-empty string, not {message_id!r}")
    session = await _load(store, key)
    for message in session.messages:
        if message.id == message_id:
            return message
    raise InvalidEvent(f"session {key.session_id!r} has no message {message_id!r}")


async def _recent(store: SessionStore, key: SessionKey, *, limit: int | None,
                  roles: Sequence[str] | None, since: float | None) -> list[Event]:
    """The last `limit` visible messages (with those roles, at or after `since`), oldest
    first. Today: all matching, then the tail; re-point to history's newest-first last-N."""
    session = await _load(store, key)
    found = [m for m in session.messages if (roles is None or m.role in roles)
             and (since is None or m.timestamp >= since)]
    return found if limit is None else found[-limit:] if limit else []


async def _export(store: SessionStore, key: SessionKey) -> dict[str, Any]:
    """The conversation as one JSON-ready document. Today: the snapshot's own form;
    re-point to `store.export_session(...)`."""
    session = await _load(store, key)
    document = session.to_dict()
    document["messages"] = [_jsonable(message_of(m)) for m in session.messages]
    return document


async def _set_tags(store: SessionStore, key: SessionKey, tags: Sequence[str]) -> None:
    """Change a session's tags. Today: kept in its metadata (`tags`), which `tags_of`
    reads first; re-point to `store.set_tags(...)`."""
    if isinstance(tags, str) or not all(isinstance(t, str) and t for t in tags):
        raise InvalidEvent(f"tags must be a list of non-empty strings, not {tags!r}")
    await store.update_session_metadata(key, {"tags": list(dict.fromkeys(tags))})


def tags_of(session: Session) -> tuple[str, ...]:
    """A session's tags: as changed (`_set_tags`), else as created."""
    changed = session.metadata.get("tags")
    return tuple(changed) if isinstance(changed, list | tuple) else session.tags


def _jsonable(message: SessionMessage) -> dict[str, Any]:
    document = asdict(message)
    document["timestamp"] = message.timestamp.isoformat()
    return document


async def _load(store: SessionStore, key: SessionKey) -> Session:
    session = await store.get_session(app_name=key.app_name, user_id=key.user_id,
                                      session_id=key.session_id)
    if session is None:
        raise SessionNotFound(f"session {key.session_id!r} is gone")
    return session


# --- the session handle --------------------------------------------------------------------

ErrorHook = Callable[[str, Exception], Awaitable[None]]


class LangSwarmSession:
    """One session, as `manager.create_session` returns it; its properties are as of the
    last call that read or wrote it."""

    def __init__(self, store: SessionStore, session: Session, provider: Provider,
                 on_error: ErrorHook) -> None:
        self._store, self._session = store, session
        self.provider_session = provider
        self._on_error = on_error

    # identity and status
    @property
    def session_id(self) -> str:
        return self._session.id

    @property
    def user_id(self) -> str:
        return self._session.user_id

    @property
    def key(self) -> SessionKey:
        return self._session.key

    @property
    def provider(self) -> str:
        return str(self._session.metadata.get("provider", "mock"))

    @property
    def model(self) -> str:
        return str(self._session.metadata.get("model", ""))

    @property
    def provider_session_id(self) -> str:
        return f"{self.provider}-{self.session_id}"

    @property
    def status(self) -> str:
        return self._session.status

    @property
    def name(self) -> str | None:
        value = self._session.metadata.get("name")
        return value if isinstance(value, str) else None

    @property
    def tags(self) -> tuple[str, ...]:
        return tags_of(self._session)

    @property
    def message_count(self) -> int:
        return len(self._session.events)

    @property
    def created_at(self) -> datetime:
        return local(self._session.created_at)

    @property
    def last_activity(self) -> datetime:
        return local(self._session.last_update_time)

    async def refresh(self) -> LangSwarmSession:
        self._session = await _load(self._store, self.key)
        return self

    # messages
    async def send_message(self, content: str,
                           metadata: Mapping[str, Any] | None = None) -> SessionMessage:
        """Record the user's message, ask the provider (with the history as stored, after
        middleware), record its reply; returns the reply."""
        await self._store.append_event(self.key, _message_event("user", content,
                                                                metadata=metadata))
        history = [message_of(m) for m in (await self.refresh())._session.messages]
        started = time.perf_counter()
        try:
            outcome = self.provider_session(history, model=self.model,
                                            config=dict(self._session.metadata.get(
                                                "provider_config") or {}))
            reply = await outcome if inspect.isawaitable(outcome) else outcome
            if not isinstance(reply, ProviderResponse):
                raise InvalidEvent(f"provider {self.provider!r} returned {reply!r}, not a "
                                   "ProviderResponse")
        except Exception as error:
            await self._on_error(self.session_id, error)
            raise
        latency = reply.latency if reply.latency is not None else (
            time.perf_counter() - started)
        if reply.provider is None or reply.model is None:
            reply = ProviderResponse(**{**asdict(reply), "provider": reply.provider
                                        or self.provider, "model": reply.model or self.model})
        recorded = await self._store.append_event(self.key, _message_event(
            "assistant", reply.content, author=reply.provider or self.provider, reply=reply,
            latency=latency))
        await self.refresh()
        return message_of(recorded.data.message)  # type: ignore[union-attr]

    async def send_system_message(self, content: str) -> SessionMessage:
        return await self.add_message("system", content)

    async def add_message(self, role: str, content: str, timestamp: datetime | None = None,
                          metadata: Mapping[str, Any] | None = None) -> SessionMessage:
        """Record a message as it is (no provider call): migrations, system prompts."""
        at = None if timestamp is None else epoch(timestamp, "timestamp")
        recorded = await self._store.append_event(self.key, _message_event(
            role, content, metadata=metadata, timestamp=at))
        await self.refresh()
        return message_of(recorded.data.message)  # type: ignore[union-attr]

    async def get_messages(self, limit: int | None = None, role: str | None = None,
                           start_time: datetime | float | None = None) -> list[SessionMessage]:
        """The visible messages, oldest first: the last `limit`, of `role`, at or after
        `start_time`."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                                  or limit < 0):
            raise InvalidEvent(f"limit must be a non-negative int, not {limit!r}")
        since = None if start_time is None else epoch(start_time, "start_time")
        events = await _recent(self._store, self.key, limit=limit,
                               roles=None if role is None else [role], since=since)
        return [message_of(m) for m in events]

    async def get_message(self, message_id: str) -> SessionMessage:
        return message_of(await _message_by_id(self._store, self.key, message_id))

    async def clear_messages(self) -> None:
        await self._store.clear_history(self.key)
        await self.refresh()

    async def export_conversation(self) -> dict[str, Any]:
        return await _export(self._store, self.key)

    # context, configuration, lifecycle
    async def update_context(self, context: Mapping[str, Any]) -> None:
        await self._store.update_state(self.key, context)
        await self.refresh()

    async def get_context(self) -> dict[str, Any]:
        await self.refresh()
        return {k: v for k, v in self._session.state.items()
                if not k.startswith(("app:", "user:"))}

    async def update_config(self, config: Mapping[str, Any]) -> None:
        """Change `name`, `description` (metadata) and `tags`."""
        changes = dict(config)
        tags = changes.pop("tags", None)
        if changes:
            await self._store.update_session_metadata(self.key, changes)
        if tags is not None:
            await _set_tags(self._store, self.key, tags)
        await self.refresh()

    async def get_provider_metadata(self) -> dict[str, Any]:
        return dict(self._session.metadata.get("provider_config") or {})

    async def archive(self) -> None:
        await self._store.archive_session(self.key)
        await self.refresh()

    async def get_metrics(self) -> SessionMetrics:
        stats = (await self.refresh())._session.statistics()
        roles = stats.messages_by_role
        mean = stats.mean_response_time
        return SessionMetrics(
            total_messages=stats.messages, user_messages=roles.get("user", 0),
            assistant_messages=roles.get("assistant", 0),
            system_messages=roles.get("system", 0),
            avg_response_time_ms=0.0 if mean is None else mean * 1000,
            total_tokens=stats.tokens_in + stats.tokens_out, tokens_in=stats.tokens_in,
            tokens_out=stats.tokens_out, session_duration=timedelta(seconds=stats.duration))
