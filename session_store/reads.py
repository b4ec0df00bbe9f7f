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
from typing import Any

import msgspec
import sqlalchemy as sa

from projections.heads import HEADS, TAGS
from session_store.domain.events import MessageAppended, RecordedEvent, SessionKey
from session_store.domain.lifecycle import ACTIVE, EXPIRED, Head
from session_store.domain.snapshot import SessionPage, snapshot
from session_store.errors import InvalidEvent
from session_store.gc_pause import fewer_collections
from session_store.storage.codec import RECORD_LIST, decode_head, decode_rows
from session_store.storage.database import Database

_HEADS_SQL = (f"SELECT body FROM {HEADS.name} WHERE app_name = ? AND ("
              "(user_id = ? AND session_id IN (?, '')) OR (user_id = '' AND session_id = ''))")
"""A session's head with its app's and its user's scope rows."""


@functools.lru_cache(maxsize=64)
def _messages_sql(newest_first: bool, since: bool, hidden: int = 0, summary: bool = False
                  ) -> str:
    """The visible messages' statement: versions after `history_from` up to the head's,
    minus `hidden` ranges a rewind took out; with `summary`, also the compaction whose
    summary opens the history (one more row, by its version)."""
    query = (f"SELECT {RECORD_LIST} FROM ss_events WHERE app_name = ? AND user_id = ? "
             "AND session_id = ? AND type = 'MessageAppended' AND version > ? AND version <= ?")
    if since:
        query += " AND recorded_at >= ?"
    query += " AND NOT (version > ? AND version <= ?)" * hidden
    query += " ORDER BY version DESC LIMIT ?" if newest_first else " ORDER BY version"
    if not summary:
        return query
    return (f"SELECT * FROM ({query}) AS visible UNION ALL SELECT {RECORD_LIST} FROM ss_events "
            "WHERE app_name = ? AND user_id = ? AND session_id = ? AND version = ?")


def _messages_params(head: Head, since: float | None, limit: int | None) -> list[Any]:
    params: list[Any] = [head.app_name, head.user_id, head.session_id, head.history_from,
                         head.version]
    if since is not None:
        params.append(since)
    for after, through in head.hidden:
        params += (after, through)
    if limit is not None:
        params.append(limit + len(head.retracted))
    if head.summary_version:
        params += (head.app_name, head.user_id, head.session_id, head.summary_version)
    return params

Loaded = tuple[Head | None, dict[str, Any], list[RecordedEvent]]


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
    return _split_heads(await db.dialect.fetch(db, _HEADS_SQL, list(key)))


async def load_session(db: Database, key: SessionKey, *, limit: int | None,
                       since: float | None) -> Loaded:
    """The session's head, its merged app/user scope state, and its visible messages
    (the last `limit` ones recorded at or after `since`), oldest first, in one hop."""
    found: list[tuple[Head | None, dict[str, Any]]] = []

    def messages(bodies: Sequence[Any]) -> tuple[str, list[Any]] | None:
        head, scoped = _split_heads(bodies)
        found.append((head, scoped))
        if head is None or head.deleted or limit == 0:
            return None
        query = _messages_sql(limit is not None, since is not None, len(head.hidden),
                              bool(head.summary_version))
        return query, _messages_params(head, since, limit)

    _, rows = await db.dialect.fetch_then(db, _HEADS_SQL, list(key), messages)
    head, scoped = found[0]
    with fewer_collections():  # a long session decodes into thousands of objects
        events = decode_rows(rows) if rows else []
    summary = None
    if head is not None and head.summary_version:
        summary = next((r for r in events if r.version == head.summary_version), None)
        events = sorted((r for r in events if r is not summary), key=lambda r: r.version)
    elif limit is not None:
        events.reverse()
    if head is not None and head.retracted:
        retracted = set(head.retracted)
        # (a purge racing this read leaves erased rows: they are not messages any more)
        events = [r for r in events
                  if isinstance(r.data, MessageAppended) and r.data.message.id not in retracted]
        if limit is not None:
            events = events[-limit:]
    if summary is not None and (since is None or summary.recorded_at >= since) and (
            limit is None or len(events) < limit):
        events.insert(0, summary)  # it stands for the messages before these
    return head, scoped, events


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
    sessions = [snapshot(h, {**user_states.get(h.user_id, {}), **app_state}, ())
                for h in heads]
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

