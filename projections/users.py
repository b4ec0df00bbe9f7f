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
from collections.abc import Sequence
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from projections.protocol import Projection, Queries, Ready
from session_store.domain import validation
from session_store.domain.events import InteractionTracked, MessageAppended, RecordedEvent
from session_store.domain.lifecycle import (
    ACTIVE,
    ARCHIVED,
    DELETED,
    ENDED,
    EXPIRED,
    STATUSES,
    WAKES,
    next_status,
)
from session_store.storage.database import Database, dialect_of

_ACTIVITY = WAKES | {"SessionCreated", "SessionReactivated"}
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


_SESSION_VALUES = ["status", "created_at", "last_active", "messages", "tokens_in", "tokens_out"]
Key = tuple[str, ...]


class UsersProjection(Projection):
    """The user-index read model (name `users`)."""

    name = "users"
    version = 1

    def __init__(self, suffix: str = "") -> None:
        self.users, self.sessions = make_tables(suffix)

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
        _write(conn, self.sessions, sessions)
        _write(conn, self.users, users)


def _values(table: sa.Table) -> list[str]:
    keys = {c.name for c in table.primary_key.columns}
    return [c.name for c in table.columns if c.name not in keys]


def _load(conn: Connection, table: sa.Table, keys: set[Key]) -> dict[Key, dict[str, Any]]:
    width = len(table.primary_key.columns)
    values = _values(table)
    columns = [c.name for c in table.columns]
    rows = dialect_of(conn).select_keyed(conn, table, columns, list(keys))
    return {tuple(row[:width]): dict(zip(values, row[width:], strict=True)) for row in rows}


def _write(conn: Connection, table: sa.Table, rows: dict[Key, dict[str, Any] | None]) -> None:
    dialect = dialect_of(conn)
    values = _values(table)
    live = sorted((key, row) for key, row in rows.items() if row is not None)
    dialect.upsert(conn, table, [(*key, *(row[v] for v in values)) for key, row in live])
    dialect.delete_keyed(conn, table, [key for key, row in rows.items() if row is None])


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
    status = DELETED if kind == "SessionDeleted" else next_status(session["status"], kind)
    if status != session["status"] and session["status"] != DELETED:
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


class Users(Queries):
    """Queries over the user index."""

    def __init__(self, db: Database, projection: UsersProjection | None = None,
                 ready: Ready | None = None) -> None:
        super().__init__(db, ready)
        self.projection = projection or UsersProjection()

    async def get(self, *, app_name: str, user_id: str) -> UserSummary | None:
        validation.check_id(app_name, "app_name")
        validation.check_id(user_id, "user_id")
        u = self.projection.users
        rows = await self.rows(sa.select(u).where(u.c.app_name == app_name,
                                                  u.c.user_id == user_id))
        return _summary(rows[0]) if rows else None

    async def list(self, *, app_name: str, active_since: float | None = None,
                   after: str | None = None, limit: int = 100
                   ) -> builtins.list[UserSummary]:
        """Users of an app ordered by id; pass the last `user_id` as `after` for the next page."""
        validation.check_id(app_name, "app_name")
        validation.check_ids(after=after)
        validation.check_page_limit(limit)
        if active_since is not None:
            validation.check_non_negative(active_since, "active_since")
        u = self.projection.users
        query = sa.select(u).where(u.c.app_name == app_name)
        if active_since is not None:
            query = query.where(u.c.last_active >= active_since)
        if after is not None:
            query = query.where(u.c.user_id > after)
        rows = await self.rows(query.order_by(u.c.user_id).limit(limit))
        return [_summary(row) for row in rows]

    async def sessions(self, *, app_name: str, user_id: str, status: str | None = None
                       ) -> builtins.list[UserSession]:
        """The user's visible sessions, least recently active first."""
        validation.check_id(app_name, "app_name")
        validation.check_id(user_id, "user_id")
        validation.check_status(status)
        s = self.projection.sessions
        query = sa.select(s).where(s.c.app_name == app_name, s.c.user_id == user_id,
                                   s.c.status != DELETED)
        if status is not None:
            query = query.where(s.c.status == status)
        rows = await self.rows(query.order_by(s.c.last_active, s.c.session_id))
        return [UserSession(**{k: row[k] for k in ("session_id", *_SESSION_VALUES)})
                for row in rows]


def _summary(row: Any) -> UserSummary:
    return UserSummary(app_name=row["app_name"], user_id=row["user_id"],
                       first_seen=row["first_seen"], last_active=row["last_active"],
                       sessions={status: row[status] for status in STATUSES},
                       messages=row["messages"], tokens_in=row["tokens_in"],
                       tokens_out=row["tokens_out"])
