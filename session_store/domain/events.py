"""The vocabulary: what can happen to a session, and the envelope it is recorded in.

Payloads are frozen `msgspec.Struct`s in one tagged union (the tag is the
class name, stored in the log's `type` column). Each payload type has a schema
version; an event stored under an older schema is upgraded on read by the
upcasters registered for its type (`session_store.storage.codec`), so the log
never has to be rewritten.

The payloads, messages and the envelope are not tracked by Python's cyclic
garbage collector (`gc=False`): a read decodes thousands of them at once, and
tracking them made the collector run over and over, which doubled the cost of
decoding. They are frozen and a decoded one cannot refer to itself; only a
caller who puts an event inside its own state or parts would make a cycle, and
that memory would never be freed.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar, NamedTuple

import msgspec

from session_store.domain.ids import new_id


class SessionKey(NamedTuple):
    """Identity of a session: every read and write is scoped by all three."""

    app_name: str
    user_id: str
    session_id: str


class Usage(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """Token usage of one model call."""

    tokens_in: int = 0
    tokens_out: int = 0
    model: str | None = None
    provider: str | None = None
    """Who served the model (openai, anthropic, ...); analytics groups usage by it."""


class Event(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """One message of a conversation, as a runner appends it.

    `role` is who speaks in model terms (user, assistant, tool, system);
    `author` is the agent or user name (defaults to the role). `native` carries
    the runner's own representation where it must round-trip losslessly
    (e.g. a Google ADK event as JSON).
    """

    role: str
    text: str | None = None
    parts: list[Any] | None = None
    author: str = ""
    invocation_id: str | None = None
    state_delta: dict[str, Any] | None = None
    usage: Usage | None = None
    response_time: float | None = None
    native: Any = None
    id: str = msgspec.field(default_factory=new_id)
    timestamp: float = msgspec.field(default_factory=time.time)
    metadata: dict[str, Any] = {}
    """The caller's own facts about this message (JSON values): kept in the log, exported,
    returned on reads, filterable in history (`history.messages(metadata={...})`). A message
    stored before the field existed decodes with `{}`."""

    @property
    def speaker(self) -> str:
        return self.author or self.role


class Payload(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, tag=True, gc=False):
    """Base of every recorded payload; `schema` is the payload's shape version."""

    schema: ClassVar[int] = 1


class SessionCreated(Payload, frozen=True):
    state: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    tags: list[str] = []
    timeout: float | None = None


class MessageAppended(Payload, frozen=True):
    message: Event


class MessageRetracted(Payload, frozen=True):
    """A message taken back (OpenAI Agents' `pop_item`); history no longer shows it."""

    message_id: str


class StateChanged(Payload, frozen=True):
    delta: dict[str, Any]
    session_id: str | None = None
    """On a scope stream: the session whose command wrote this, so that purging the session
    erases it too. None on a session's own stream, and on scope events written before
    the link existed."""
    user_id: str | None = None
    """On the app stream: the user of that session (a user stream names its user)."""


class MetadataChanged(Payload, frozen=True):
    patch: dict[str, Any]
    merge: bool = True


class InteractionTracked(Payload, frozen=True):
    tokens_in: int = 0
    tokens_out: int = 0
    response_time: float = 0.0
    model: str | None = None
    provider: str | None = None
    turn: str | None = None
    """The id of a message that already counted this interaction (it carried usage or a
    response time): the tracked tokens and time complete that turn, no interaction is
    added. None: an interaction of its own."""


class SessionArchived(Payload, frozen=True):
    reason: str | None = None


class SessionReactivated(Payload, frozen=True):
    pass


class SessionEnded(Payload, frozen=True):
    reason: str | None = None


class SessionExpired(Payload, frozen=True):
    idle_seconds: float = 0.0


class HistoryCleared(Payload, frozen=True):
    pass


class SessionDeleted(Payload, frozen=True):
    """Tombstone: the session is hidden everywhere and its id is never reused."""


class SessionPurged(Payload, frozen=True):
    """The payloads of this stream were erased; the fact that they existed is kept."""

    reason: str | None = None


class ScopePurged(Payload, frozen=True):
    """On a scope stream: the payloads of the events `event_ids` (of this stream) were
    erased, written by session `session_id` (by any session of `user_id` when a whole user
    was purged); the fact that they existed is kept."""

    event_ids: list[str] = []
    session_id: str | None = None
    user_id: str | None = None
    reason: str | None = None


class RetentionSet(Payload, frozen=True):
    """On an app's scope stream: the app's retention policy from now on (durations in
    seconds; None: that rule is off). `session_store.retention` enforces it."""

    archive_after: float | None = None
    delete_after: float | None = None
    purge_after: float | None = None
    max_messages: int | None = None


class HistoryTrimmed(Payload, frozen=True):
    """Retention's `max_messages`: the messages at versions up to `through_version` leave
    the visible history (the log keeps them); `kept` visible messages remained."""

    through_version: int
    kept: int = 0


