"""Read queries behind the facade: session heads, recent messages, session pages.

Reads never fold history: a session's current state comes from its head row
(kept inline by the heads projection) and its messages from the log's
(session, version) index, newest first, so `get_session(num_recent_events=k)`
costs O(k).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Sequence
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from projections.heads import ACTIVE, EXPIRED, HEADS, TAGS, Head, decode_head
from session_store.database import PointReaders
from session_store.errors import InvalidEvent
from session_store.events import MessageAppended, RecordedEvent, SessionKey
from session_store.gc_pause import fewer_collections
from session_store.records import RECORD_COLUMNS, decode_row, decode_rows
from session_store.schema import events
from session_store.session import Session, TrackedTotals

_KEY = (HEADS.c.app_name, HEADS.c.user_id, HEADS.c.session_id)

_HEADS_OF_SESSION = sa.select(HEADS.c.body).where(
    HEADS.c.app_name == sa.bindparam("a"),
    sa.or_(
        sa.and_(HEADS.c.user_id == sa.bindparam("u"),
                HEADS.c.session_id.in_([sa.bindparam("s"), ""])),
        sa.and_(HEADS.c.user_id == "", HEADS.c.session_id == ""),
    ),
)


def _messages_query(newest_first: bool, limited: bool, since: bool) -> Any:
    query = sa.select(*RECORD_COLUMNS).where(
        events.c.app_name == sa.bindparam("a"), events.c.user_id == sa.bindparam("u"),
        events.c.session_id == sa.bindparam("s"), events.c.type == "MessageAppended",
        events.c.version > sa.bindparam("after"), events.c.version <= sa.bindparam("upto"))
    if since:
        query = query.where(events.c.recorded_at >= sa.bindparam("since"))
    query = query.order_by(events.c.version.desc() if newest_first else events.c.version)
    return query.limit(sa.bindparam("limit")) if limited else query


_MESSAGES = {(n, lim, s): _messages_query(n, lim, s)
             for n in (False, True) for lim in (False, True) for s in (False, True)}


async def load_heads(conn: AsyncConnection, key: SessionKey) -> tuple[Head | None, dict[str, Any]]:
    """The session's head and the merged app/user scope state, in one query."""
    rows = (await conn.execute(_HEADS_OF_SESSION,
                               {"a": key[0], "u": key[1], "s": key[2]})).all()
    head: Head | None = None
    scoped: dict[str, Any] = {}
    for (body,) in rows:
        found = decode_head(body)
        if found.session_id:
            head = found
        else:
            scoped.update(found.state)
    return head, scoped


async def recent_messages(conn: AsyncConnection, head: Head, *, limit: int | None,
                          since: float | None, upto: int | None = None) -> list[RecordedEvent]:
    """Visible messages of a session, oldest first: the last `limit` ones, after `since`."""
    if limit == 0:
        return []
    retracted = set(head.retracted)
    params: dict[str, Any] = {"a": head.app_name, "u": head.user_id, "s": head.session_id,
                              "after": head.history_from,
                              "upto": upto if upto is not None else head.version}
    if since is not None:
        params["since"] = since
    if limit is not None:
        params["limit"] = limit + len(retracted)
    query = _MESSAGES[(limit is not None, limit is not None, since is not None)]
    rows = (await conn.execute(query, params)).all()
    found = [decode_row(row) for row in rows]
    if limit is not None:
        found.reverse()
    if retracted:
        found = [r for r in found if r.data.message.id not in retracted]  # type: ignore[union-attr]
        if limit is not None:
            found = found[-limit:]
    return found


_TOMBSTONE = sa.select(events.c.version).where(
    events.c.app_name == sa.bindparam("a"), events.c.user_id == sa.bindparam("u"),
    events.c.session_id == sa.bindparam("s"),
    events.c.type.in_(["SessionDeleted", "SessionPurged"])).limit(1)


async def tombstoned(conn: AsyncConnection, key: SessionKey) -> bool:
    """Whether the log records a delete (or purge) of the session: then no version is visible."""
    found = await conn.execute(_TOMBSTONE, {"a": key[0], "u": key[1], "s": key[2]})
    return found.first() is not None


# --- get_session in one hop -------------------------------------------------------------
# A read through SQLAlchemy's async layer costs several hops to the driver's thread per
# statement (execute, fetch, close); `load_session` runs its two plain-SQL statements on the
# driver connection, on SQLite inside one call on the thread of one of the database's
# `PointReaders` (outside SQLAlchemy's pool, whose checkout costs as much as the read).

