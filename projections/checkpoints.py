"""Where each projection stands: its checkpoint, version and mode, and the reads around it.

The runtime runs each projection (`projections.protocol`) in one of three ways:

- inline: `apply` runs inside the append transaction (strongly consistent);
- catch-up: a follower reads the log from the projection's checkpoint and writes
  output and checkpoint in one transaction (see `projections.catchup`);
- rebuild: replay from position 0 into fresh tables, swapped in atomically when
  caught up (see `projections.rebuild`).

Checkpoints and versions live in `ss_projections`. A checkpoint is the
position of the last event folded into a catch-up projection; inline ones are
current by construction and their stored position is only refreshed when they
switch mode or are rebuilt. All processes of one store must run a projection
in the same mode.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from projections import tables
from projections.protocol import Projection
from session_store.domain.events import RecordedEvent
from session_store.storage.codec import decode_row
from session_store.storage.database import dialect_of
from session_store.storage.schema import RECORD_COLUMNS, events

checkpoints_metadata = sa.MetaData()

checkpoints = sa.Table(
    "ss_projections",
    checkpoints_metadata,
    sa.Column("name", sa.String, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("mode", sa.String, nullable=False),
)


CATCHUP, INLINE = "catchup", "inline"


def prepare(conn: Connection, projections: Sequence[Projection]) -> list[Projection]:
    """Create missing tables and checkpoint rows; return projections whose stored version differs.

    A projection seen for the first time on a log that already has events is
    reported too: its tables are empty and need a rebuild to catch up.
    """
    dialect_of(conn).lock(conn, "projections")  # one process at a time creates tables
    checkpoints_metadata.create_all(conn)
    stale: list[Projection] = []
    has_events = conn.execute(sa.text("SELECT 1 FROM ss_events LIMIT 1")).first() is not None
    for projection in projections:
        created = tables.create(conn, projection)
        stored = conn.execute(
            sa.select(checkpoints.c.version).where(checkpoints.c.name == projection.name)
        ).scalar()
        if stored is None:
            conn.execute(checkpoints.insert().values(
                name=projection.name, version=projection.version, position=0, mode=INLINE))
            if has_events:
                stale.append(projection)
        elif stored != projection.version or (created and has_events):
            stale.append(projection)
    return stale


def lock_writes(conn: Connection) -> None:
    """Hold the log's write lock for the rest of the caller's transaction.

    (On SQLite every write transaction holds it from its start.)
    """
    dialect_of(conn).lock(conn, "writes")


def last_position(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.max(events.c.position))).scalar() or 0)


def read_after(conn: Connection, position: int, limit: int | None = None
               ) -> list[RecordedEvent]:
    """Events after `position`, in order, read on the caller's (sync) connection."""
    query = sa.select(*RECORD_COLUMNS).where(events.c.position > position).order_by(
        events.c.position)
    if limit is not None:
        query = query.limit(limit)
    return [decode_row(row, tolerant=True) for row in conn.execute(query)]


def record_checkpoint(conn: Connection, name: str, position: int, *, version: int | None = None,
                      mode: str | None = None) -> None:
    """Store a projection's checkpoint: the position of the last event folded into it."""
    values: dict[str, object] = {"position": position}
    if version is not None:
        values["version"] = version
    if mode is not None:
        values["mode"] = mode
    conn.execute(checkpoints.update().where(checkpoints.c.name == name).values(**values))


def ensure_checkpoint(conn: Connection, name: str, version: int, mode: str) -> None:
    checkpoints_metadata.create_all(conn)
    found = conn.execute(sa.select(checkpoints.c.name).where(checkpoints.c.name == name)).first()
    if found is None:
        conn.execute(checkpoints.insert().values(name=name, version=version, position=0,
                                                 mode=mode))


def read_checkpoint(conn: Connection, name: str, *, for_update: bool = False) -> int:
    """The checkpoint; `for_update` locks its row (PostgreSQL) until the transaction ends."""
    query = sa.select(checkpoints.c.position).where(checkpoints.c.name == name)
    if for_update:
        query = query.with_for_update()  # SQLite has no FOR UPDATE: its writes are serial
    return int(conn.execute(query).scalar() or 0)


def read_mode(conn: Connection, name: str) -> str | None:
    mode = conn.execute(sa.select(checkpoints.c.mode).where(checkpoints.c.name == name)).scalar()
    return None if mode is None else str(mode)
