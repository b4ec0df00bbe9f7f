"""Finding sessions for the command line: every app, a session by its id alone.

The facade's listings are scoped by app (as the API wants); an operator at a
terminal often knows only a session id: `SessionStore.find_sessions` and
`app_names` answer that.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from session_store.domain.events import SessionKey
from session_store.domain.snapshot import Session
from session_store.errors import InvalidEvent, SessionNotFound
from session_store.store import SessionStore


class AmbiguousSession(SessionNotFound):
    """The id names sessions of several users or apps: say which with --app/--user."""


async def find_session(store: SessionStore, session_id: str, *, app_name: str | None = None,
                       user_id: str | None = None) -> SessionKey:
    """The key of the visible session with this id (narrowed by app and user when given)."""
    found = await store.find_sessions(session_id, app_name=app_name, user_id=user_id)
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
    apps = [app_name] if app_name is not None else await store.app_names()
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


async def page_of_sessions(store: SessionStore, *, app_name: str | None = None,
                           user_id: str | None = None, status: str | None = None,
                           limit: int = 50, cursor: str | None = None, **filters: Any
                           ) -> tuple[list[Session], str | None]:
    """One page of visible sessions across apps (app by app), and the cursor of the next
    page (None after the last). The cursor names the app and the store's own cursor in it.
    `filters` are `list_sessions`' others (`tags`, `since`)."""
    apps = [app_name] if app_name is not None else await store.app_names()
    start, inner = _decode_cursor(cursor) if cursor else (apps[0] if apps else "", None)
    apps = [app for app in apps if app >= start]
    sessions: list[Session] = []
    for index, app in enumerate(apps):
        page = await store.list_sessions(app_name=app, user_id=user_id, status=status,
                                         limit=min(limit - len(sessions), 10_000),
                                         cursor=inner if app == start else None, **filters)
        sessions.extend(page.sessions)
        if page.next_cursor is not None:
            return sessions, _encode_cursor(app, page.next_cursor)
        if len(sessions) >= limit:
            following = apps[index + 1:]
            return sessions, _encode_cursor(following[0], None) if following else None
    return sessions, None


def _encode_cursor(app: str, inner: str | None) -> str:
    raw = json.dumps([app, inner], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[str, str | None]:
    try:
        app, inner = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if isinstance(app, str) and (inner is None or isinstance(inner, str)):
            return app, inner
    except (ValueError, TypeError):
        pass
    raise InvalidEvent(f"--cursor {cursor!r} is not a cursor `session-store sessions` printed")
