"""Poison events: an event a projection cannot fold is set aside for that projection, so the
read model goes on with the rest instead of failing on it forever.

When the fold of a batch fails, the batch is folded again event by event, each in a
savepoint. An event whose own fold fails is *quarantined* for that projection:
recorded in `ss_quarantine` (projection, position, type, error) in the same
transaction as the projection's output and checkpoint, and skipped. The log keeps the
event untouched; `verify` (and so `audit`) names every quarantined event and
`SessionStore.health()` lists them. A rebuild folds the whole log again and keeps
only what still fails, which is how an operator retries after a fix (an upcaster, new
code). Folding a quarantined event alone, later, would fold it out of order.

An error of the database rather than of the event (a lost connection, a lock, a
missing table: `is_systemic`) quarantines nothing: it is raised, and the follower
retries the batch after a pause.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from projections.checkpoints import checkpoints_metadata
from projections.protocol import Projection
from session_store.domain.events import PayloadUnreadable, RecordedEvent
from session_store.errors import CorruptEvent, StoreUnavailable
from session_store.logs import get_logger

log = get_logger(__name__)

quarantine = sa.Table(
    "ss_quarantine",
    checkpoints_metadata,  # created beside the checkpoints (`checkpoints.prepare`)
    sa.Column("projection", sa.String, primary_key=True),
    sa.Column("position", sa.BigInteger, primary_key=True),
    sa.Column("type", sa.String, nullable=False),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("quarantined_at", sa.Float(precision=53), nullable=False),
)
"""The events each projection could not fold and skipped."""

MAX_ERROR_CHARS = 500
"""The stored error text is cut to this length."""

_SYSTEMIC_STATES = ("08", "0A", "25", "3B", "40", "42", "53", "55", "57", "58", "XX")
"""PostgreSQL SQLSTATE classes of errors that are not the event's fault: connection, a
feature (a cached plan gone stale), transaction state, savepoint, rollback (deadlock,
serialization), syntax or access (a missing table, a permission), resources, object state
(locks), operator intervention, system, internal."""


@dataclass(frozen=True)
class Quarantined:
    """An event one projection could not fold and skipped."""

    projection: str
    position: int
    type: str
    error: str
    quarantined_at: float

    def describe(self) -> str:
        return (f"{self.projection}: the event at position {self.position} ({self.type}) "
                f"is quarantined, not folded: {self.error}")


def is_systemic(error: BaseException) -> bool:
    """True when `error` says the database (not the event) failed: folding again later
    may succeed, and no event should be set aside for it."""
    if isinstance(error, (OSError, TimeoutError, StoreUnavailable, MemoryError,
                          sa.exc.DisconnectionError)):
        return True
    if isinstance(error, sa.exc.DBAPIError) and error.connection_invalidated:
        return True
    # The driver's own error: wrapped by SQLAlchemy (`orig`, its cause), or raised as is by
    # the statements the dialects send through the driver connection.
    chain = [error, getattr(error, "orig", None)]
    chain.append(getattr(chain[-1], "__cause__", None))
    if any(type(found).__name__ == "OperationalError" for found in chain):
        return True  # SQLite: locked, busy, disk I/O, no such table
    for found in chain:
        state = getattr(found, "sqlstate", None)
        if isinstance(state, str):
            return state[:2] in _SYSTEMIC_STATES
    # asyncpg's InterfaceError (a closed connection, a busy one) unless it is about a value
    return any(type(found).__name__ == "InterfaceError" for found in chain) and not any(
        isinstance(found, ValueError) for found in chain)


def describe_error(error: BaseException) -> str:
    """The error as stored: its type and message, without the statement and parameters
    SQLAlchemy adds, nor the value asyncpg quotes (they may hold a payload, which a purge
    must be able to erase from the log alone)."""
    if isinstance(error, sa.exc.StatementError) and error.orig is not None:
        error = error.orig
    text = _QUOTED_ARGUMENT.sub(r"\1 (\2)", f"{type(error).__name__}: {error}".strip())
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS - 3] + "..."


_QUOTED_ARGUMENT = re.compile(r"(invalid input for query argument \$\d+): .* \(([^()]*)\)$",
                              re.DOTALL)


def fold_each(conn: Connection, projection: Projection, events: Sequence[RecordedEvent],
              name: str) -> list[Quarantined]:
    """Fold `events` into `projection`, setting aside each event whose fold fails.

    The batch is folded in one savepoint first; only if that fails, event by event,
    each in a savepoint of its own (what a failed one wrote is rolled back). Raises a
    systemic error (`is_systemic`) instead of quarantining on it.
    """
    if not events:
        return []
    try:
        with conn.begin_nested():
            check_readable(events)
            projection.apply(conn, events)
        return []
    except Exception as error:  # noqa: BLE001 - sorted out event by event below
        if is_systemic(error):
            raise
    found: list[Quarantined] = []
    for event in events:
        if isinstance(event.data, PayloadUnreadable):  # set aside unfolded: no data to fold
            found.append(Quarantined(projection=name, position=event.position, type=event.type,
                                     error=f"CorruptEvent: the payload does not decode: "
                                           f"{event.data.error}"[:MAX_ERROR_CHARS],
                                     quarantined_at=time.time()))
            continue
        try:
            with conn.begin_nested():
                projection.apply(conn, [event])
        except Exception as error:  # noqa: BLE001 - a poison event, unless systemic
            if is_systemic(error):
                raise
            _probe(conn, error)
            found.append(Quarantined(projection=name, position=event.position, type=event.type,
                                     error=describe_error(error), quarantined_at=time.time()))
    return found


def check_readable(events: Sequence[RecordedEvent]) -> None:
    """Raise `CorruptEvent` when a payload did not decode (a tolerant read gave
    `PayloadUnreadable`): the batch is then folded event by event and that one set aside."""
    for event in events:
        if isinstance(event.data, PayloadUnreadable):
            raise CorruptEvent(f"the event at position {event.position} does not decode",
                               position=event.position)


def _probe(conn: Connection, error: Exception) -> None:
    """Raise `error` when the connection itself no longer answers (then it is not the
    event's fault)."""
    try:
        with conn.begin_nested():
            conn.execute(sa.text("SELECT 1"))
    except Exception:  # noqa: BLE001 - the fold's error is the one to report
        raise error from None


def record(conn: Connection, found: Sequence[Quarantined]) -> None:
    """Store quarantined events (in the caller's transaction) and log a warning for each."""
    for item in found:
        conn.execute(quarantine.delete().where(quarantine.c.projection == item.projection,
                                               quarantine.c.position == item.position))
        conn.execute(quarantine.insert().values(
            projection=item.projection, position=item.position, type=item.type,
            error=item.error, quarantined_at=item.quarantined_at))
        log.warning("projections.quarantined", projection=item.projection,
                    position=item.position, type=item.type, error=item.error,
                    hint="the read model goes on without this event; fix the cause, then "
                         "rebuild the projection (`session-store rebuild`) to fold it")


def replace(conn: Connection, name: str, found: Iterable[Quarantined]) -> None:
    """A rebuild's verdict on projection `name`: what it set aside replaces what was."""
    conn.execute(quarantine.delete().where(quarantine.c.projection == name))
    record(conn, [item for item in found if item.projection == name])


def read(conn: Connection, names: Sequence[str] | None = None) -> list[Quarantined]:
    """The quarantined events (of `names`, else of every projection), by projection and
    position."""
    query = sa.select(quarantine.c.projection, quarantine.c.position, quarantine.c.type,
                      quarantine.c.error, quarantine.c.quarantined_at)
    if names is not None:
        query = query.where(quarantine.c.projection.in_(list(names)))
    rows = conn.execute(query.order_by(quarantine.c.projection, quarantine.c.position))
    return [Quarantined(projection=row[0], position=int(row[1]), type=row[2], error=row[3],
                        quarantined_at=float(row[4])) for row in rows]
