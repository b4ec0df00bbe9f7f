"""Rows of the log table to `RecordedEvent`s and back."""

from __future__ import annotations

from typing import Any

from session_store.events import RecordedEvent, decode_payload
from session_store.schema import events

RECORD_COLUMNS = (
    events.c.position,
    events.c.app_name,
    events.c.user_id,
    events.c.session_id,
    events.c.version,
    events.c.type,
    events.c.schema,
    events.c.data,
    events.c.event_id,
    events.c.recorded_at,
    events.c.hash,
)
"""The columns every read selects, in the order `decode_row` expects."""


def decode_row(row: Any) -> RecordedEvent:
    """One log row (in `RECORD_COLUMNS` order) as a decoded `RecordedEvent`."""
    position, app, user, session, version, type_name, schema, data, event_id, at, digest = row
    return RecordedEvent(
        position=position,
        app_name=app,
        user_id=user,
        session_id=session,
        version=version,
        type=type_name,
        data=decode_payload(type_name, schema, bytes(data)),
        event_id=event_id,
        recorded_at=at,
        hash=digest,
    )
