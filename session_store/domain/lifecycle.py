"""The session's lifecycle: what each event does to a session, and what it may not do.

The fold (`fold`, `advance`) is the single place that knows this. It serves the
inline heads read model (`projections.heads`), full rebuilds, `replay` and time
travel (`at_version`). Run inline, it is also where the session's invariants are
enforced inside the append transaction: no events before `SessionCreated`, no
second `SessionCreated`, nothing after `SessionEnded` or `SessionDeleted` but a
delete or purge. The status machine (`next_status`) is shared with the user
index, which counts sessions by status.

A head folds the state keys of its own stream (`session_store.domain.scopes`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from session_store.domain.events import (
    ForkCreated,
    HistoryCleared,
    HistoryCompacted,
    HistoryRewound,
    HistoryTrimmed,
    InteractionTracked,
    MessageAppended,
    MessageRetracted,
    MetadataChanged,
    PayloadErased,
    RecordedEvent,
    SessionCreated,
    SessionDeleted,
    SessionForked,
    SessionKey,
    SessionPurged,
    StateChanged,
    TagsChanged,
)
from session_store.domain.scopes import update_stream_state
from session_store.errors import SessionAlreadyExists, SessionClosed, SessionNotFound

ACTIVE, ARCHIVED, ENDED, EXPIRED = "active", "archived", "ended", "expired"
STATUSES = (ACTIVE, ARCHIVED, ENDED, EXPIRED)
"""What `Session.status` can be."""
DELETED = "deleted"
"""Not a status a session shows (a deleted session is hidden), but one the user index counts."""

STATUS_AFTER = {"SessionArchived": ARCHIVED, "SessionReactivated": ACTIVE,
                "SessionEnded": ENDED, "SessionExpired": EXPIRED}
"""Event types that set the status."""
WAKES = frozenset({"MessageAppended", "StateChanged", "InteractionTracked", "MetadataChanged",
                   "MessageRetracted", "HistoryCleared", "CheckpointSaved",
                   "PendingWritesSaved", "CheckpointsRemoved", "TagsChanged",
                   "HistoryRewound", "HistoryCompacted"})
"""Activity: it moves `last_update_time` and brings an expired session back."""


def next_status(status: str, type_name: str) -> str:
    """The status after an event of `type_name` (a deleted session stays deleted)."""
    if status == DELETED:
        return status
    after = STATUS_AFTER.get(type_name)
    if after is not None:
        return after
    return ACTIVE if status == EXPIRED and type_name in WAKES else status


class ForkLink(msgspec.Struct, frozen=True, array_like=True):
    """One end of a fork: the session on the other side and the source's version it
    started from."""

    app_name: str
    user_id: str
    session_id: str
    version: int

    @property
    def key(self) -> SessionKey:
        return SessionKey(self.app_name, self.user_id, self.session_id)


class Head(msgspec.Struct, kw_only=True):
    """A session (or a scope stream) as folded so far."""

    app_name: str
    user_id: str
    session_id: str
    version: int = 0
    status: str = ACTIVE
    state: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    tags: list[str] = []
    timeout: float | None = None
    created_at: float = 0.0
    last_update_time: float = 0.0
    deleted: bool = False
    purged: bool = False
    history_from: int = 0
    """Messages at versions after this one are the visible history (HistoryCleared moves it)."""
    retracted: list[str] = []
    message_count: int = 0
    tracked_interactions: int = 0
    tracked_tokens_in: int = 0
    tracked_tokens_out: int = 0
    tracked_response_time: float = 0.0
    tracked_timed: int = 0
    """Tracked interactions that carried a response time (> 0): the mean's denominator."""
    last_message_at: float | None = None
    """The newest message's own timestamp (as its runner stamped it)."""
    hidden: list[tuple[int, int]] = []
    """Version ranges `(after, through)` a rewind took out of the visible history."""
    summary_version: int = 0
    """The version of the `HistoryCompacted` whose summary opens the visible history (0: none)."""
    forked_from: ForkLink | None = None
    forks: list[ForkLink] = []

    @property
    def key(self) -> SessionKey:
        return SessionKey(self.app_name, self.user_id, self.session_id)

    @property
    def expires_at(self) -> float | None:
        return None if self.timeout is None else self.last_update_time + self.timeout