_HEADS_SQL = (f"SELECT body FROM {HEADS.name} WHERE app_name = ? AND ("
              "(user_id = ? AND session_id IN (?, '')) OR (user_id = '' AND session_id = ''))")
_COLUMNS = ", ".join(column.name for column in RECORD_COLUMNS)


def _messages_sql(newest_first: bool, since: bool) -> str:
    query = (f"SELECT {_COLUMNS} FROM {events.name} WHERE app_name = ? AND user_id = ? "
             "AND session_id = ? AND type = 'MessageAppended' AND version > ? AND version <= ?")
    if since:
        query += " AND recorded_at >= ?"
    return query + (" ORDER BY version DESC LIMIT ?" if newest_first else " ORDER BY version")


def _numbered(query: str) -> str:
    """`?` placeholders as PostgreSQL's `$1, $2, ...`."""
    parts = query.split("?")
    return "".join(f"{part}${n}" for n, part in enumerate(parts[:-1], 1)) + parts[-1]


_SQLITE_MESSAGES = {(n, s): _messages_sql(n, s) for n in (False, True) for s in (False, True)}
_PG_MESSAGES = {k: _numbered(v) for k, v in _SQLITE_MESSAGES.items()}
_PG_HEADS = _numbered(_HEADS_SQL)

Loaded = tuple[Head | None, dict[str, Any], Sequence[Any]]


def _split_heads(bodies: Sequence[Any]) -> tuple[Head | None, dict[str, Any]]:
    head: Head | None = None
    scoped: dict[str, Any] = {}
    for (body,) in bodies:
        found = decode_head(bytes(body))
        if found.session_id:
            head = found
        else:
            scoped.update(found.state)
    return head, scoped


def _message_params(head: Head, limit: int | None, since: float | None) -> list[Any]:
    params: list[Any] = [head.app_name, head.user_id, head.session_id, head.history_from,
                         head.version]
    if since is not None:
        params.append(since)
    if limit is not None:
        params.append(limit + len(head.retracted))
    return params


def _load_sqlite(conn: Any, key: SessionKey, limit: int | None, since: float | None) -> Loaded:
    """Runs on aiosqlite's thread with its sqlite3 connection."""
    head, scoped = _split_heads(conn.execute(_HEADS_SQL, (key[0], key[1], key[2])).fetchall())
    if head is None or head.deleted or limit == 0:
        return head, scoped, ()
    query = _SQLITE_MESSAGES[(limit is not None, since is not None)]
    return head, scoped, conn.execute(query, _message_params(head, limit, since)).fetchall()


async def load_session(engine: AsyncEngine, key: SessionKey, *, limit: int | None,
                       since: float | None, readers: PointReaders | None = None
                       ) -> tuple[Head | None, dict[str, Any], list[RecordedEvent]]:
    """The session's head, its merged app/user scope state, and its visible messages
    (the last `limit` ones recorded at or after `since`), oldest first."""
    if readers is not None:
        head, scoped, rows = await readers.run(_load_sqlite, key, limit, since)
        return _visible(head, scoped, rows, limit)
    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        if engine.dialect.name == "postgresql":
            head, scoped = _split_heads(await raw.fetch(_PG_HEADS, *key))  # type: ignore[union-attr]
            rows = ()
            if head is not None and not head.deleted and limit != 0:
                rows = await raw.fetch(  # type: ignore[union-attr]
                    _PG_MESSAGES[(limit is not None, since is not None)],
                    *_message_params(head, limit, since))
        else:  # a driver without the shortcut: the SQLAlchemy path
            head, scoped = await load_heads(conn, key)
            if head is None or head.deleted:
                return head, scoped, []
            return head, scoped, await recent_messages(conn, head, limit=limit, since=since)
    return _visible(head, scoped, rows, limit)


def _visible(head: Head | None, scoped: dict[str, Any], rows: Sequence[Any],
             limit: int | None) -> tuple[Head | None, dict[str, Any], list[RecordedEvent]]:
    with fewer_collections():  # a long session decodes into thousands of objects
        found = decode_rows(rows) if rows else []
    if limit is not None:
        found.reverse()
    if head is not None and head.retracted:
        retracted = set(head.retracted)
        # (a purge racing this read leaves erased rows: they are not messages any more)
        found = [r for r in found
                 if isinstance(r.data, MessageAppended) and r.data.message.id not in retracted]
        if limit is not None:
            found = found[-limit:]
    return head, scoped, found


