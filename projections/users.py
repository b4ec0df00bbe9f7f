"""User index: per app and user, sessions by status, first seen, last active, totals.

`ss_user_sessions` keeps one row per session (its status and what it added
up); `ss_users` sums them per user. Status follows the session-heads fold.
A deleted session drops out of the status counts but its messages and tokens
stay in the user's totals (they happened); a purged session is forgotten
entirely, and a user left with no sessions at all is removed. Messages and
sessions are counted from the envelope (`type`), tokens from the payload, so
a purge leaves the same rows whether the fold saw the payloads or not.
"""

from __future__ import annotations

import builtins
import sqlite3
from collections.abc import Sequence
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from session_store.database import Database
from session_store.events import InteractionTracked, MessageAppended, RecordedEvent
from session_store.lookup import CHUNK, keyed_select
from session_store.schema import sqlite_upsert, upsert

ACTIVE, ARCHIVED, ENDED, EXPIRED, DELETED = "active", "archived", "ended", "expired", "deleted"
STATUSES = (ACTIVE, ARCHIVED, ENDED, EXPIRED)
_STATUS_OF = {"SessionArchived": ARCHIVED, "SessionReactivated": ACTIVE, "SessionEnded": ENDED,
              "SessionExpired": EXPIRED, "SessionDeleted": DELETED}
_WAKES = frozenset({"MessageAppended", "StateChanged", "InteractionTracked", "MetadataChanged",
                    "MessageRetracted", "HistoryCleared"})
"""Activity that brings an expired session back (as the heads fold does)."""
_ACTIVITY = _WAKES | {"SessionCreated", "SessionReactivated"}
_USER_COUNTS = (ACTIVE, ARCHIVED, ENDED, EXPIRED, DELETED)


class UserSummary(msgspec.Struct, frozen=True, kw_only=True):
    app_name: str
    user_id: str
    first_seen: float
    last_active: float
    sessions: dict[str, int]
    """Visible sessions by status (active, archived, ended, expired)."""
    messages: int
    tokens_in: int
    tokens_out: int

    @property
    def session_count(self) -> int:
        return sum(self.sessions.values())


class UserSession(msgspec.Struct, frozen=True, kw_only=True):
    session_id: str
    status: str
    created_at: float
    last_active: float
    messages: int
    tokens_in: int
    tokens_out: int


def make_tables(suffix: str = "") -> tuple[sa.Table, sa.Table]:
    metadata = sa.MetaData()
    users = sa.Table(
        f"ss_users{suffix}", metadata,
        sa.Column("app_name", sa.String, primary_key=True),
        sa.Column("user_id", sa.String, primary_key=True),
        sa.Column("first_seen", sa.Float(precision=53), nullable=False),
        sa.Column("last_active", sa.Float(precision=53), nullable=False),
        *(sa.Column(status, sa.Integer, nullable=False) for status in _USER_COUNTS),
        sa.Column("messages", sa.BigInteger, nullable=False),
        sa.Column("tokens_in", sa.BigInteger, nullable=False),
        sa.Column("tokens_out", sa.BigInteger, nullable=False),
    )
    sessions = sa.Table(
        f"ss_user_sessions{suffix}", metadata,
        sa.Column("app_name", sa.String, primary_key=True),
        sa.Column("user_id", sa.String, primary_key=True),
        sa.Column("session_id", sa.String, primary_key=True),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("created_at", sa.Float(precision=53), nullable=False),
        sa.Column("last_active", sa.Float(precision=53), nullable=False),
        sa.Column("messages", sa.BigInteger, nullable=False),
        sa.Column("tokens_in", sa.BigInteger, nullable=False),
        sa.Column("tokens_out", sa.BigInteger, nullable=False),
    )
    return users, sessions


_USER_VALUES = ["first_seen", "last_active", *_USER_COUNTS, "messages", "tokens_in",
                "tokens_out"]
_SESSION_VALUES = ["status", "created_at", "last_active", "messages", "tokens_in", "tokens_out"]
Key = tuple[str, ...]


