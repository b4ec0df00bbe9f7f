"""Every input check, in one place: ids, keys, JSON values, counts, events, sizes.

The checks run before anything is written. Each raises `InvalidEvent` with the
path of the offending value, so a caller can tell which field to fix.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from session_store.domain.events import Event, SessionKey, Usage
from session_store.domain.lifecycle import STATUSES
from session_store.domain.snapshot import Session
from session_store.errors import InvalidEvent

MAX_ID_LENGTH = 256
"""Longest app name, user id, session id or event id accepted, in characters."""

DEFAULT_MAX_EVENT_BYTES = 1024 * 1024
"""Default ceiling on one encoded event payload (1 MiB); a store setting."""

MAX_JSON_DEPTH = 64

_CONTROL = re.compile("[\x00-\x1f\x7f]")


def check_id(value: object, what: str) -> str:
    """A non-empty string of at most MAX_ID_LENGTH characters without control characters."""
    if not isinstance(value, str):
        raise InvalidEvent(f"{what} must be a string, not {type(value).__name__}")
    if not value:
        raise InvalidEvent(f"{what} must not be empty")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidEvent(f"{what} is {len(value)} characters long; the limit is {MAX_ID_LENGTH}")
    if _CONTROL.search(value) is not None:
        raise InvalidEvent(f"{what} must not contain control characters")
    return value


def check_json(value: Any, what: str, _depth: int = 0) -> None:
    """Refuse anything that would not survive a JSON round trip unchanged.

    Accepts dicts with string keys, lists, tuples, str, int, finite float,
    bool and None. NaN and infinities are refused (JSON has no spelling for
    them), as are bytes, sets, dates and other objects an encoder would
    silently turn into something else.
    """
    if _depth > MAX_JSON_DEPTH:
        raise InvalidEvent(f"{what} is nested deeper than {MAX_JSON_DEPTH} levels")
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidEvent(f"{what} is {value!r}; JSON has no NaN or infinity")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidEvent(f"{what} has a key {key!r} that is not a string")
            check_json(item, f"{what}[{key!r}]", _depth + 1)
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_json(item, f"{what}[{index}]", _depth + 1)
        return
    raise InvalidEvent(f"{what} holds a {type(value).__name__}, which is not JSON-representable")


def check_mapping(value: object, what: str) -> dict[str, Any]:
    """A JSON object (dict with string keys); returns a plain dict copy."""
    if not isinstance(value, Mapping):
        raise InvalidEvent(f"{what} must be a mapping, not {type(value).__name__}")
    check_json(value, what)
    return dict(value)


def check_non_negative(value: object, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidEvent(f"{what} must be a number, not {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise InvalidEvent(f"{what} must be a finite number >= 0, not {value!r}")


# --- the facade's arguments ----------------------------------------------------------

def key_of(app_name: Any, user_id: Any, session_id: Any) -> SessionKey:
    return SessionKey(check_id(app_name, "app_name"),
                      check_id(user_id, "user_id"),
                      check_id(session_id, "session_id"))


def ref(session: Any) -> SessionKey:
    if isinstance(session, Session):
        return session.key
    if isinstance(session, tuple) and len(session) == 3:
        return key_of(*session)
    raise InvalidEvent(f"expected a Session or SessionKey, not {type(session).__name__}")


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
    check_non_negative(seconds, "timeout")
    return float(seconds)


def check_count(value: Any, what: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise InvalidEvent(f"{what} must be an int >= 0 or None, not {value!r}")


def check_event(event: Any) -> None:
    if not isinstance(event, Event):
        raise InvalidEvent(f"expected a session_store.Event, not {type(event).__name__}")
    if not isinstance(event.role, str) or not event.role.strip():
        raise InvalidEvent("event role must be a non-empty string")
    check_id(event.id, "event id")
    if event.usage is not None:
        if not isinstance(event.usage, Usage):
            raise InvalidEvent(f"event usage must be a session_store.Usage, not "
                               f"{type(event.usage).__name__}")
        check_tokens(event.usage.tokens_in, "usage.tokens_in")
        check_tokens(event.usage.tokens_out, "usage.tokens_out")
    if event.response_time is not None:
        check_non_negative(event.response_time, "response_time")
    if event.state_delta is not None:
        check_mapping(event.state_delta, "state_delta")
    check_non_negative(event.timestamp, "timestamp")


def check_stream_key(key: Sequence[Any]) -> SessionKey:
    """A stream's key: a session's, or a scope stream's ("" for its user and session)."""
    app, user, session = key
    check_id(app, "app_name")
    if user != "":
        check_id(user, "user_id")
    if session != "":
        check_id(session, "session_id")
    return SessionKey(app, user, session)


def check_expected_version(value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or value < 0):
        raise InvalidEvent(f"expected_version must be an int >= 0 or None, not {value!r}")


def check_tokens(value: Any, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidEvent(f"{what} must be an int >= 0, not {value!r}")


def check_status(status: Any) -> None:
    if status is not None and status not in STATUSES:
        raise InvalidEvent(f"status must be one of {STATUSES}, not {status!r}")


def check_page_limit(limit: Any) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
        raise InvalidEvent(f"limit must be an int from 1 to 10000, not {limit!r}")
