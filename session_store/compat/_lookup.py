"""What the compat modules share: a bare session id resolved through the store's index,
and the seeds' `datetime`s to and from the store's epoch seconds."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from session_store.domain.events import SessionKey
from session_store.errors import AmbiguousSession, InvalidEvent, SessionIdNotFound
from session_store.store import SessionStore


async def resolve(store: SessionStore, session_id: str, *, app_name: str | None = None,
                  user_id: str | None = None) -> SessionKey:
    """The one visible session with this id (in `app_name`, of `user_id`, when given).

    `find_sessions` reads the heads' index by session id (no scan). `SessionIdNotFound`
    when none has it, `AmbiguousSession` when several apps or users do.
    """
    if not isinstance(session_id, str):
        raise InvalidEvent(f"session_id must be a string, not {type(session_id).__name__}")
    found = await store.find_sessions(session_id, app_name=app_name, user_id=user_id, limit=2)
    if not found:
        where = f" in app {app_name!r}" if app_name is not None else ""
        raise SessionIdNotFound(f"no session {session_id!r}{where}")
    if len(found) > 1:
        raise AmbiguousSession(
            f"session id {session_id!r} names sessions of several users or apps "
            f"({', '.join(f'{k.app_name}/{k.user_id}' for k in found)}, ...): "
            "give the user (and app)")
    return found[0]


def epoch(value: datetime | float | int, what: str) -> float:
    """Epoch seconds of a `datetime` (naive means local time, as `datetime.now()`) or of a
    number of seconds."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidEvent(f"{what} must be a datetime or epoch seconds, not "
                           f"{type(value).__name__}")
    return float(value)


def local(seconds: float) -> datetime:
    """A naive local `datetime` of epoch seconds: what the seeds' `datetime.now()` compares
    with."""
    return datetime.fromtimestamp(seconds)


def seconds_of(days: float, what: str = "days") -> float:
    """`days` as seconds; `InvalidEvent` for a negative or non-number."""
    if (isinstance(days, bool) or not isinstance(days, int | float) or not math.isfinite(days)
            or days < 0 or days > _MAX_DAYS):
        raise InvalidEvent(f"{what} must be a non-negative number, not {days!r}")
    return timedelta(days=days).total_seconds()


_MAX_DAYS = 36_500
"""A hundred years: longer spans name no session the store can hold."""
