"""The log's tables and the database-side guarantees around them.

Two tables belong to the log: `ss_events` (one immutable row per event) and
`ss_streams` (each session stream's current version and last hash, the log's
own bookkeeping for optimistic concurrency; derivable from `ss_events`).
`ss_meta` records the schema version and, for a store with an anchor key, a
check of the key and the first position it anchored. What differs per dialect
(the triggers that make the log append-only, the migration lock) comes from the
dialect modules (`session_store.storage.sqlite`, `.postgres`).

Each event row carries two seals: `hash` chains it to the one before it in its
stream, `anchor` to the one before it in the whole log (`codec.anchor_hash`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from session_store.domain.events import SessionKey
from session_store.errors import SchemaError, StoreUnavailable
from session_store.logs import get_logger
from session_store.storage.codec import RECORD_NAMES, anchor_hash, decode_payload, key_check

if TYPE_CHECKING:
    from session_store.storage.dialect import Dialect

log = get_logger(__name__)

SCHEMA_VERSION = 2
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
    sa.Column("anchor", sa.String(64), nullable=False),
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
# empty bytes, nothing else changed) of a stream that already records its kind of purge
# fact: a SessionPurged on a session's stream, a ScopePurged (which names the events it
# erased) on an app or user scope stream: the audited purge path.
PURGE_ALLOWED = """
    NEW.data = {empty} AND NEW.position = OLD.position AND NEW.app_name = OLD.app_name
    AND NEW.user_id = OLD.user_id AND NEW.session_id = OLD.session_id
    AND NEW.version = OLD.version AND NEW.type = OLD.type AND NEW.event_id = OLD.event_id
    AND NEW.recorded_at = OLD.recorded_at AND NEW.hash = OLD.hash
    AND NEW.anchor = OLD.anchor
    AND EXISTS (SELECT 1 FROM ss_events p WHERE p.app_name = OLD.app_name
                AND p.user_id = OLD.user_id AND p.session_id = OLD.session_id
                AND p.type = CASE WHEN OLD.session_id = '' THEN 'ScopePurged'
                                  ELSE 'SessionPurged' END)
