"""The log's tables and the database-side guarantees around them.

Two tables belong to the log: `ss_events` (one immutable row per event) and
`ss_streams` (each session stream's current version and last hash, the log's
own bookkeeping for optimistic concurrency; derivable from `ss_events`).
`ss_meta` records the schema version. What differs per dialect (the triggers
that make the log append-only, the migration lock) comes from the dialect
modules (`session_store.storage.sqlite`, `.postgres`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from session_store.domain.events import SessionKey
from session_store.errors import SchemaError
from session_store.storage.codec import RECORD_NAMES

if TYPE_CHECKING:
    from session_store.storage.dialect import Dialect

SCHEMA_VERSION = 1
"""Bump when the layout of the log tables changes; add a step to `_UPGRADES`."""

metadata = sa.MetaData()

events = sa.Table(
    "ss_events",
    metadata,
    sa.Column("position", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
              autoincrement=False),
    sa.Column("app_name", sa.String, nullable=False),
    sa.Column("user_id", sa.String, nullable=False),
    sa.Column("session_id", sa.String, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("type", sa.String, nullable=False),
    sa.Column("schema", sa.SmallInteger, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("event_id", sa.String, nullable=False),
    sa.Column("recorded_at", sa.Float(precision=53), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.UniqueConstraint("app_name", "user_id", "session_id", "version", name="ss_events_stream"),
    sa.UniqueConstraint("event_id", name="ss_events_event_id"),
)

streams = sa.Table(
    "ss_streams",
    metadata,
    sa.Column("app_name", sa.String, primary_key=True),
    sa.Column("user_id", sa.String, primary_key=True),
    sa.Column("session_id", sa.String, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

meta = sa.Table(
    "ss_meta",
    metadata,
    sa.Column("key", sa.String, primary_key=True),
    sa.Column("value", sa.String, nullable=False),
)

# The log refuses UPDATE and DELETE. The one exception is erasing payloads (data set to
# empty bytes, nothing else changed) of a stream that already records a SessionPurged
# event: the audited purge path.
PURGE_ALLOWED = """
    NEW.data = {empty} AND NEW.position = OLD.position AND NEW.app_name = OLD.app_name
    AND NEW.user_id = OLD.user_id AND NEW.session_id = OLD.session_id
    AND NEW.version = OLD.version AND NEW.type = OLD.type AND NEW.event_id = OLD.event_id
    AND NEW.recorded_at = OLD.recorded_at AND NEW.hash = OLD.hash
    AND EXISTS (SELECT 1 FROM ss_events p WHERE p.app_name = OLD.app_name
                AND p.user_id = OLD.user_id AND p.session_id = OLD.session_id
                AND p.type = 'SessionPurged')
"""

RECORD_COLUMNS = tuple(events.c[name] for name in RECORD_NAMES)
"""The columns every read selects, in the order `codec.decode_row` expects."""

_UPGRADES: dict[int, list[str]] = {}
"""Statements that lift the schema from version N to N+1, keyed by N."""


def prepare(conn: Connection, dialect: Dialect) -> None:
    """Create the log tables when missing, upgrade an older schema, refuse a newer one."""
    dialect.lock(conn, "schema")  # one schema migration at a time, across processes
    found = _stored_version(conn)
    if found is None:
        metadata.create_all(conn)
        for statement in dialect.triggers:
            conn.exec_driver_sql(statement)
        conn.execute(meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
        return
    if found > SCHEMA_VERSION:
        raise SchemaError(
            f"the database has session-store schema {found}, newer than this code's "
            f"{SCHEMA_VERSION}: upgrade session-store to open it"
        )
    while found < SCHEMA_VERSION:
        for statement in _UPGRADES[found]:
            conn.exec_driver_sql(statement)
        found += 1
        conn.execute(meta.update().where(meta.c.key == "schema_version").values(value=str(found)))


def _stored_version(conn: Connection) -> int | None:
    if not sa.inspect(conn).has_table("ss_meta"):
        return None
    value = conn.execute(
        sa.select(meta.c.value).where(meta.c.key == "schema_version")
    ).scalar_one_or_none()
    if value is None:
        raise SchemaError("ss_meta exists but records no schema_version: not a session-store?")
    return int(value)


def erase_payloads(conn: Connection, key: SessionKey) -> None:
    """The audited purge path: erase the payloads of a stream (its `SessionPurged` is kept).

    The append-only triggers let exactly this through once the stream records a purge.
    """
    conn.execute(
        events.update()
        .where(events.c.app_name == key.app_name, events.c.user_id == key.user_id,
               events.c.session_id == key.session_id, events.c.type != "SessionPurged")
        .values(data=b"")
    )
