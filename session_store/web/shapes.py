"""The JSON forms the API answers with, built from the store's own answers.

Summaries are the CLI's (`render.session_summary`, `Session.to_dict` without events);
a timeline entry is the CLI's timeline row (`render.timeline_rows`: who, what, state
change, tokens, latency, lifecycle events named) plus what a page shows whole: the
message text and its tool calls and results as data, the author, the log position and
the event's hash.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from projections.analytics import Stats
from session_store.audit import Report
from session_store.cli import render
from session_store.domain.events import MessageAppended, RecordedEvent
from session_store.domain.snapshot import Session

LIFECYCLE = frozenset({"SessionCreated", "SessionArchived", "SessionReactivated",
                       "SessionEnded", "SessionExpired", "SessionDeleted", "SessionPurged",
                       "HistoryCleared", "MessageRetracted"})
"""Event types the timeline marks as lifecycle events."""


def summary(session: Session) -> dict[str, Any]:
    return render.session_summary(session)


def timeline(records: Sequence[RecordedEvent]) -> list[dict[str, Any]]:
    """One entry per event, oldest first."""
    rows = render.timeline_rows(records)
    for row, record in zip(rows, records, strict=True):
        row.update(position=record.position, hash=record.hash, event_id=record.event_id,
                   kind=_kind(record))
        if isinstance(record.data, MessageAppended):
            message = record.data.message
            row.update(author=message.author, text=message.text or "",
                       calls=[part["function_call"] for part in message.parts or ()
                              if isinstance(part, Mapping) and "function_call" in part],
                       results=[part["function_response"] for part in message.parts or ()
                                if isinstance(part, Mapping) and "function_response" in part],
                       message_id=message.id)
    return rows


def _kind(record: RecordedEvent) -> str:
    if isinstance(record.data, MessageAppended):
        return "message"
    if record.type in LIFECYCLE:
        return "lifecycle"
    return "change"


def event(record: RecordedEvent) -> dict[str, Any]:
    """A committed event as the live stream sends it: where it belongs and its entry."""
    return {"position": record.position, "app_name": record.app_name,
            "user_id": record.user_id, "session_id": record.session_id,
            "version": record.version, "type": record.type,
            "recorded_at": record.recorded_at, "entry": timeline([record])[0]}


def stats(row: Stats | None) -> dict[str, Any] | None:
    return None if row is None else msgspec.to_builtins(row)


def report(found: Report, seconds: float) -> dict[str, Any]:
    return {"ok": found.ok, "events": found.events, "streams": found.streams,
            "problems": list(found.problems), "seconds": seconds,
            "digest": None if found.digest is None else str(found.digest),
            "checked_at": time.time()}
