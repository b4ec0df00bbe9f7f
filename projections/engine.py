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

Checkpoints and versions live in `ss_projections`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from session_store.events import RecordedEvent

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


def prepare(conn: Connection, projections: Sequence[Projection]) -> list[Projection]:
    """Create missing tables and checkpoint rows; return projections whose stored version differs.

    A projection seen for the first time on a log that already has events is
    reported too: its tables are empty and need a rebuild to catch up.
    """
    checkpoints_metadata.create_all(conn)
    stale: list[Projection] = []
    has_events = conn.execute(sa.text("SELECT 1 FROM ss_events LIMIT 1")).first() is not None
    for projection in projections:
        for table in projection.tables():
            table.create(conn, checkfirst=True)
        stored = conn.execute(
            sa.select(checkpoints.c.version).where(checkpoints.c.name == projection.name)
        ).scalar()
        if stored is None:
            conn.execute(checkpoints.insert().values(
                name=projection.name, version=projection.version, position=0, mode="inline"))
            if has_events:
                stale.append(projection)
        elif stored != projection.version:
            stale.append(projection)
    return stale


def record_checkpoint(conn: Connection, name: str, position: int, *, version: int | None = None,
                      mode: str | None = None) -> None:
    values: dict[str, object] = {"position": position}
    if version is not None:
        values["version"] = version
    if mode is not None:
        values["mode"] = mode
    conn.execute(checkpoints.update().where(checkpoints.c.name == name).values(**values))


def read_checkpoint(conn: Connection, name: str) -> int:
    return int(conn.execute(
        sa.select(checkpoints.c.position).where(checkpoints.c.name == name)).scalar() or 0)