"""

RECORD_COLUMNS = tuple(events.c[name] for name in RECORD_NAMES)
"""The columns every read selects, in the order `codec.decode_row` expects."""

KEY_CHECK, KEYED_FROM = "anchor_key_check", "anchor_keyed_from"
"""`ss_meta` keys: the anchor key's check (`codec.key_check`) and the first position
whose anchor is keyed."""


@dataclass
class Prepared:
    """What opening found: from which position anchors are keyed (None: unkeyed), and the
    append-only triggers it had to put back."""

    keyed_from: int | None = None
    repaired: list[str] = field(default_factory=list)


def prepare(conn: Connection, dialect: Dialect, key: bytes | None = None) -> Prepared:
    """Create the log tables when missing, upgrade an older schema, refuse a newer one;
    re-create missing or altered append-only triggers; check (or start) the anchor key."""
    dialect.lock(conn, "schema")  # one schema migration at a time, across processes
    found = _stored_version(conn)
    if found is None:
        metadata.create_all(conn)
        _install_triggers(conn, dialect)
        conn.execute(meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
        return Prepared(keyed_from=_start_keying(conn, key, 1) if key is not None else None)
    if found > SCHEMA_VERSION:
        raise SchemaError(
            f"the database has session-store schema {found}, newer than this code's "
            f"{SCHEMA_VERSION}: upgrade session-store to open it"
        )
    prepared = Prepared()
    while found < SCHEMA_VERSION:
        _UPGRADES[found](conn, dialect, key)
        found += 1
        conn.execute(meta.update().where(meta.c.key == "schema_version").values(value=str(found)))
        log.warning("session_store.schema_upgraded", to_version=found)
    # A trigger of someone else's is reported by the audit, never dropped: it may be theirs.
    prepared.repaired = [problem for problem in dialect.trigger_problems(conn)
                         if not problem.startswith("unexpected trigger")]
    if prepared.repaired:
        log.warning("session_store.triggers_restored", problems=prepared.repaired)
        _install_triggers(conn, dialect)
    prepared.keyed_from = _check_key(conn, dialect, key)
    return prepared


def _install_triggers(conn: Connection, dialect: Dialect) -> None:
    for statement in dialect.triggers:
        conn.exec_driver_sql(statement)


def _meta(conn: Connection, name: str) -> str | None:
    value: str | None = conn.execute(
        sa.select(meta.c.value).where(meta.c.key == name)).scalar_one_or_none()
    return value


def _start_keying(conn: Connection, key: bytes, first: int) -> int:
    conn.execute(meta.insert(), [{"key": KEY_CHECK, "value": key_check(key)},
                                 {"key": KEYED_FROM, "value": str(first)}])
    return first


def _check_key(conn: Connection, dialect: Dialect, key: bytes | None) -> int | None:
    stored = _meta(conn, KEY_CHECK)
    if stored is None:
        if key is None:
            return None
        dialect.lock(conn, "writes")  # nobody appends between the tail and the switch
        return _start_keying(conn, key, dialect.tail(conn)[0] + 1)
    if key is None:
        raise StoreUnavailable("this store anchors its log with a key: set "
                               "$SESSION_STORE_HASH_KEY (or hash_key=) to open it")
    if key_check(key) != stored:
        raise StoreUnavailable("the hash key does not match the key this store's log is "
                               "anchored with: use the key it was created with")
    return int(_meta(conn, KEYED_FROM) or 1)


def _anchor_forward(conn: Connection, dialect: Dialect, key: bytes | None) -> None:
    """Schema 1 to 2: add the `anchor` column and anchor the existing events in order
    (with the key, when one is given: then the whole log is keyed)."""
    conn.exec_driver_sql("ALTER TABLE ss_events ADD COLUMN anchor VARCHAR(64) NOT NULL "
                         "DEFAULT ''")
    for statement in dialect.triggers:  # the guard would refuse the anchors' UPDATE
        if statement.startswith("DROP TRIGGER"):
            conn.exec_driver_sql(statement)
    previous, after = "", 0
    select = sa.text("SELECT position, hash FROM ss_events WHERE position > :after "
                     "ORDER BY position LIMIT 10000")
    update = sa.text("UPDATE ss_events SET anchor = :anchor WHERE position = :position")
    while rows := conn.execute(select, {"after": after}).all():
        sealed = []
        for position, digest in rows:
            previous = anchor_hash(previous, position, digest, key)
            sealed.append({"anchor": previous, "position": position})
        conn.execute(update, sealed)
        after = rows[-1][0]
    _install_triggers(conn, dialect)
    if key is not None:
        _start_keying(conn, key, 1)


Upgrade = Callable[[Connection, "Dialect", "bytes | None"], None]
_UPGRADES: dict[int, Upgrade] = {1: _anchor_forward}
"""The step that lifts the schema from version N to N+1, keyed by N."""


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
    """The audited purge path: erase the payloads of a session's stream (its `SessionPurged`
    is kept), or of the events of a scope stream its `ScopePurged` facts name.

    The append-only triggers let exactly this through once the stream records a purge.
    """
    mine = (events.c.app_name == key.app_name, events.c.user_id == key.user_id,
            events.c.session_id == key.session_id)
    if key.session_id:
        conn.execute(events.update().where(*mine, events.c.type != "SessionPurged")
                     .values(data=b""))
        return
    # Every ScopePurged of the stream, not only the new ones: one the erasure has served
    # names rows already empty, which the length test leaves alone.
    named: set[str] = set()
    for type_name, version, data in conn.execute(
            sa.select(events.c.type, events.c.schema, events.c.data)
            .where(*mine, events.c.type == "ScopePurged")):
        named.update(getattr(decode_payload(type_name, version, bytes(data)), "event_ids", ()))
    ids = sorted(named)
    for start in range(0, len(ids), _ERASE_CHUNK):
        conn.execute(events.update().where(
            *mine, events.c.event_id.in_(ids[start:start + _ERASE_CHUNK]),
            events.c.type != "ScopePurged", sa.func.length(events.c.data) > 0)
            .values(data=b""))


_ERASE_CHUNK = 500
"""Event ids per erasing statement (SQLite's bound parameters are limited)."""
