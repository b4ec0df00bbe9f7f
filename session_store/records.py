"""Rows of the log table to `RecordedEvent`s and back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from session_store.events import PAYLOAD_TYPES, AnyPayload, RecordedEvent, decode_payload
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


_many = msgspec.json.Decoder(list[AnyPayload])


def decode_rows(rows: Sequence[Any]) -> list[RecordedEvent]:
    """Many log rows at once: the payloads in one decoder call when all are current.

    Rows with an erased payload, an older schema or an unknown type take the row-by-row
    path (`decode_row`), which upcasts or raises `SchemaError`.
    """
    try:
        if any(not row[7] or getattr(PAYLOAD_TYPES.get(row[5]), "schema", None) != row[6]
               for row in rows):
            raise ValueError("not all current")
        payloads = _many.decode(b"[" + b",".join(row[7] for row in rows) + b"]")
        if any(type(p).__name__ != row[5] for p, row in zip(payloads, rows, strict=True)):
            raise ValueError("tag and type column disagree")
    except (ValueError, TypeError):  # msgspec.DecodeError is a ValueError
        return [decode_row(row) for row in rows]
    return [
        RecordedEvent(position=row[0], app_name=row[1], user_id=row[2], session_id=row[3],
                      version=row[4], type=row[5], data=payload, event_id=row[8],
                      recorded_at=row[9], hash=row[10])
        for row, payload in zip(rows, payloads, strict=True)
    ]
