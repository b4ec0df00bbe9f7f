"""Session heads: the current state of every session, one row each.

The fold (`fold`) is the single place that knows what each event does to a
session. It serves the inline read model (`HeadsProjection`), full rebuilds,
`replay` and time travel (`at_version`). Run inline, it is also where the
session's invariants are enforced inside the append transaction: no events
before `SessionCreated`, nothing after `SessionEnded` or `SessionDeleted`.

State keys follow the ADK scopes: the session stream folds its own keys; the
app stream `(app, "", "")` folds `app:` keys and the user stream
`(app, user, "")` folds `user:` keys. `temp:` keys never reach the log.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.util import await_only as await_

from session_store.errors import SessionAlreadyExists, SessionClosed, SessionNotFound
from session_store.events import (
    HistoryCleared,
    InteractionTracked,
    MessageAppended,
    MessageRetracted,
    MetadataChanged,
    PayloadErased,
    RecordedEvent,
    SessionArchived,
    SessionCreated,
    SessionDeleted,
    SessionEnded,
    SessionExpired,
    SessionKey,
    SessionPurged,
    SessionReactivated,
    StateChanged,
)
from session_store.lookup import CHUNK, keyed_select
from session_store.schema import sqlite_upsert, upsert

ACTIVE, ARCHIVED, ENDED, EXPIRED = "active", "archived", "ended", "expired"
APP_PREFIX, USER_PREFIX, TEMP_PREFIX = "app:", "user:", "temp:"
_SHARED_PREFIXES = (APP_PREFIX, USER_PREFIX, TEMP_PREFIX)
"""Keys a session stream does not fold (they live in the scope streams, or nowhere)."""


def scope_of(key: SessionKey) -> str:
    """'app', 'user' or 'session': which state keys a stream folds."""
    if key.session_id:
        return "session"
    return "user" if key.user_id else "app"


def scope_stream(key: SessionKey, scope: str) -> SessionKey:
    """The stream holding `scope` ('app' or 'user') state for a session's app and user."""
    return SessionKey(key.app_name, key.user_id if scope == "user" else "", "")


def key_scope(state_key: str) -> str:
    if state_key.startswith(APP_PREFIX):
        return "app"
    if state_key.startswith(USER_PREFIX):
        return "user"
    if state_key.startswith(TEMP_PREFIX):
        return "temp"
    return "session"


class Head(msgspec.Struct, kw_only=True):
    """A session (or a scope stream) as folded so far."""

    app_name: str
    user_id: str
    session_id: str
    version: int = 0
    status: str = ACTIVE
    state: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    tags: list[str] = []
    timeout: float | None = None
    created_at: float = 0.0
    last_update_time: float = 0.0
    deleted: bool = False
    purged: bool = False
    history_from: int = 0
    """Messages at versions after this one are the visible history (HistoryCleared moves it)."""
    retracted: list[str] = []
    message_count: int = 0
    tracked_interactions: int = 0
    tracked_tokens_in: int = 0
    tracked_tokens_out: int = 0
    tracked_response_time: float = 0.0
    tracked_timed: int = 0
    """Tracked interactions that carried a response time (> 0): the mean's denominator."""

    @property
    def key(self) -> SessionKey:
        return SessionKey(self.app_name, self.user_id, self.session_id)

    @property
    def expires_at(self) -> float | None:
        return None if self.timeout is None else self.last_update_time + self.timeout


_ACTIVITY = (MessageAppended, StateChanged, InteractionTracked, MetadataChanged,
             MessageRetracted, HistoryCleared)


def fold(head: Head | None, event: RecordedEvent) -> Head:
    """Apply one event to a head, returning the new head (the input is not changed)."""
    return advance(None if head is None else copy_head(head), event)


def copy_head(head: Head) -> Head:
    """A copy of `head` that shares nothing `advance` changes in place."""
    return msgspec.structs.replace(head, state=dict(head.state), metadata=dict(head.metadata),
                                   tags=list(head.tags), retracted=list(head.retracted))


