"""Read queries behind the facade: session heads, recent messages, pages of sessions.

Reads never fold history: a session's current state comes from its head row
(kept inline by the heads projection) and its messages from the log's
(session, version) index, newest first, so `get_session(num_recent_events=k)`
costs O(k). Point reads are plain SQL on the driver connection
(`Dialect.fetch`, `fetch_then`); pages of sessions are SQLAlchemy Core.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Sequence
from typing import Any, NamedTuple

import msgspec
import sqlalchemy as sa

from projections.heads import HEADS, TAGS
from session_store.domain.events import (
    HistoryCompacted,
    InteractionTracked,
    MessageAppended,
    RecordedEvent,
    SessionKey,
)
from session_store.domain.lifecycle import ACTIVE, EXPIRED, Head
from session_store.domain.messages import StoredMessage
from session_store.domain.snapshot import SUMMARY, SessionPage, snapshot
from session_store.errors import InvalidEvent
from session_store.gc_pause import fewer_collections
from session_store.storage.codec import RECORD_LIST, decode_head, decode_rows
from session_store.storage.database import Database

_HEADS_SQL = (f"SELECT body FROM {HEADS.name} WHERE "
              "(app_name = ? AND user_id = ? AND session_id IN (?, '')) "
              "OR (app_name = ? AND user_id = '' AND session_id = '')")
"""A session's head with its app's and its user's scope rows. Each branch names the whole
primary key, so SQLite looks the rows up in it (a multi-index OR); with `app_name` taken
out of the OR it searched every session of the app (42 ms a read at 50,000 sessions)."""


def _heads_params(key: SessionKey) -> list[str]:
    return [*key, key.app_name]


@functools.lru_cache(maxsize=64)
def _messages_sql(newest_first: bool, tracked: bool, hidden: int = 0, summary: bool = False
                  ) -> str:
    """The visible messages' statement: versions after `history_from` up to the head's,
    minus `hidden` ranges a rewind took out, newest first (`LIMIT ?`) or all in order;
    `tracked`: with the session's tracked interactions (for statistics of the whole
    session); `summary`: also the compaction whose summary opens the history (one more
    row, by its version)."""
    query = (f"SELECT {RECORD_LIST} FROM ss_events WHERE app_name = ? AND user_id = ? "
             "AND session_id = ? AND ((type = 'MessageAppended' AND version > ?)"
             + (" OR type = 'InteractionTracked'" if tracked else "") + ") AND version <= ?")
    query += " AND NOT (version > ? AND version <= ?)" * hidden
    query += " ORDER BY version DESC LIMIT ?" if newest_first else " ORDER BY version"
    if not summary:
        return query
    return (f"SELECT * FROM ({query}) AS visible UNION ALL SELECT {RECORD_LIST} FROM ss_events "
            "WHERE app_name = ? AND user_id = ? AND session_id = ? AND version = ?")


def _messages_params(head: Head, limit: int | None) -> list[Any]:
    params: list[Any] = [head.app_name, head.user_id, head.session_id, head.history_from,
                         head.version]
    for after, through in head.hidden:
        params += (after, through)
    if limit is not None:
        params.append(limit + len(head.retracted))
    if head.summary_version:
        params += (head.app_name, head.user_id, head.session_id, head.summary_version)
    return params

class Loaded(NamedTuple):
    head: Head | None
    scoped: dict[str, Any]
    messages: list[RecordedEvent]
    tracked_times: list[float]
    """Response times (> 0) of the session's tracked interactions, for a full read."""


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


async def load_heads(db: Database, key: SessionKey) -> tuple[Head | None, dict[str, Any]]:
    """The session's head and the merged app/user scope state, in one statement."""
    return _split_heads(await db.dialect.fetch(db, _HEADS_SQL, _heads_params(key)))


async def load_session(db: Database, key: SessionKey, *, limit: int | None,
                       since: float | None) -> Loaded:
    """The session's head, its merged app/user scope state, and its visible messages
    (the last `limit` ones whose own time is at or after `since`), oldest first, in one
    hop; with neither, the response times of its tracked interactions too."""
    whole = limit is None and since is None
    found: list[tuple[Head | None, dict[str, Any]]] = []

    def messages(bodies: Sequence[Any]) -> tuple[str, list[Any]] | None:
        head, scoped = _split_heads(bodies)
        found.append((head, scoped))
        if head is None or head.deleted or limit == 0:
            return None
        # with `since`, every message is read: its own time is in its body
        windowed = limit is not None and since is None
        query = _messages_sql(windowed, whole and head.tracked_timed > 0, len(head.hidden),
                              bool(head.summary_version))
        return query, _messages_params(head, limit if windowed else None)

    _, rows = await db.dialect.fetch_then(db, _HEADS_SQL, _heads_params(key), messages)
    head, scoped = found[0]
    with fewer_collections():  # a long session decodes into thousands of objects
        events = decode_rows(rows) if rows else []
    summary = None
    if head is not None and head.summary_version:
        summary = next((r for r in events if r.version == head.summary_version), None)
        events = sorted((r for r in events if r is not summary), key=lambda r: r.version)
    elif limit is not None and since is None:
        events.reverse()
    tracked = [r.data.response_time for r in events if isinstance(r.data, InteractionTracked)
               and r.data.response_time > 0]
    retracted = set(head.retracted) if head is not None else set()
    # (a purge racing this read leaves erased rows: they are not messages any more)
    events = [r for r in events
              if isinstance(r.data, MessageAppended) and r.data.message.id not in retracted
              and (since is None or r.data.message.timestamp >= since)]
    if limit is not None:
        events = events[-limit:] if limit else []
    if (summary is not None and isinstance(summary.data, HistoryCompacted)
            and (since is None or summary.data.summary.timestamp >= since)
            and (limit is None or len(events) < limit)):
        events.insert(0, summary)  # it stands for the messages before these
    return Loaded(head, scoped, events, tracked)


