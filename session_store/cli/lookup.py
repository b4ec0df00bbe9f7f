"""Finding sessions for the command line: every app, a session by its id alone.

The facade's listings are scoped by app (as the API wants); an operator at a
terminal often knows only a session id. These read the session-heads read
model directly, read-only.
"""

from __future__ import annotations

import sqlalchemy as sa

from projections.heads import HEADS
from session_store.errors import SessionNotFound
from session_store.events import SessionKey
from session_store.session import Session
from session_store.store import SessionStore


class AmbiguousSession(SessionNotFound):
    """The id names sessions of several users or apps: say which with --app/--user."""


async def app_names(store: SessionStore) -> list[str]:
    query = (sa.select(HEADS.c.app_name).distinct().where(HEADS.c.session_id != "")
             .order_by(HEADS.c.app_name))
    async with store.db.engine.connect() as conn:
        return [row[0] for row in (await conn.execute(query)).all()]


async def find_session(store: SessionStore, session_id: str, *, app_name: str | None = None,
                       user_id: str | None = None) -> SessionKey:
    """The key of the visible session with this id (narrowed by app and user when given)."""
    where = [HEADS.c.session_id == session_id, HEADS.c.deleted.is_(False)]
    if app_name is not None:
        where.append(HEADS.c.app_name == app_name)
    if user_id is not None:
        where.append(HEADS.c.user_id == user_id)
    query = sa.select(HEADS.c.app_name, HEADS.c.user_id).where(*where).limit(20)
    async with store.db.engine.connect() as conn:
        found = [SessionKey(a, u, session_id) for a, u in (await conn.execute(query)).all()]
    if not found:
        scope = "".join(f" {what} {value!r}" for what, value in
                        (("in app", app_name), ("of user", user_id)) if value is not None)
        raise SessionNotFound(f"no session {session_id!r}{scope}: `session-store sessions` "
                              "lists the sessions this database holds")
    if len(found) > 1:
        owners = ", ".join(f"{k.app_name}/{k.user_id}" for k in found)
        raise AmbiguousSession(f"session id {session_id!r} exists for several owners "
                               f"({owners}): say which with --app and --user")
    return found[0]


async def all_sessions(store: SessionStore, *, app_name: str | None = None,
                       user_id: str | None = None, status: str | None = None,
                       limit: int | None = None) -> list[Session]:
    """Visible sessions of one app or of every app, oldest activity first within an app."""
    apps = [app_name] if app_name is not None else await app_names(store)
    sessions: list[Session] = []
    for app in apps:
        cursor: str | None = None
        while limit is None or len(sessions) < limit:
            page = await store.list_sessions(app_name=app, user_id=user_id, status=status,
                                             limit=1000, cursor=cursor)
            sessions.extend(page.sessions)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    return sessions if limit is None else sessions[:limit]