def advance(head: Head | None, event: RecordedEvent) -> Head:
    """Apply one event to a head the caller owns, changing it in place; returns the head.

    The result is a new head for the first event of a stream and for a purge. Cheaper than
    `fold` (no copy per event): the inline model and rebuilds use it on heads they decoded
    or created themselves; replay and time travel use `fold`.
    """
    data = event.data
    cls = type(data)
    if head is None:
        head = _first(event)
    elif head.deleted or head.status == ENDED or cls is SessionCreated:
        _check_open(head, event)
    head.version = event.version
    if cls is MessageAppended:  # the common case first
        head.last_update_time = event.recorded_at
        if head.status == EXPIRED:
            head.status = ACTIVE
        head.message_count += 1
        delta = data.message.state_delta  # type: ignore[union-attr]
        if delta:
            _update_state(head, delta)
        return head
    if cls is SessionCreated:
        return head
    if isinstance(data, _ACTIVITY):
        head.last_update_time = event.recorded_at
        if head.status == EXPIRED:
            head.status = ACTIVE
    if isinstance(data, StateChanged):
        _update_state(head, data.delta)
    elif isinstance(data, InteractionTracked):
        head.tracked_interactions += 1
        head.tracked_tokens_in += data.tokens_in
        head.tracked_tokens_out += data.tokens_out
        head.tracked_response_time += data.response_time
        if data.response_time > 0:
            head.tracked_timed += 1
    elif isinstance(data, MetadataChanged):
        if data.merge:
            head.metadata.update(data.patch)
        else:
            head.metadata = dict(data.patch)
    elif isinstance(data, MessageRetracted):
        head.retracted.append(data.message_id)
    elif isinstance(data, HistoryCleared):
        head.history_from = event.version
        head.retracted = []
    elif isinstance(data, SessionArchived):
        head.status = ARCHIVED
    elif isinstance(data, SessionReactivated):
        head.status = ACTIVE
        head.last_update_time = event.recorded_at
    elif isinstance(data, SessionEnded):
        head.status = ENDED
    elif isinstance(data, SessionExpired):
        head.status = EXPIRED
    elif isinstance(data, SessionDeleted):
        head.deleted = True
    elif isinstance(data, SessionPurged):
        # A purge is a delete that also erases. Keep only what the erased log still
        # says (the envelope), so folding it again (rebuild, verify) gives this head.
        return Head(app_name=head.app_name, user_id=head.user_id, session_id=head.session_id,
                    version=event.version, created_at=head.created_at,
                    last_update_time=head.created_at, deleted=True, purged=True)
    return head


def _update_state(head: Head, delta: dict[str, Any]) -> None:
    """`head.state` updated in place with the keys of `delta` that belong to its stream."""
    state = head.state
    if head.session_id:
        for k, v in delta.items():
            if not k.startswith(_SHARED_PREFIXES):
                state[k] = v
        return
    prefix = USER_PREFIX if head.user_id else APP_PREFIX
    for k, v in delta.items():
        if k.startswith(prefix):
            state[k] = v


def _first(event: RecordedEvent) -> Head:
    data = event.data
    key = event.key
    if not key.session_id:
        return Head(app_name=key.app_name, user_id=key.user_id, session_id="",
                    created_at=event.recorded_at, last_update_time=event.recorded_at)
    if isinstance(data, SessionCreated):
        return Head(app_name=key.app_name, user_id=key.user_id, session_id=key.session_id,
                    state=apply_delta({}, data.state, "session"), metadata=dict(data.metadata),
                    tags=list(data.tags), timeout=data.timeout, created_at=event.recorded_at,
                    last_update_time=event.recorded_at)
    if isinstance(data, PayloadErased):  # a purged stream still folds to a (purged) head
        return Head(app_name=key.app_name, user_id=key.user_id, session_id=key.session_id,
                    created_at=event.recorded_at, last_update_time=event.recorded_at)
    raise SessionNotFound(f"session {key.session_id!r} of user {key.user_id!r} in app "
                          f"{key.app_name!r} does not exist")


def _check_open(head: Head, event: RecordedEvent) -> None:
    data = event.data
    if isinstance(data, SessionCreated):
        raise SessionAlreadyExists(
            f"session {head.session_id!r} of user {head.user_id!r} in app {head.app_name!r} "
            "already exists (ids of deleted sessions are never reused)")
    if isinstance(data, (SessionPurged, PayloadErased)):
        return
    if head.deleted:
        raise SessionClosed(f"session {head.session_id!r} was deleted")
    if head.status == ENDED and not isinstance(data, SessionDeleted):
        raise SessionClosed(f"session {head.session_id!r} has ended and accepts no more events")


def apply_delta(state: dict[str, Any], delta: dict[str, Any], scope: str) -> dict[str, Any]:
    """`state` updated with the keys of `delta` that belong to `scope`."""
    changes = {k: v for k, v in delta.items() if key_scope(k) == scope}
    return {**state, **changes} if changes else state


def fold_all(events: Iterable[RecordedEvent], head: Head | None = None) -> Head | None:
    """`head` (not changed) with every event folded in."""
    owned = None if head is None else copy_head(head)
    for event in events:
        owned = advance(owned, event)
    return owned


# --- the read model -----------------------------------------------------------

