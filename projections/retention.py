"""The retention index: each app's policy, and each session by status and last activity.

`ss_retention_policies` holds the newest `RetentionSet` of every app.
`ss_retention_sessions` has one row per session: its status (`deleted` once
tombstoned), `since` (its last activity, as the heads fold counts it; for a
deleted session, the time of its delete) and `messages` (how many it shows:
appended since the last clear or trim, less retractions; 0 once it has ended or
was deleted, as no trim applies to it then). Enforcement finds its
candidates through the indexes on `(app, status, since)` and `(app, messages)`,
so it reads only the rows it may act on, never every session or the log; the
session's head confirms each one before anything is appended. A purged session's
row goes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from projections.protocol import Projection, Queries, Ready
from session_store.domain.events import (
    HistoryTrimmed,
    RecordedEvent,
    RetentionSet,
    SessionKey,
)
from session_store.domain.lifecycle import ACTIVE, DELETED, ENDED, WAKES, next_status
from session_store.domain.retention import RetentionPolicy
from session_store.storage.database import Database, dialect_of

_ACTIVITY = WAKES | {"SessionCreated", "SessionReactivated"}
"""What moves `since` (as it moves a head's `last_update_time`)."""


def make_tables(suffix: str = "") -> tuple[sa.Table, sa.Table]:
    metadata = sa.MetaData()
    policies = sa.Table(
        f"ss_retention_policies{suffix}", metadata,
        sa.Column("app_name", sa.String, primary_key=True),
        sa.Column("archive_after", sa.Float(precision=53)),
        sa.Column("delete_after", sa.Float(precision=53)),
        sa.Column("purge_after", sa.Float(precision=53)),
        sa.Column("max_messages", sa.BigInteger),
        sa.Column("set_at", sa.Float(precision=53), nullable=False),
    )
    sessions = sa.Table(
        f"ss_retention_sessions{suffix}", metadata,
        sa.Column("app_name", sa.String, primary_key=True),
        sa.Column("user_id", sa.String, primary_key=True),
        sa.Column("session_id", sa.String, primary_key=True),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("since", sa.Float(precision=53), nullable=False),
        sa.Column("messages", sa.BigInteger, nullable=False),
        sa.Index(f"ss_retention_sessions{suffix}_idle", "app_name", "status", "since",
                 "user_id", "session_id"),
        sa.Index(f"ss_retention_sessions{suffix}_length", "app_name", "messages", "user_id",
                 "session_id"),
    )
    return policies, sessions


Row = dict[str, Any]


class RetentionProjection(Projection):
    """The retention read model (name `retention`)."""

    name = "retention"
    version = 1

    def __init__(self, suffix: str = "") -> None:
        self.policies, self.sessions = make_tables(suffix)

    def tables(self) -> Sequence[sa.Table]:
        return (self.policies, self.sessions)

    def for_rebuild(self, suffix: str) -> RetentionProjection:
        return RetentionProjection(suffix)

    def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        dialect = dialect_of(conn)
        keys = list(dict.fromkeys(e.key for e in events if e.session_id))
        found = dialect.select_keyed(conn, self.sessions,
                                     [c.name for c in self.sessions.columns], keys)
        rows: dict[SessionKey, Row | None] = {
            SessionKey(*row[:3]): {"status": row[3], "since": row[4], "messages": row[5]}
            for row in found}
        policies: dict[str, RetentionSet | None] = {}
        for event in events:
            if event.session_id:
                rows[event.key] = _fold(rows.get(event.key), event)
            elif not event.user_id and isinstance(event.data, RetentionSet):
                policies[event.app_name] = event.data
                self._set_policy(conn, event)
        live = sorted((key, row) for key, row in rows.items() if row is not None)
        dialect.upsert(conn, self.sessions, [(*key, row["status"], row["since"],
                                              row["messages"]) for key, row in live])
        dialect.delete_keyed(conn, self.sessions,
                             [key for key, row in rows.items() if row is None])

    def _set_policy(self, conn: Connection, event: RecordedEvent) -> None:
        data = event.data
        assert isinstance(data, RetentionSet)
        dialect = dialect_of(conn)
        if RetentionPolicy.of(data).empty:
            dialect.delete_keyed(conn, self.policies, [(event.app_name,)])
            return
        dialect.upsert(conn, self.policies, [(
            event.app_name, data.archive_after, data.delete_after, data.purge_after,
            data.max_messages, event.recorded_at)])


def _fold(row: Row | None, event: RecordedEvent) -> Row | None:
    kind, at = event.type, event.recorded_at
    if kind == "SessionPurged":
        return None
    if row is None:
        row = {"status": ACTIVE, "since": at, "messages": 0}
    if kind == "SessionDeleted":
        if row["status"] != DELETED:
            row["status"], row["since"], row["messages"] = DELETED, at, 0
        return row
    if row["status"] == DELETED:
        return row
    row["status"] = next_status(row["status"], kind)
    if kind in _ACTIVITY:
        row["since"] = at
    if kind == "MessageAppended":
        row["messages"] += 1
    elif kind == "MessageRetracted":
        row["messages"] = max(0, row["messages"] - 1)
    elif kind == "HistoryCleared":
        row["messages"] = 0
    elif isinstance(event.data, HistoryTrimmed):
        row["messages"] = min(row["messages"], event.data.kept)
    if row["status"] == ENDED:
        row["messages"] = 0
    return row


Cursor = tuple[Any, str, str]
"""Where a scan of idle sessions stopped: (since, user_id, session_id) of its last row."""


class RetentionIndex(Queries):
    """Queries over the retention read model: policies and enforcement's candidates."""

    def __init__(self, db: Database, projection: RetentionProjection | None = None,
                 ready: Ready | None = None) -> None:
        super().__init__(db, ready)
        self.projection = projection or RetentionProjection()

    async def policies(self, app_name: str | None = None) -> dict[str, RetentionPolicy]:
        """The policy of every app that has one (or of `app_name`), by app."""
        p = self.projection.policies
        query = sa.select(p)
        if app_name is not None:
            query = query.where(p.c.app_name == app_name)
        return {row["app_name"]: RetentionPolicy(
                    archive_after=row["archive_after"], delete_after=row["delete_after"],
                    purge_after=row["purge_after"], max_messages=row["max_messages"])
                for row in await self.rows(query.order_by(p.c.app_name))}

    async def idle(self, app_name: str, status: str, before: float, after: Cursor | None,
                   limit: int) -> list[tuple[SessionKey, Cursor]]:
        """Sessions of the app in `status` whose `since` is before `before`, oldest first,
        after `after`: a range of the `(app, status, since)` index, in its order."""
        s = self.projection.sessions
        query = sa.select(s.c.user_id, s.c.session_id, s.c.since).where(
            s.c.app_name == app_name, s.c.status == status, s.c.since < before)
        if after is not None:
            query = query.where(sa.tuple_(s.c.since, s.c.user_id, s.c.session_id)
                                > sa.tuple_(*after))
        rows = await self.rows(query.order_by(s.c.since, s.c.user_id, s.c.session_id)
                               .limit(limit))
        return [(SessionKey(app_name, r["user_id"], r["session_id"]),
                 (r["since"], r["user_id"], r["session_id"])) for r in rows]

    async def longer_than(self, app_name: str, messages: int, after: Cursor | None,
                          limit: int) -> list[tuple[SessionKey, Cursor]]:
        """Sessions of the app showing more than `messages` messages, after `after`: a range
        of the `(app, messages)` index, in its order (ended and deleted ones show 0)."""
        s = self.projection.sessions
        query = sa.select(s.c.user_id, s.c.session_id, s.c.messages).where(
            s.c.app_name == app_name)
        if after is None:
            query = query.where(s.c.messages > messages)
        else:  # past `after` (which shows more than `messages`): one range, in index order
            query = query.where(sa.tuple_(s.c.messages, s.c.user_id, s.c.session_id)
                                > sa.tuple_(*after))
        rows = await self.rows(query.order_by(s.c.messages, s.c.user_id, s.c.session_id)
                               .limit(limit))
        return [(SessionKey(app_name, r["user_id"], r["session_id"]),
                 (r["messages"], r["user_id"], r["session_id"])) for r in rows]
