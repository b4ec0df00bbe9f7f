"""The append statements of each dialect: the only SQL on the write path's hot loop.

`write_batch` (in `session_store.writer`) decides what to write; these classes say
how, per dialect: take the write lock, load the touched streams' heads with the
last position (and the stored records of caller-given event ids), then write the
new rows and the streams' new heads. They go to the driver connection directly,
skipping SQLAlchemy's per-execute machinery, which costs more than the statements.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.util import await_only as await_

from session_store.events import RecordedEvent, SessionKey
from session_store.lookup import CHUNK, keyed_select
from session_store.records import RECORD_COLUMNS, decode_row

POSTGRES_WRITE_LOCK = 7415107
"""The advisory lock key every PostgreSQL append transaction holds while it writes."""
WRITE_LOCK_HELD = "session_store.write_lock_held"
"""`Connection.info` flag: the transaction already holds the log's write lock (`TaskWriter`)."""

Row = tuple[int, str, str, str, int, str, int, bytes, str, float, str]
"""One ss_events row, in `records.RECORD_COLUMNS` order."""
Head = tuple[str, str, str, int, str]
"""One ss_streams row: app_name, user_id, session_id, version, hash."""
Loaded = tuple[dict[SessionKey, tuple[int, str]], int, dict[str, RecordedEvent]]
"""Stream heads, the last position, and the stored records of caller-given event ids."""

_COLUMNS = ", ".join(column.name for column in RECORD_COLUMNS)
_STREAM_COLUMNS = ("app_name", "user_id", "session_id", "version", "hash")


class StaleHeads(Exception):
    """A batch was planned on heads someone else has moved past: plan it again."""


class SQLiteAppend:
    """The hot statements on SQLite, on the raw driver cursor of the writer's connection.

    `BEGIN IMMEDIATE` (issued when the transaction starts) is the write lock. Going
    around SQLAlchemy's per-execute machinery here roughly halves the writer's cost.
    """

    _HEAD = "SELECT version, hash FROM ss_streams WHERE app_name = ? AND user_id = ? " \
            "AND session_id = ?"
    _LAST = "SELECT max(position) FROM ss_events"
    _INSERT = f"INSERT INTO ss_events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    _UPSERT = ("INSERT INTO ss_streams (app_name, user_id, session_id, version, hash) "
               "VALUES (?, ?, ?, ?, ?) ON CONFLICT (app_name, user_id, session_id) "
               "DO UPDATE SET version = excluded.version, hash = excluded.hash")

    @staticmethod
    def lock(conn: Connection) -> None:
        pass

    @classmethod
    def current(cls, conn: Connection, position: int) -> bool:
        """Whether `position` is still the log's last (no one else appended since)."""
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        last = cursor.execute(cls._LAST).fetchone()[0] or 0
        cursor.close()
        return bool(last == position)

    @classmethod
    def load(cls, conn: Connection, keys: set[SessionKey], event_ids: list[str]) -> Loaded:
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        heads: dict[SessionKey, tuple[int, str]] = {}
        if len(keys) == 1:
            (key,) = keys
            row = cursor.execute(cls._HEAD, key).fetchone()
            if row is not None:
                heads[key] = (row[0], row[1])
        else:
            key_list = list(keys)
            for start in range(0, len(key_list), CHUNK):
                chunk = key_list[start:start + CHUNK]
                query = keyed_select("ss_streams", _STREAM_COLUMNS, _STREAM_COLUMNS[:3],
                                     len(chunk))
                for app, user, session, version, digest in cursor.execute(
                        query, [part for key in chunk for part in key]):
                    heads[SessionKey(app, user, session)] = (version, digest)
        position = cursor.execute(cls._LAST).fetchone()[0] or 0
        stored: dict[str, RecordedEvent] = {}
        for start in range(0, len(event_ids), 500):
            ids = event_ids[start:start + 500]
            query = (f"SELECT {_COLUMNS} FROM ss_events WHERE event_id IN ("
                     + ", ".join(["?"] * len(ids)) + ")")
            for row in cursor.execute(query, ids):
                record = decode_row(row)
                stored[record.event_id] = record
        cursor.close()
        return heads, position, stored

    @classmethod
    def write(cls, conn: Connection, rows: list[Row], heads: list[Head], position: int) -> None:
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        cursor.executemany(cls._INSERT, rows)
        cursor.executemany(cls._UPSERT, heads)
        cursor.close()