_head_encoder = msgspec.json.Encoder()
_head_decoder = msgspec.json.Decoder(Head)


def encode_head(head: Head) -> bytes:
    return _head_encoder.encode(head)


def decode_head(body: bytes) -> Head:
    return _head_decoder.decode(body)


def make_tables(suffix: str = "") -> tuple[sa.Table, sa.Table]:
    metadata = sa.MetaData()
    heads = sa.Table(
        f"ss_heads{suffix}", metadata,
        sa.Column("app_name", sa.String, primary_key=True),
        sa.Column("user_id", sa.String, primary_key=True),
        sa.Column("session_id", sa.String, primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float(precision=53), nullable=False),
        sa.Column("last_update_time", sa.Float(precision=53), nullable=False),
        sa.Column("expires_at", sa.Float(precision=53)),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Index(f"ss_heads{suffix}_app_activity", "app_name", "last_update_time", "user_id",
                 "session_id"),
        sa.Index(f"ss_heads{suffix}_user_activity", "app_name", "user_id", "last_update_time",
                 "session_id"),
        sa.Index(f"ss_heads{suffix}_expiry", "status", "expires_at"),
    )
    tags = sa.Table(
        f"ss_session_tags{suffix}", metadata,
        sa.Column("app_name", sa.String, primary_key=True),
        sa.Column("user_id", sa.String, primary_key=True),
        sa.Column("session_id", sa.String, primary_key=True),
        sa.Column("tag", sa.String, primary_key=True),
        sa.Index(f"ss_session_tags{suffix}_tag", "app_name", "tag"),
    )
    return heads, tags


HEADS, TAGS = make_tables()