class UsersProjection:
    """The user-index read model (name `users`)."""

    name = "users"
    version = 1

    def __init__(self, suffix: str = "") -> None:
        self.users, self.sessions = make_tables(suffix)
        self._upserts = {
            dialect: (upsert(self.users, dialect, ["app_name", "user_id"], _USER_VALUES),
                      upsert(self.sessions, dialect, ["app_name", "user_id", "session_id"],
                             _SESSION_VALUES))
            for dialect in ("sqlite", "postgresql")
        }

    def tables(self) -> Sequence[sa.Table]:
        return (self.users, self.sessions)

    def for_rebuild(self, suffix: str) -> UsersProjection:
        return UsersProjection(suffix)

    def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        session_keys: set[Key] = {(e.app_name, e.user_id, e.session_id) for e in events
                                  if e.session_id}
        if not session_keys:
            return
        sessions: dict[Key, dict[str, Any] | None] = dict(
            _load(conn, self.sessions, session_keys))
        users: dict[Key, dict[str, Any] | None] = dict(
            _load(conn, self.users, {k[:2] for k in session_keys}))
        for event in events:
            if event.session_id:
                _fold(sessions, users, event)
        self._write(conn, self.sessions, sessions)
        self._write(conn, self.users, users)

    def _write(self, conn: Connection, table: sa.Table, rows: dict[Key, dict[str, Any] | None]
               ) -> None:
        names = [c.name for c in table.primary_key.columns]
        live = sorted((key, row) for key, row in rows.items() if row is not None)
        gone = [key for key, row in rows.items() if row is None]
        driver: Any = conn.connection.driver_connection
        if isinstance(driver, sqlite3.Connection):  # plain tuples: SQLAlchemy costs more
            values = _USER_VALUES if table is self.users else _SESSION_VALUES
            if live:
                driver.executemany(sqlite_upsert(table.name, names, values),
                                   [(*key, *(row[v] for v in values)) for key, row in live])
            if gone:
                where = " AND ".join(f"{name} = ?" for name in names)
                driver.executemany(f"DELETE FROM {table.name} WHERE {where}", gone)
            return
        if live:
            statement = self._upserts[conn.dialect.name][0 if table is self.users else 1]
            conn.execute(statement, [{**dict(zip(names, key, strict=True)), **row}
                                     for key, row in live])
        for key in gone:
            conn.execute(table.delete().where(
                *(table.c[name] == value for name, value in zip(names, key, strict=True))))


def _load(conn: Connection, table: sa.Table, keys: set[Key]) -> dict[Key, dict[str, Any]]:
    pk = [c.name for c in table.primary_key.columns]
    columns = [c.name for c in table.columns if c.name not in pk]
    key_list = list(keys)
    found: dict[Key, dict[str, Any]] = {}
    driver: Any = conn.connection.driver_connection
    for start in range(0, len(key_list), CHUNK):
        chunk = key_list[start:start + CHUNK]
        if isinstance(driver, sqlite3.Connection):  # a tuple IN list scans: join instead
            result: Any = driver.execute(
                keyed_select(table.name, [*pk, *columns], pk, len(chunk)),
                [part for key in chunk for part in key])
        else:
            result = conn.execute(sa.select(*(table.c[name] for name in [*pk, *columns]))
                                  .where(sa.tuple_(*(table.c[name] for name in pk)).in_(chunk)))
        for row in result:
            found[tuple(row[:len(pk)])] = dict(zip(columns, row[len(pk):], strict=True))
    return found


