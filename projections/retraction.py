"""What a retracted message no longer counts for: its session's analytics rows for its
day (the tally and the usage per model and provider), folded again from the log (up to
the retraction) without the messages retracted by then.

The log is read on the projection's own connection, inside its transaction, so a
rebuild, the catch-up follower and an inline fold all see the same events and agree.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from projections import model_usage
from projections.tally import Tally, day_of
from session_store.domain.events import MessageAppended, MessageRetracted, RecordedEvent
from session_store.storage import schema
from session_store.storage.codec import decode_rows

Models = dict[model_usage.Key, list[int]]
Count = Callable[[Tally, Models, RecordedEvent], None]


def refolded_day(conn: Connection, retracted: RecordedEvent, count: Count
                 ) -> tuple[str, Tally, Models] | None:
    """The UTC day of the message `retracted` names, and its session's tally and usage
    per model for that day without it (and without every message retracted before); None
    when the session's log up to the retraction holds no such visible message."""
    data = retracted.data
    if not isinstance(data, MessageRetracted):
        return None  # erased by a purge, which forgets the session's rows anyway
    e = schema.events
    rows = conn.execute(
        sa.select(*schema.RECORD_COLUMNS)
        .where(e.c.app_name == retracted.app_name, e.c.user_id == retracted.user_id,
               e.c.session_id == retracted.session_id, e.c.version < retracted.version,
               e.c.type.in_(("MessageAppended", "MessageRetracted", "InteractionTracked")))
        .order_by(e.c.version)).all()
    events = decode_rows(rows, tolerant=True)
    gone = {r.data.message_id for r in events if isinstance(r.data, MessageRetracted)}
    if data.message_id in gone:
        return None  # retracted twice (a log written before the check): once is enough
    target = next((r for r in events if isinstance(r.data, MessageAppended)
                   and r.data.message.id == data.message_id), None)
    if target is None:
        return None
    gone.add(data.message_id)
    day = day_of(target.recorded_at)
    tally, models = Tally(), Models()
    for record in events:
        if day_of(record.recorded_at) != day:
            continue
        if isinstance(record.data, MessageAppended) and record.data.message.id in gone:
            continue
        count(tally, models, record)
    return day, tally, models