class TypedValue(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """A value as a framework's serializer typed it: its type tag and its bytes (stored as
    base64 in the log's JSON, read back as the same bytes). This and the other parts of the
    checkpoint events are JSON arrays, not objects: a long thread holds many of them."""

    type: str
    value: bytes


class ChannelValue(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """A graph channel's value at one version (`CheckpointSaved.values`)."""

    channel: str
    version: str
    value: TypedValue


class CheckpointSaved(Payload, frozen=True, kw_only=True):
    """A LangGraph checkpoint of this thread (`session_store.adapters.langgraph`).

    `checkpoint` is the checkpoint without its channel values; `values` holds only the
    channels whose version changed since the parent (the others are read from earlier
    events of the stream), so a long thread does not grow quadratically."""

    ns: str = ""
    checkpoint_id: str
    parent_id: str | None = None
    checkpoint: TypedValue
    metadata: TypedValue
    values: list[ChannelValue] = []
    run_id: str | None = None


class PendingWrite(msgspec.Struct, frozen=True, array_like=True, gc=False):
    idx: int
    channel: str
    value: TypedValue


class PendingWritesSaved(Payload, frozen=True, kw_only=True):
    """One batch of a task's pending writes against checkpoint `checkpoint_id`."""

    ns: str = ""
    checkpoint_id: str
    task_id: str
    task_path: str = ""
    writes: list[PendingWrite] = []


class CheckpointRef(msgspec.Struct, frozen=True, array_like=True, gc=False):
    checkpoint_id: str
    ns: str = ""


class CheckpointsRemoved(Payload, frozen=True):
    """Checkpoints (and their pending writes) no longer visible: a prune or a run deleted."""

    checkpoints: list[CheckpointRef] = []
    reason: str | None = None


class TagsChanged(Payload, frozen=True):
    """The session's tags from now on (`store.set_tags`)."""

    tags: list[str] = []
class SessionForked(Payload, frozen=True):
    """On a fork, after its `SessionCreated` and the copies of the source's visible messages:
    this session starts from session `(source_app_name, source_user_id, source_session_id)`
    as it was at version `at_version`, whose session-scoped `state` it takes."""

    source_app_name: str
    source_user_id: str
    source_session_id: str
    at_version: int
    state: dict[str, Any] = {}


class ForkCreated(Payload, frozen=True):
    """On the source of a fork: session `(app_name, user_id, session_id)` was forked from
    this one at version `at_version` (the link back from the source)."""

    app_name: str
    user_id: str
    session_id: str
    at_version: int


class HistoryRewound(Payload, frozen=True):
    """The session went back to version `to_version`: the messages after it leave the visible
    history (the log keeps them), and the session-scoped state is `state` again.

    It carries the visible history as it was at `to_version` (the version it started
    after, retracted message ids, hidden version ranges, the summary's version), so the
    fold stays pure."""

    to_version: int
    state: dict[str, Any] = {}
    history_from: int = 0
    retracted: list[str] = []
    hidden: list[tuple[int, int]] = []
    summary_version: int = 0


class HistoryCompacted(Payload, frozen=True):
    """`summary` stands for the visible messages up to version `through_version`: reads show
    it first, then the messages after it; the log (and `replay`) keep every message."""

    summary: Event
    through_version: int


class PayloadErased(Payload, frozen=True):
    """What a purged event's payload reads as: only its original type survives."""

    original_type: str


class PayloadUnreadable(Payload, frozen=True):
    """What the read models' passes see of a stored payload that does not decode (the
    log changed behind the store's back): they set the event aside (quarantine) instead
    of stopping on it. Never stored; user-facing reads raise `CorruptEvent` instead."""

    original_type: str
    error: str


AnyPayload = (
    SessionCreated
    | MessageAppended
    | MessageRetracted
    | StateChanged
    | MetadataChanged
    | InteractionTracked
    | SessionArchived
    | SessionReactivated
    | SessionEnded
    | SessionExpired
    | HistoryCleared
    | SessionDeleted
    | SessionPurged
    | ScopePurged
    | CheckpointSaved
    | PendingWritesSaved
    | CheckpointsRemoved
    | PayloadErased
    | TagsChanged
    | RetentionSet
    | HistoryTrimmed
    | SessionForked
    | ForkCreated
    | HistoryRewound
    | HistoryCompacted
)

PAYLOAD_TYPES: dict[str, type[Payload]] = {
    cls.__name__: cls
    for cls in (
        SessionCreated,
        MessageAppended,
        MessageRetracted,
        StateChanged,
        MetadataChanged,
        InteractionTracked,
        SessionArchived,
        SessionReactivated,
        SessionEnded,
        SessionExpired,
        HistoryCleared,
        SessionDeleted,
        SessionPurged,
        ScopePurged,
        CheckpointSaved,
        PendingWritesSaved,
        CheckpointsRemoved,
        PayloadErased,
        TagsChanged,
        RetentionSet,
        HistoryTrimmed,
        SessionForked,
        ForkCreated,
        HistoryRewound,
        HistoryCompacted,
    )
}


class RecordedEvent(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """An event as the log holds it: payload plus envelope.

    `position` is global and strictly increasing in commit order (gaps are
    allowed); `version` counts 1..n within the session without gaps; `hash`
    chains each event to the previous one of its session.
    """

    position: int
    app_name: str
    user_id: str
    session_id: str
    version: int
    type: str
    data: AnyPayload
    event_id: str
    recorded_at: float
    hash: str

    @property
    def key(self) -> SessionKey:
        return SessionKey(self.app_name, self.user_id, self.session_id)


def type_name(payload: Payload) -> str:
    return type(payload).__name__