def _fold(sessions: dict[Key, dict[str, Any] | None], users: dict[Key, dict[str, Any] | None],
          event: RecordedEvent) -> None:
    key = (event.app_name, event.user_id, event.session_id)
    at = event.recorded_at
    kind = event.type
    user = users.get(key[:2])
    if user is None:
        user = {"first_seen": at, "last_active": at, **dict.fromkeys(_USER_COUNTS, 0),
                "messages": 0, "tokens_in": 0, "tokens_out": 0}
        users[key[:2]] = user
    elif at < user["first_seen"]:
        user["first_seen"] = at
    session = sessions.get(key)
    if session is None:
        session = {"status": ACTIVE, "created_at": at, "last_active": at, "messages": 0,
                   "tokens_in": 0, "tokens_out": 0}
        sessions[key] = session
        user[ACTIVE] += 1
    if kind == "SessionPurged":
        user[session["status"]] -= 1
        for total in ("messages", "tokens_in", "tokens_out"):
            user[total] -= session[total]
        sessions[key] = None
        if not any(user[status] for status in _USER_COUNTS):
            users[key[:2]] = None
        return
    status = _STATUS_OF.get(kind)
    if status is None and kind in _WAKES and session["status"] == EXPIRED:
        status = ACTIVE
    if status is not None and session["status"] != DELETED:
        user[session["status"]] -= 1
        user[status] += 1
        session["status"] = status
    if kind in _ACTIVITY:
        session["last_active"] = max(session["last_active"], at)
        user["last_active"] = max(user["last_active"], at)
    tokens_in = tokens_out = 0
    data = event.data
    if kind == "MessageAppended":
        session["messages"] += 1
        user["messages"] += 1
        if isinstance(data, MessageAppended) and data.message.usage is not None:
            tokens_in, tokens_out = data.message.usage.tokens_in, data.message.usage.tokens_out
    elif isinstance(data, InteractionTracked):
        tokens_in, tokens_out = data.tokens_in, data.tokens_out
    if tokens_in or tokens_out:
        session["tokens_in"] += tokens_in
        session["tokens_out"] += tokens_out
        user["tokens_in"] += tokens_in
        user["tokens_out"] += tokens_out


class Users:
    """Queries over the user index."""

    def __init__(self, db: Database, projection: UsersProjection | None = None) -> None:
        self.db = db
        self.projection = projection or UsersProjection()

    async def get(self, *, app_name: str, user_id: str) -> UserSummary | None:
        u = self.projection.users
        rows = await self._fetch(sa.select(u).where(u.c.app_name == app_name,
                                                    u.c.user_id == user_id))
        return _summary(rows[0]) if rows else None

    async def list(self, *, app_name: str, active_since: float | None = None,
                   after: str | None = None, limit: int = 100
                   ) -> builtins.list[UserSummary]:
        """Users of an app ordered by id; pass the last `user_id` as `after` for the next page."""
        u = self.projection.users
        query = sa.select(u).where(u.c.app_name == app_name)
        if active_since is not None:
            query = query.where(u.c.last_active >= active_since)
        if after is not None:
            query = query.where(u.c.user_id > after)
        rows = await self._fetch(query.order_by(u.c.user_id).limit(limit))
        return [_summary(row) for row in rows]

    async def sessions(self, *, app_name: str, user_id: str, status: str | None = None
                       ) -> builtins.list[UserSession]:
        """The user's visible sessions, least recently active first."""
        s = self.projection.sessions
        query = sa.select(s).where(s.c.app_name == app_name, s.c.user_id == user_id,
                                   s.c.status != DELETED)
        if status is not None:
            query = query.where(s.c.status == status)
        rows = await self._fetch(query.order_by(s.c.last_active, s.c.session_id))
        return [UserSession(**{k: row[k] for k in ("session_id", *_SESSION_VALUES)})
                for row in rows]

    async def _fetch(self, query: Any) -> builtins.list[Any]:
        async with self.db.engine.connect() as conn:
            return builtins.list((await conn.execute(query)).mappings().all())


def _summary(row: Any) -> UserSummary:
    return UserSummary(app_name=row["app_name"], user_id=row["user_id"],
                       first_seen=row["first_seen"], last_active=row["last_active"],
                       sessions={status: row[status] for status in STATUSES},
                       messages=row["messages"], tokens_in=row["tokens_in"],
                       tokens_out=row["tokens_out"])
