"""Checks of the facade's arguments: refuse bad input with `InvalidEvent` before anything
is written."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from projections.heads import key_scope
from session_store import validation
from session_store.errors import InvalidEvent
from session_store.events import Event, SessionKey, Usage
from session_store.session import Session


def key_of(app_name: Any, user_id: Any, session_id: Any) -> SessionKey:
    return SessionKey(validation.check_id(app_name, "app_name"),
                      validation.check_id(user_id, "user_id"),
                      validation.check_id(session_id, "session_id"))


def ref(session: Any) -> SessionKey:
    if isinstance(session, Session):
        return session.key
    if isinstance(session, tuple) and len(session) == 3:
        return key_of(*session)
    raise InvalidEvent(f"expected a Session or SessionKey, not {type(session).__name__}")


def without_temp(state: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if key_scope(k) != "temp"}


def tags_of(tags: Sequence[str] | None) -> list[str]:
    if tags is None:
        return []
    if isinstance(tags, str) or not all(isinstance(t, str) and t for t in tags):
        raise InvalidEvent(f"tags must be a list of non-empty strings, not {tags!r}")
    return list(dict.fromkeys(tags))


def timeout_of(timeout: float | timedelta | None) -> float | None:
    if timeout is None:
        return None
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
        raise InvalidEvent(f"timeout must be seconds > 0 or a positive timedelta, "
                           f"not {timeout!r}")
    validation.check_non_negative(seconds, "timeout")
    return float(seconds)


def check_count(value: Any, what: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise InvalidEvent(f"{what} must be an int >= 0 or None, not {value!r}")


def check_event(event: Any) -> None:
    if not isinstance(event, Event):
        raise InvalidEvent(f"expected a session_store.Event, not {type(event).__name__}")
    if not isinstance(event.role, str) or not event.role.strip():
        raise InvalidEvent("event role must be a non-empty string")
    validation.check_id(event.id, "event id")
    if event.usage is not None:
        if not isinstance(event.usage, Usage):
            raise InvalidEvent(f"event usage must be a session_store.Usage, not "
                               f"{type(event.usage).__name__}")
        for value, what in ((event.usage.tokens_in, "usage.tokens_in"),
                            (event.usage.tokens_out, "usage.tokens_out")):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidEvent(f"{what} must be an int >= 0, not {value!r}")
    if event.response_time is not None:
        validation.check_non_negative(event.response_time, "response_time")
    if event.state_delta is not None:
        validation.check_mapping(event.state_delta, "state_delta")
    validation.check_non_negative(event.timestamp, "timestamp")
