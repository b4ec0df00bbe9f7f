"""The engine that folds the log into read models.

A projection declares a name, a version, its tables (built for a given name
suffix, so a rebuild can fill fresh copies) and a batch `apply` that runs on a
synchronous SQLAlchemy connection inside a transaction. The engine runs each
projection in one of three ways:

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
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from projections import tables
from session_store.append_sql import POSTGRES_WRITE_LOCK
from session_store.events import RecordedEvent
from session_store.records import RECORD_COLUMNS, decode_row
from session_store.schema import events

checkpoints_metadata = sa.MetaData()

checkpoints = sa.Table(
    "ss_projections",
    checkpoints_metadata,
    sa.Column("name", sa.String, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("mode", sa.String, nullable=False),
)


class Projection(Protocol):
    """A read model folded from the log."""

    name: str
    version: int

    def tables(self) -> Sequence[sa.Table]:
        """The tables this projection owns (created by the engine when missing)."""
        ...

    def for_rebuild(self, suffix: str) -> Projection:
        """The same projection writing to fresh tables named with `suffix`."""
        ...

    def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        """Fold a batch of events (in position order) into the tables."""
        ...


PREPARE_LOCK = 7415108
"""PostgreSQL advisory lock: one process at a time creates projection tables."""

CATCHUP, INLINE = "catchup", "inline"


def prepare(conn: Connection, projections: Sequence[Projection]) -> list[Projection]:
    """Create missing tables and checkpoint rows; return projections whose stored version differs.

    A projection seen for the first time on a log that already has events is
    reported too: its tables are empty and need a rebuild to catch up.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": PREPARE_LOCK})
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

    On SQLite the transaction of `EventLog.run_schema` already holds it
    (`BEGIN IMMEDIATE`); on PostgreSQL this takes the advisory lock appends take.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": POSTGRES_WRITE_LOCK})


def last_position(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.max(events.c.position))).scalar() or 0)


def read_after(conn: Connection, position: int, limit: int | None = None
               ) -> list[RecordedEvent]:
    """Events after `position`, in order, read on the caller's (sync) connection."""
    query = sa.select(*RECORD_COLUMNS).where(events.c.position > position).order_by(
        events.c.position)
    if limit is not None:
        query = query.limit(limit)
    return [decode_row(row) for row in conn.execute(query)]


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
    if for_update and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return int(conn.execute(query).scalar() or 0)


def read_mode(conn: Connection, name: str) -> str | None:
    mode = conn.execute(sa.select(checkpoints.c.mode).where(checkpoints.c.name == name)).scalar()
    return None if mode is None else str(mode)
