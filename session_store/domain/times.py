"""What a time filter means, everywhere: one rule for every "since" / "after" argument.

A time is `float` (or `int`) epoch seconds, or an aware `datetime`; a naive `datetime` is
refused (`InvalidEvent`: its time zone would be a guess). A filter "since t" (also spelled
`after`, `after_timestamp`, `messages_after`) keeps the messages whose own time
(`Event.timestamp`, the runner's stamp) is at or after `t`: `timestamp >= t`, inclusive,
like Google ADK's `after_timestamp`. `until` is inclusive too.
"""

from __future__ import annotations

import math
from datetime import datetime

from session_store.errors import InvalidEvent

Instant = float | int | datetime
"""What a time argument accepts."""


def seconds(value: object, what: str) -> float:
    """`value` (epoch seconds >= 0, or an aware datetime) as epoch seconds."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidEvent(f"{what} is a naive datetime ({value.isoformat()}): give it a "
                               "time zone (e.g. datetime.now(timezone.utc)) or epoch seconds")
        value = value.timestamp()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidEvent(f"{what} must be epoch seconds or an aware datetime, not "
                           f"{type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise InvalidEvent(f"{what} must be a finite time >= 0 (epoch seconds), not {value!r}")
    return float(value)


def optional_seconds(value: object, what: str) -> float | None:
    return None if value is None else seconds(value, what)


def moment(value: object, what: str) -> float:
    """As `seconds`, but an aware datetime before 1970 is a moment too (negative epoch
    seconds: before anything was recorded), for "the state as of then"."""
    if isinstance(value, datetime) and value.utcoffset() is not None:
        return value.timestamp()
    return seconds(value, what)