def fold(head: Head | None, event: RecordedEvent) -> Head:
    """Apply one event to a head, returning the new head (the input is not changed)."""
    return advance(None if head is None else copy_head(head), event)


def copy_head(head: Head) -> Head:
    """A copy of `head` that shares nothing `advance` changes in place."""
    return msgspec.structs.replace(head, state=dict(head.state), metadata=dict(head.metadata),
                                   tags=list(head.tags), retracted=list(head.retracted),
                                   hidden=list(head.hidden), forks=list(head.forks))


def advance(head: Head | None, event: RecordedEvent) -> Head:
    """Apply one event to a head the caller owns, changing it in place; returns the head.

    The result is a new head for the first event of a stream and for a purge. Cheaper than
    `fold` (no copy per event): the inline model and rebuilds use it on heads they decoded
    or created themselves; replay and time travel use `fold`.
    """
    data = event.data
    cls = type(data)
    if head is None:
        head = _first(event)
    elif head.deleted or head.status == ENDED or cls is SessionCreated:
        _check_open(head, event)
    head.version = event.version
    if cls is MessageAppended:  # the common case first
        head.last_update_time = event.recorded_at
        if head.status == EXPIRED:
            head.status = ACTIVE
        head.message_count += 1
        head.last_message_at = float(data.message.timestamp)  # type: ignore[union-attr]
        delta = data.message.state_delta  # type: ignore[union-attr]
        if delta:
            _update_state(head, delta)
        return head
    if cls is SessionCreated:
        return head
    name = cls.__name__  # PayloadErased for an erased event: it changes nothing
    if name in WAKES or name == "SessionReactivated":
        head.last_update_time = event.recorded_at
    head.status = next_status(head.status, name)
    if cls is StateChanged:
        _update_state(head, data.delta)  # type: ignore[union-attr]
    elif isinstance(data, InteractionTracked):
        head.tracked_interactions += 1 if data.turn is None else 0
        head.tracked_tokens_in += data.tokens_in
        head.tracked_tokens_out += data.tokens_out
        head.tracked_response_time += data.response_time
        if data.response_time > 0:
            head.tracked_timed += 1
    elif isinstance(data, MetadataChanged):
        if data.merge:
            head.metadata.update(data.patch)
        else:
            head.metadata = dict(data.patch)
    elif isinstance(data, MessageRetracted):
        head.retracted.append(data.message_id)
    elif isinstance(data, TagsChanged):
        head.tags = list(data.tags)
    elif isinstance(data, HistoryCleared):
        head.history_from = event.version
        head.retracted, head.hidden, head.summary_version = [], [], 0
    elif isinstance(data, HistoryTrimmed):
        head.history_from = max(head.history_from, data.through_version)
    elif isinstance(data, (HistoryRewound, HistoryCompacted, SessionForked, ForkCreated)):
        _branch(head, event.version, data)
    elif isinstance(data, SessionDeleted):
        head.deleted = True
    elif isinstance(data, SessionPurged):
        # A purge is a delete that also erases. Keep only what the erased log still
        # says (the envelope), so folding it again (rebuild, verify) gives this head.
        return Head(app_name=head.app_name, user_id=head.user_id, session_id=head.session_id,
                    version=event.version, created_at=head.created_at,
                    last_update_time=head.created_at, deleted=True, purged=True)
    return head