def snapshot(head: Head, scoped: dict[str, Any], messages: Sequence[RecordedEvent],
             now: float | None = None) -> Session:
    """The public `Session` of a head, its scope state and its messages."""
    status = head.status
    expires_at = head.expires_at
    if status == ACTIVE and expires_at is not None and expires_at < (now or time.time()):
        status = EXPIRED
    return Session(
        id=head.session_id, app_name=head.app_name, user_id=head.user_id, version=head.version,
        status=status, state={**head.state, **scoped}, metadata=head.metadata,
        tags=tuple(head.tags), events=tuple(messages), created_at=head.created_at,
        last_update_time=head.last_update_time, expires_at=expires_at,
        tracked=TrackedTotals(head.tracked_interactions, head.tracked_tokens_in,
                              head.tracked_tokens_out, head.tracked_response_time,
                              head.tracked_timed),
    )


# --- pages of sessions ---------------------------------------------------------------

STATUSES = ("active", "archived", "ended", "expired")


def encode_cursor(head: Head) -> str:
    raw = msgspec.json.encode([head.last_update_time, head.user_id, head.session_id])
    return base64.urlsafe_b64encode(raw).decode()


def decode_cursor(cursor: str) -> tuple[float, str, str]:
    if not isinstance(cursor, str):
        raise InvalidEvent(f"cursor must be a string from list_sessions, not "
                           f"{type(cursor).__name__}")
    try:
        at, user, session = msgspec.json.decode(base64.urlsafe_b64decode(cursor.encode()))
        return float(at), str(user), str(session)
    except (ValueError, TypeError, msgspec.DecodeError):
        raise InvalidEvent(f"cursor {cursor!r} was not made by list_sessions") from None


def page_query(*, app_name: str, user_id: str | None, status: str | None,
               tags: Sequence[str] | None, since: float | None, cursor: str | None,
               limit: int, now: float) -> Any:
    h = HEADS
    query = sa.select(h.c.body).where(h.c.app_name == app_name, h.c.session_id != "",
                                      h.c.deleted == sa.false())
    if user_id is not None:
        query = query.where(h.c.user_id == user_id)
    if status == "active":
        query = query.where(h.c.status == ACTIVE,
                            sa.or_(h.c.expires_at.is_(None), h.c.expires_at >= now))
    elif status == "expired":
        query = query.where(sa.or_(h.c.status == EXPIRED,
                                   sa.and_(h.c.status == ACTIVE, h.c.expires_at < now)))
    elif status is not None:
        query = query.where(h.c.status == status)
    for tag in tags or ():
        query = query.where(sa.exists().where(
            TAGS.c.app_name == h.c.app_name, TAGS.c.user_id == h.c.user_id,
            TAGS.c.session_id == h.c.session_id, TAGS.c.tag == tag))
    if since is not None:
        query = query.where(h.c.last_update_time >= since)
    if cursor is not None:
        query = query.where(sa.tuple_(h.c.last_update_time, h.c.user_id, h.c.session_id)
                            > sa.tuple_(*decode_cursor(cursor)))
    return query.order_by(h.c.last_update_time, h.c.user_id, h.c.session_id).limit(limit + 1)


async def scope_states(conn: AsyncConnection, app_name: str, users: set[str]
                       ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The app's `app:` state and each listed user's `user:` state."""
    query = sa.select(HEADS.c.body).where(
        HEADS.c.app_name == app_name, HEADS.c.session_id == "",
        HEADS.c.user_id.in_([*users, ""]))
    app_state: dict[str, Any] = {}
    user_states: dict[str, dict[str, Any]] = {}
    for (body,) in (await conn.execute(query)).all():
        head = decode_head(body)
        if head.user_id:
            user_states[head.user_id] = head.state
        else:
            app_state = head.state
    return app_state, user_states


async def overdue_heads(conn: AsyncConnection, now: float) -> list[Head]:
    """Active sessions idle past their own timeout."""
    query = sa.select(HEADS.c.body).where(
        HEADS.c.status == ACTIVE, HEADS.c.expires_at < now, HEADS.c.deleted == sa.false(),
        HEADS.c.session_id != "")
    return [decode_head(row[0]) for row in (await conn.execute(query)).all()]
