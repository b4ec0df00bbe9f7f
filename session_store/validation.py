"""Input checks that run before anything is written: ids, JSON values, sizes.

Every check raises `InvalidEvent` with the path of the offending value, so a
caller can tell which field to fix.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

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