class PostgresAppend:
    """The hot statements on PostgreSQL: the lock, one read, one write (arrays, not rows).

    The read and the write go to the asyncpg connection directly (through SQLAlchemy's
    greenlet bridge), skipping its per-execute machinery: about a third of an append's
    CPU. They run after the lock, which has started the transaction.
    """

    _LOCK = sa.text(f"SELECT pg_advisory_xact_lock({POSTGRES_WRITE_LOCK})")
    _LOAD = (
        "SELECT 0 AS kind, NULL AS app_name, NULL AS user_id, NULL AS session_id, "
        "NULL::int AS version, NULL AS hash, (SELECT max(position) FROM ss_events) AS position "
        "UNION ALL "
        "SELECT 1, s.app_name, s.user_id, s.session_id, s.version, s.hash, NULL FROM ss_streams s "
        "JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(a, u, s) "
        "ON s.app_name = k.a AND s.user_id = k.u AND s.session_id = k.s"
    )
    _STORED = f"SELECT {_COLUMNS} FROM ss_events WHERE event_id = ANY($1::text[])"
    _WRITE = (
        f"WITH inserted AS (INSERT INTO ss_events ({_COLUMNS}) SELECT * FROM unnest("
        "$1::bigint[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[], "
        "$7::smallint[], $8::bytea[], $9::text[], $10::float8[], $11::text[]) "
        "WHERE (SELECT coalesce(max(position), 0) FROM ss_events) = $18::bigint RETURNING 1), "
        "heads AS (INSERT INTO ss_streams (app_name, user_id, session_id, version, hash) "
        "SELECT * FROM unnest($12::text[], $13::text[], $14::text[], $15::int[], $16::text[]) "
        "ON CONFLICT (app_name, user_id, session_id) "
        "DO UPDATE SET version = excluded.version, hash = excluded.hash) "
        "SELECT pg_notify('ss_events', $17::text), (SELECT count(*) FROM inserted)"
    )
    """One round trip: the rows (only if the log still ends where the batch was planned to
    follow it; otherwise none, and `write` raises `StaleHeads`), the heads, the wake-up."""

    @classmethod
    def lock(cls, conn: Connection) -> None:
        conn.execute(cls._LOCK)

    @staticmethod
    def current(conn: Connection, position: int) -> bool:
        return True  # checked by `write` in the same round trip

    @staticmethod
    def _driver(conn: Connection) -> Any:
        return conn.connection.driver_connection

    @classmethod
    def load(cls, conn: Connection, keys: set[SessionKey], event_ids: list[str]) -> Loaded:
        driver = cls._driver(conn)
        apps, users, sessions = (list(part) for part in zip(*keys, strict=True))
        heads: dict[SessionKey, tuple[int, str]] = {}
        position = 0
        for kind, app, user, session, version, digest, last in await_(
                driver.fetch(cls._LOAD, apps, users, sessions)):
            if kind == 0:
                position = last or 0
            else:
                heads[SessionKey(app, user, session)] = (version, digest)
        stored: dict[str, RecordedEvent] = {}
        if event_ids:
            for row in await_(driver.fetch(cls._STORED, event_ids)):
                record = decode_row(row)
                stored[record.event_id] = record
        return heads, position, stored

    @classmethod
    def write(cls, conn: Connection, rows: list[Row], heads: list[Head], position: int) -> None:
        columns = [list(column) for column in zip(*rows, strict=True)]
        head_columns = [list(column) for column in zip(*heads, strict=True)]
        (_, inserted), = await_(cls._driver(conn).fetch(
            cls._WRITE, *columns, *head_columns, str(position), rows[0][0] - 1))
        if inserted != len(rows):
            raise StaleHeads("the log moved on since this batch was planned")



BEGIN_LOCKED = f"BEGIN; SELECT pg_advisory_xact_lock({POSTGRES_WRITE_LOCK})"
