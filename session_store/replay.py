"""Time travel and replay: a session folded from the log alone, no read model involved."""

from __future__ import annotations

from typing import Any

from session_store import reads
from session_store.domain.events import (
    HistoryCompacted,
    InteractionTracked,
    MessageAppended,
    RecordedEvent,
    SessionKey,
)
from session_store.domain.lifecycle import Head, fold, visible_history
from session_store.domain.scopes import SHARED_SCOPES, scope_stream
from session_store.domain.snapshot import SESSION, WINDOW, Session, snapshot
from session_store.log.eventlog import EventLog


async def replay_session(log: EventLog, key: SessionKey, *, to_version: int | None = None,
                         recent: int | None = None, since: float | None = None
                         ) -> Session | None:
    """The session as of `to_version` (default: now), folded from the log alone.

    `None` when it never existed, was deleted (hidden at every version), or has
    not reached `to_version`. Shared `app:`/`user:` state is folded from the scope
    streams up to the global position of the session's event `to_version`: the
    session exactly as it was then, status included (its expiry is judged at the time
    event `to_version` was recorded). `since` keeps messages whose own time is at or after
    it; `since` or `recent` make the snapshot a window.
    """
    if await reads.tombstoned(log.db, key):
        return None  # a deleted session is hidden at every version, not only the last
    head: Head | None = None
    messages: list[RecordedEvent] = []
    last_position = 0
    last_time = 0.0
    tracked: list[float] = []
    async for record in log.read_stream(key, to_version=to_version):
        head = fold(head, record)
        last_position, last_time = record.position, record.recorded_at
        if isinstance(record.data, InteractionTracked) and record.data.response_time > 0:
            tracked.append(record.data.response_time)
        elif isinstance(record.data, (MessageAppended, HistoryCompacted)):
            messages.append(record)  # a rewind may show again what a clear hid: keep all
    if head is None or head.deleted or (to_version is not None and head.version < to_version):
        return None  # never existed, deleted, or not yet at that version
    visible = visible_history(head, messages)
    if since is not None:
        visible = [m for m in visible if _message_time(m) >= since]
    if recent is not None:
        visible = visible[-recent:] if recent else []
    scoped: dict[str, Any] = {}
    until = last_position if to_version is not None else None
    for scope in SHARED_SCOPES:
        scope_head: Head | None = None
        async for record in log.read_stream(scope_stream(key, scope)):
            if until is not None and record.position > until:
                break
            scope_head = fold(scope_head, record)
        if scope_head is not None:
            scoped.update(scope_head.state)
    whole = recent is None and since is None
    return snapshot(head, scoped, visible, now=last_time if to_version is not None else None,
                    covers=SESSION if whole else WINDOW, tracked_times=tracked if whole else ())


def _message_time(record: RecordedEvent) -> float:
    """The own time of a visible message, or of the summary that stands for older ones."""
    data = record.data
    if isinstance(data, HistoryCompacted):
        return data.summary.timestamp
    assert isinstance(data, MessageAppended)
    return data.message.timestamp