class HeadsProjection:
    """The inline read model of session heads (and the app/user scope state rows).

    It runs in every append transaction, so its two statements (load the touched
    heads, upsert them) go to the driver connection directly where the driver is
    known (sqlite3, asyncpg), skipping SQLAlchemy's per-execute machinery.
    """

    name = "heads"
    version = 1

    def __init__(self, suffix: str = "") -> None:
        self.heads, self.tags = (HEADS, TAGS) if not suffix else make_tables(suffix)
        h = self.heads
        self._select_one = sa.select(h.c.body).where(
            h.c.app_name == sa.bindparam("a"), h.c.user_id == sa.bindparam("u"),
            h.c.session_id == sa.bindparam("s"))
        self._select_many = sa.select(h.c.body).where(
            sa.tuple_(h.c.app_name, h.c.user_id, h.c.session_id).in_(
                sa.bindparam("keys", expanding=True)))
        self._upserts = {
            dialect: upsert(h, dialect, ["app_name", "user_id", "session_id"], list(_ROW[3:]))
            for dialect in ("sqlite", "postgresql")
        }
        t = self.tags
        self._clear_tags = t.delete().where(
            t.c.app_name == sa.bindparam("a"), t.c.user_id == sa.bindparam("u"),
            t.c.session_id == sa.bindparam("s"))
        self._sql = _Statements(h.name, t.name)

    def tables(self) -> Sequence[sa.Table]:
        return (self.heads, self.tags)

    def for_rebuild(self, suffix: str) -> HeadsProjection:
        return HeadsProjection(suffix)

    def load(self, conn: Connection, keys: Sequence[SessionKey]) -> dict[SessionKey, Head]:
        driver: Any = conn.connection.driver_connection
        if isinstance(driver, sqlite3.Connection):
            bodies = self._sql.load_sqlite(driver, keys)
        elif conn.dialect.name == "postgresql" and conn.dialect.driver == "asyncpg":
            bodies = self._sql.load_asyncpg(driver, keys)
        else:
            bodies = self._load_sqlalchemy(conn, keys)
        heads = (decode_head(body) for body in bodies)
        return {head.key: head for head in heads}

    def _load_sqlalchemy(self, conn: Connection, keys: Sequence[SessionKey]) -> list[bytes]:
        if len(keys) == 1:
            a, u, s = keys[0]
            return [row[0] for row in conn.execute(self._select_one, {"a": a, "u": u, "s": s})]
        bodies: list[bytes] = []
        for start in range(0, len(keys), 300):
            chunk = [tuple(k) for k in keys[start:start + 300]]
            bodies.extend(row[0] for row in conn.execute(self._select_many, {"keys": chunk}))
        return bodies

    def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        if not events:
            return
        keys = list(dict.fromkeys(
            SessionKey(event.app_name, event.user_id, event.session_id) for event in events))
        heads: dict[SessionKey, Head | None] = dict(self.load(conn, keys))
        retagged: set[SessionKey] = set()
        for event in events:
            key = SessionKey(event.app_name, event.user_id, event.session_id)
            heads[key] = advance(heads.get(key), event)
            if event.type in _RETAGS:
                retagged.add(key)
        rows = [_row(head) for head in heads.values() if head is not None]
        self._write(conn, rows)
        if retagged:
            self._retag(conn, retagged, heads)

    def _retag(self, conn: Connection, keys: set[SessionKey],
               heads: dict[SessionKey, Head | None]) -> None:
        """Replace the tag rows of `keys` with their heads' tags (two statements in all)."""
        tagged: list[tuple[str, str, str, str]] = []
        for key in keys:
            head = heads[key]
            if head is not None:
                tagged.extend((*key, tag) for tag in set(head.tags))
        driver: Any = conn.connection.driver_connection
        if isinstance(driver, sqlite3.Connection):
            driver.executemany(self._sql.clear_tags, list(keys))
            if tagged:
                driver.executemany(self._sql.insert_tags, tagged)
            return
        conn.execute(self._clear_tags, [{"a": a, "u": u, "s": s} for a, u, s in keys])
        if tagged:
            conn.execute(self.tags.insert(), [
                {"app_name": a, "user_id": u, "session_id": s, "tag": tag}
                for a, u, s, tag in tagged])

    def _write(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        driver: Any = conn.connection.driver_connection
        if isinstance(driver, sqlite3.Connection):
            driver.executemany(self._sql.upsert_sqlite, rows)
        elif conn.dialect.name == "postgresql" and conn.dialect.driver == "asyncpg":
            columns = [list(column) for column in zip(*rows, strict=True)]
            await_(driver.execute(self._sql.upsert_asyncpg, *columns))
        else:
            conn.execute(self._upserts[conn.dialect.name],
                         [dict(zip(_ROW, row, strict=True)) for row in rows])


_RETAGS = frozenset({"SessionCreated", "SessionPurged"})
"""Event types after which a session's tag rows are written again."""

_ROW = ("app_name", "user_id", "session_id", "version", "status", "deleted", "created_at",
        "last_update_time", "expires_at", "body")
"""The columns of a heads row, in `_row` order."""


def _row(head: Head) -> tuple[Any, ...]:
    return (head.app_name, head.user_id, head.session_id, head.version, head.status,
            head.deleted, head.created_at, head.last_update_time, head.expires_at,
            encode_head(head))


class _Statements:
    """The heads table's load and upsert as plain SQL for sqlite3 and asyncpg."""

    def __init__(self, table: str, tags: str) -> None:
        self.table = table
        self.clear_tags = (f"DELETE FROM {tags} WHERE app_name = ? AND user_id = ? "
                           "AND session_id = ?")
        self.insert_tags = f"INSERT INTO {tags} (app_name, user_id, session_id, tag) VALUES " \
                           "(?, ?, ?, ?)"
        self.select_one = (f"SELECT body FROM {table} WHERE app_name = ? AND user_id = ? "
                           "AND session_id = ?")
        self.upsert_sqlite = sqlite_upsert(table, _ROW[:3], _ROW[3:])
        updates = ", ".join(f"{c} = excluded.{c}" for c in _ROW[3:])
        conflict = f"ON CONFLICT (app_name, user_id, session_id) DO UPDATE SET {updates}"
        self.load_pg = (f"SELECT h.body FROM {table} h JOIN unnest($1::text[], $2::text[], "
                        "$3::text[]) AS k(a, u, s) ON h.app_name = k.a AND h.user_id = k.u "
                        "AND h.session_id = k.s")
        self.upsert_asyncpg = (
            f"INSERT INTO {table} ({', '.join(_ROW)}) SELECT * FROM unnest($1::text[], "
            "$2::text[], $3::text[], $4::int[], $5::text[], $6::bool[], $7::float8[], "
            f"$8::float8[], $9::float8[], $10::bytea[]) {conflict}")

    def load_sqlite(self, driver: sqlite3.Connection, keys: Sequence[SessionKey]
                    ) -> list[bytes]:
        if len(keys) == 1:
            return [row[0] for row in driver.execute(self.select_one, keys[0])]
        bodies: list[bytes] = []
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start:start + CHUNK]
            query = keyed_select(self.table, ("body",), ("app_name", "user_id", "session_id"),
                                 len(chunk))
            bodies.extend(row[0] for row in driver.execute(
                query, [part for key in chunk for part in key]))
        return bodies

    def load_asyncpg(self, driver: Any, keys: Sequence[SessionKey]) -> list[bytes]:
        apps, users, sessions = (list(part) for part in zip(*keys, strict=True))
        return [row[0] for row in await_(driver.fetch(self.load_pg, apps, users, sessions))]