def _branch(head: Head, version: int,
            data: HistoryRewound | HistoryCompacted | SessionForked | ForkCreated) -> None:
    """What a rewind, a compaction or either end of a fork does to a head."""
    if isinstance(data, HistoryRewound):
        head.state = _session_state(data.state)
        head.history_from, head.summary_version = data.history_from, data.summary_version
        head.retracted = list(data.retracted)
        head.hidden = [(after, through) for after, through in data.hidden]
        if data.to_version < version - 1:
            head.hidden.append((data.to_version, version - 1))
    elif isinstance(data, HistoryCompacted):
        head.history_from = max(head.history_from, data.through_version)
        head.summary_version = version
    elif isinstance(data, SessionForked):
        head.state = _session_state(data.state)
        head.forked_from = ForkLink(data.source_app_name, data.source_user_id,
                                    data.source_session_id, data.at_version)
    else:
        head.forks.append(ForkLink(data.app_name, data.user_id, data.session_id,
                                   data.at_version))


def shows(head: Head, version: int) -> bool:
    """Whether a message at `version` of this session is in its visible history (by
    version alone: a retracted message is hidden by id, `head.retracted`)."""
    return version > head.history_from and not any(
        after < version <= through for after, through in head.hidden)


def visible_history(head: Head, records: Iterable[RecordedEvent]) -> list[RecordedEvent]:
    """Of a session's `MessageAppended` and `HistoryCompacted` records (oldest first, up to
    the head's version), the visible history: the summary first, then the messages shown."""
    hidden = set(head.retracted)
    found: list[RecordedEvent] = []
    summary: list[RecordedEvent] = []
    for record in records:
        data = record.data
        if record.version == head.summary_version and isinstance(data, HistoryCompacted):
            summary.append(record)
        elif (isinstance(data, MessageAppended) and data.message.id not in hidden
              and shows(head, record.version)):
            found.append(record)
    return summary + found


def _update_state(head: Head, delta: dict[str, Any]) -> None:
    update_stream_state(head.key, head.state, delta)


def _first(event: RecordedEvent) -> Head:
    data = event.data
    key = event.key
    if not key.session_id:
        return Head(app_name=key.app_name, user_id=key.user_id, session_id="",
                    created_at=event.recorded_at, last_update_time=event.recorded_at)
    if isinstance(data, SessionCreated):
        return Head(app_name=key.app_name, user_id=key.user_id, session_id=key.session_id,
                    state=_session_state(data.state), metadata=dict(data.metadata),
                    tags=list(data.tags), timeout=data.timeout, created_at=event.recorded_at,
                    last_update_time=event.recorded_at)
    if isinstance(data, PayloadErased):  # a purged stream still folds to a (purged) head
        return Head(app_name=key.app_name, user_id=key.user_id, session_id=key.session_id,
                    created_at=event.recorded_at, last_update_time=event.recorded_at)
    raise SessionNotFound(f"session {key.session_id!r} of user {key.user_id!r} in app "
                          f"{key.app_name!r} does not exist")


def _check_open(head: Head, event: RecordedEvent) -> None:
    data = event.data
    if isinstance(data, SessionCreated):
        raise SessionAlreadyExists(
            f"session {head.session_id!r} of user {head.user_id!r} in app {head.app_name!r} "
            "already exists (ids of deleted sessions are never reused)")
    if isinstance(data, (SessionPurged, PayloadErased)):
        return
    if head.deleted:
        raise SessionClosed(f"session {head.session_id!r} was deleted")
    if head.status == ENDED and not isinstance(data, (SessionDeleted, ForkCreated)):
        raise SessionClosed(f"session {head.session_id!r} has ended and accepts no more events")


def _session_state(state: dict[str, Any]) -> dict[str, Any]:
    own: dict[str, Any] = {}
    update_stream_state(SessionKey("", "", "session"), own, state)
    return own


def fold_all(events: Iterable[RecordedEvent], head: Head | None = None) -> Head | None:
    """`head` (not changed) with every event folded in."""
    owned = None if head is None else copy_head(head)
    for event in events:
        owned = advance(owned, event)
    return owned