_TOMBSTONE = ("SELECT version FROM ss_events WHERE app_name = ? AND user_id = ? AND "
              "session_id = ? AND type IN ('SessionDeleted', 'SessionPurged') LIMIT 1")


_VERSION_AT = ("SELECT max(version) FROM ss_events WHERE app_name = ? AND user_id = ? AND "
               "session_id = ? AND recorded_at <= ?")


async def version_at(db: Database, key: SessionKey, at: float) -> int | None:
    """The version of the session's last event recorded at or before `at` (None: none was)."""
    rows = await db.dialect.fetch(db, _VERSION_AT, [*key, at])
    found = rows[0][0] if rows else None
    return None if found is None else int(found)


async def tombstoned(db: Database, key: SessionKey) -> bool:
    """Whether the log records a delete (or purge) of the session: then no version is visible."""
    return bool(await db.dialect.fetch(db, _TOMBSTONE, list(key)))


# --- pages of sessions ---------------------------------------------------------------

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


async def list_page(db: Database, query: Any, *, app_name: str, limit: int) -> SessionPage:
    """The page of session summaries `query` (from `page_query`) selects."""
    async with db.engine.connect() as conn:
        heads = [decode_head(row[0]) for row in (await conn.execute(query)).all()]
        more = len(heads) > limit
        heads = heads[:limit]
        app_state, user_states = await _scope_states(conn, app_name,
                                                     {h.user_id for h in heads})
    sessions = [snapshot(h, {**user_states.get(h.user_id, {}), **app_state}, (),
                         covers=SUMMARY) for h in heads]
    return SessionPage(sessions, encode_cursor(heads[-1]) if more else None)


async def scope_state(db: Database, stream: SessionKey) -> dict[str, Any]:
    """The state of a scope stream (`(app, "", "")` or `(app, user, "")`), keys as stored."""
    async with db.engine.connect() as conn:
        app_state, user_states = await _scope_states(
            conn, stream.app_name, {stream.user_id} if stream.user_id else set())
    return user_states.get(stream.user_id, {}) if stream.user_id else app_state


async def _scope_states(conn: Any, app_name: str, users: set[str]
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


async def overdue_heads(db: Database, now: float) -> list[Head]:
    """Active sessions idle past their own timeout."""
    query = sa.select(HEADS.c.body).where(
        HEADS.c.status == ACTIVE, HEADS.c.expires_at < now, HEADS.c.deleted == sa.false(),
        HEADS.c.session_id != "")
    async with db.engine.connect() as conn:
        return [decode_head(row[0]) for row in (await conn.execute(query)).all()]


async def app_names(db: Database) -> list[str]:
    """Every app with a session, in order."""
    query = (sa.select(HEADS.c.app_name).distinct()
             .where(HEADS.c.session_id != "").order_by(HEADS.c.app_name))
    async with db.engine.connect() as conn:
        return [row[0] for row in (await conn.execute(query)).all()]


async def find_sessions(db: Database, session_id: str, *, app_name: str | None = None,
                        user_id: str | None = None, limit: int = 20) -> list[SessionKey]:
    """Keys of the visible sessions with this id, narrowed by app and user when given."""
    where = [HEADS.c.session_id == session_id, HEADS.c.deleted.is_(False)]
    if app_name is not None:
        where.append(HEADS.c.app_name == app_name)
    if user_id is not None:
        where.append(HEADS.c.user_id == user_id)
    query = (sa.select(HEADS.c.app_name, HEADS.c.user_id).where(*where)
             .order_by(HEADS.c.app_name, HEADS.c.user_id).limit(limit))
    async with db.engine.connect() as conn:
        return [SessionKey(a, u, session_id) for a, u in (await conn.execute(query)).all()]



_MESSAGE_SQL = (f"SELECT {RECORD_LIST} FROM ss_events WHERE event_id = ? AND app_name = ? "
                "AND user_id = ? AND session_id = ? AND type = 'MessageAppended'")
_AT_SQL = f"SELECT {RECORD_LIST} FROM ss_events WHERE position = ?"


async def find_message(db: Database, key: SessionKey, message_id: str,
                       position: int | None = None) -> tuple[Head | None, StoredMessage | None]:
    """The session's head and its message `message_id`, found through the log's event-id
    index (a message's event id is its id when appended with `append_event(s)` or imported)
    or, given its `position` (from the history read model), the log's primary key."""

    def message(bodies: Sequence[Any]) -> tuple[str, list[Any]] | None:
        if position is not None:
            return _AT_SQL, [position]
        return _MESSAGE_SQL, [message_id, *key]

    bodies, rows = await db.dialect.fetch_then(db, _HEADS_SQL, _heads_params(key), message)
    head, _ = _split_heads(bodies)
    records = decode_rows(rows) if rows else []
    if head is None or head.deleted or not records:
        return head, None
    record = records[0]
    data = record.data
    if record.key != key or not isinstance(data, MessageAppended) or data.message.id != message_id:
        return head, None
    return head, StoredMessage(
        message=data.message, app_name=key.app_name, user_id=key.user_id,
        session_id=key.session_id, version=record.version, position=record.position,
        recorded_at=record.recorded_at, retracted=message_id in head.retracted,
        cleared=record.version <= head.history_from)
