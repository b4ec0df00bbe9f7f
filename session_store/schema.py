"""The log's tables and the database-side guarantees around them.

Two tables belong to the log: `ss_events` (one immutable row per event) and
`ss_streams` (each session stream's current version and last hash, the log's
own bookkeeping for optimistic concurrency; derivable from `ss_events`).
`ss_meta` records the schema version. Dialect differences (the triggers that
make the log append-only, the upsert statement) live here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from session_store.errors import SchemaError

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

# The log refuses UPDATE and DELETE. The one exception is erasing payloads
# (data set to empty bytes, nothing else changed) of a stream that already
# records a SessionPurged event: the audited purge path.
_PURGE_ALLOWED = """
    NEW.data = {empty} AND NEW.position = OLD.position AND NEW.app_name = OLD.app_name
    AND NEW.user_id = OLD.user_id AND NEW.session_id = OLD.session_id
    AND NEW.version = OLD.version AND NEW.type = OLD.type AND NEW.event_id = OLD.event_id
    AND NEW.recorded_at = OLD.recorded_at AND NEW.hash = OLD.hash
    AND EXISTS (SELECT 1 FROM ss_events p WHERE p.app_name = OLD.app_name
                AND p.user_id = OLD.user_id AND p.session_id = OLD.session_id
                AND p.type = 'SessionPurged')
"""

_SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER IF NOT EXISTS ss_events_no_update BEFORE UPDATE ON ss_events
        WHEN NOT ({_PURGE_ALLOWED.format(empty="x''")})
        BEGIN SELECT RAISE(ABORT, 'ss_events is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS ss_events_no_delete BEFORE DELETE ON ss_events
        BEGIN SELECT RAISE(ABORT, 'ss_events is append-only'); END""",
]

_POSTGRES_TRIGGERS = [
    f"""CREATE OR REPLACE FUNCTION ss_events_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'UPDATE' AND ({_PURGE_ALLOWED.format(empty="''::bytea")}) THEN
            RETURN NEW;
          END IF;
          RAISE EXCEPTION 'ss_events is append-only' USING ERRCODE = 'raise_exception';
        END $$""",
    """DROP TRIGGER IF EXISTS ss_events_no_change ON ss_events""",
    """CREATE TRIGGER ss_events_no_change BEFORE UPDATE OR DELETE ON ss_events
        FOR EACH ROW EXECUTE FUNCTION ss_events_guard()""",
    """DROP TRIGGER IF EXISTS ss_events_no_truncate ON ss_events""",
    """CREATE TRIGGER ss_events_no_truncate BEFORE TRUNCATE ON ss_events
        FOR EACH STATEMENT EXECUTE FUNCTION ss_events_guard()""",
]


def _triggers(dialect: str) -> list[str]:
    return _SQLITE_TRIGGERS if dialect == "sqlite" else _POSTGRES_TRIGGERS


_UPGRADES: dict[int, list[str]] = {}
"""Statements that lift the schema from version N to N+1, keyed by N."""


def prepare(conn: Connection) -> None:
    """Create the log tables when missing, upgrade an older schema, refuse a newer one."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        # One schema migration at a time, across processes.
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(7415106)"))
    found = _stored_version(conn)
    if found is None:
        metadata.create_all(conn)
        for statement in _triggers(dialect):
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


def upsert(table: sa.Table, dialect: str, keys: list[str], values: list[str]) -> Any:
    """`INSERT ... ON CONFLICT (keys) DO UPDATE SET values = excluded.values` for the dialect."""
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
    statement = insert(table)
    return statement.on_conflict_do_update(
        index_elements=keys, set_={name: statement.excluded[name] for name in values}
    )


def sqlite_upsert(table: str, keys: Sequence[str], values: Sequence[str]) -> str:
    """`upsert` as plain SQL for the sqlite3 driver: `?` parameters, keys then values."""
    columns = [*keys, *values]
    updates = ", ".join(f"{name} = excluded.{name}" for name in values)
    return (f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
            f"({', '.join('?' * len(columns))}) ON CONFLICT ({', '.join(keys)}) "
            f"DO UPDATE SET {updates}")
