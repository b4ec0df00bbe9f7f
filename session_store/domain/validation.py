"""Every input check, in one place: ids, keys, JSON values, counts, events, sizes.

The checks run before anything is written. Each raises `InvalidEvent` with the
path of the offending value, so a caller can tell which field to fix.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

import msgspec

from session_store.domain.events import (
    PAYLOAD_TYPES,
    Event,
    HistoryCompacted,
    HistoryTrimmed,
    InteractionTracked,
    MessageAppended,
    MessageRetracted,
    Payload,
    RetentionSet,
    SessionCreated,
    SessionKey,
    TagsChanged,
    Usage,
)
from session_store.domain.lifecycle import STATUSES
from session_store.domain.snapshot import Session
from session_store.errors import InvalidEvent

MAX_ID_BYTES = 512
"""Longest app name, user id, session id, event id or tag accepted, in bytes of UTF-8.

Bytes, not characters: PostgreSQL refuses an index row over 2,704 bytes, and the widest
keys hold four ids (a session's tags: app, user, session, tag), 4 x (512 + 4) bytes with
their headers. 512 bytes is 512 ASCII characters, 170 of most CJK scripts, 128 emoji."""

DEFAULT_MAX_EVENT_BYTES = 1024 * 1024
"""Default ceiling on one encoded event payload (1 MiB); a store setting."""

MAX_JSON_DEPTH = 64

# --- the numbers a read model stores -------------------------------------------------
# Every backend stores these in 64-bit columns (BIGINT, double precision), and the read
# models add them up per session, user, app and day. The limits keep each value, and
# the sums of very many of them, inside what every backend stores; an event past them
# would be written to the log and then stop every catch-up read model.

MAX_INT64 = 2**63 - 1
"""Largest count (limits, versions) any backend binds: a signed 64-bit integer."""

MAX_TOKENS = 2**40
"""Most tokens one event may count, in or out (about 1.1e12: a hundred thousand times the
largest context windows of today's models). The user index and analytics sum tokens in
BIGINT columns; at this limit a single row holds 2**23 (8.4 million) such events before
int64 could overflow, and real usage is many orders of magnitude smaller."""

MAX_RESPONSE_TIME = 1_000_000.0
"""Longest response time, in seconds (11.6 days). Analytics keeps response times in whole
microseconds and sums them in BIGINT columns (`projections.tally`): 1e12 per event at most,
so a row holds 9.2 million events at the limit; its histogram needs 568 buckets."""

MAX_TIMESTAMP = 253_402_300_799.0
"""Latest time a caller may give, in epoch seconds: 9999-12-31 23:59:59 UTC, the last second
Python's `datetime` (and so every reader and the command line) can show. The earliest is 0
(1970-01-01)."""

MAX_TIMEOUT = 100 * 31_557_600.0
"""Longest session timeout, in seconds (100 Julian years): the expiry (last update plus the
timeout) stays a time every reader can show. No timeout (`None`) never expires."""

MAX_MESSAGE_METADATA_BYTES = 64 * 1024
"""Largest `Event.metadata`, in bytes of its JSON: it is copied into the history read model
beside the message, so it stays a small fraction of the payload limit."""

_CONTROL = re.compile("[\x00-\x1f\x7f]")
_json = msgspec.json.Encoder()


def check_id(value: object, what: str) -> str:
    """A non-empty string of valid Unicode, at most MAX_ID_BYTES bytes of UTF-8, without
    control characters (NUL included: PostgreSQL text cannot hold it)."""
    if not isinstance(value, str):
        raise InvalidEvent(f"{what} must be a string, not {type(value).__name__}")
    if not value:
        raise InvalidEvent(f"{what} must not be empty")
    size = len(value) if value.isascii() else len(check_text(value, what).encode())
    if size > MAX_ID_BYTES:
        raise InvalidEvent(f"{what} is {size} bytes long in UTF-8; the limit is {MAX_ID_BYTES} "
                           "bytes: use a shorter id (or a hash of a long one)")
    if _CONTROL.search(value) is not None:
        raise InvalidEvent(f"{what} must not contain control characters (such as NUL, tab "
                           "or newline)")
    return value


def check_text(value: str, what: str) -> str:
    """`value` when it is valid Unicode: a lone surrogate (e.g. '\\udc80', what decoding
    bytes with errors='surrogateescape' leaves) has no UTF-8 form, so no backend stores it."""
    if value.isascii():
        return value
    try:
        value.encode()
    except UnicodeEncodeError as error:
        raise InvalidEvent(
            f"{what} holds a lone surrogate {value[error.start]!r} at index {error.start}, "
            "which is not valid Unicode and cannot be stored: decode the text with "
            "errors='replace' (or fix its source)") from None
    return value


def check_json(value: Any, what: str, _depth: int = 0) -> None:
    """Refuse anything that would not survive a JSON round trip unchanged.

    Accepts dicts with string keys, lists, tuples, str, int, finite float,
    bool and None. NaN and infinities are refused (JSON has no spelling for
    them), as are strings with lone surrogates (no UTF-8 form), bytes, sets,
    dates and other objects an encoder would silently turn into something else.
    """
    if _depth > MAX_JSON_DEPTH:
        raise InvalidEvent(f"{what} is nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        check_text(value, what)
        return
    if value is None or isinstance(value, (bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidEvent(f"{what} is {value!r}; JSON has no NaN or infinity")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidEvent(f"{what} has a key {key!r} that is not a string")
            check_text(key, f"{what} key {key!r}")
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


def check_non_negative(value: object, what: str, limit: float | None = None,
                       unit: str = "") -> None:
    """A finite int or float (not a bool) >= 0, and at most `limit` (in `unit`) when given."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidEvent(f"{what} must be a number, not {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value) or value < 0:
        raise InvalidEvent(f"{what} must be a finite number >= 0, not {value!r}")
    if limit is not None and value > limit:
        raise InvalidEvent(f"{what} is {value!r}; the limit is {limit:,.0f}{unit}")
    if isinstance(value, int) and value > MAX_INT64:  # no backend stores a larger int
        raise InvalidEvent(f"{what} is {value!r}; the limit is {MAX_INT64}")


def check_timestamp(value: object, what: str) -> None:
    """A time in epoch seconds from 0 (1970) to MAX_TIMESTAMP (the end of year 9999)."""
    check_non_negative(value, what, MAX_TIMESTAMP,
                       " epoch seconds (9999-12-31 23:59:59 UTC)")


def check_response_time(value: object, what: str) -> None:
    """Seconds from 0 to MAX_RESPONSE_TIME."""
    check_non_negative(value, what, MAX_RESPONSE_TIME, " seconds")


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
    """Tags as stored: each one is checked like an id (`check_id`), duplicates dropped."""
    if tags is None:
        return []
    if isinstance(tags, str) or not all(isinstance(t, str) and t for t in tags):
        raise InvalidEvent(f"tags must be a list of non-empty strings, not {tags!r}")
    for index, tag in enumerate(tags):
        check_id(tag, f"tags[{index}]")
    return list(dict.fromkeys(tags))


def timeout_of(timeout: float | timedelta | None, what: str = "timeout") -> float | None:
    """A duration in seconds (> 0, at most 100 years) from seconds or a `timedelta`."""
    if timeout is None:
        return None
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
        raise InvalidEvent(f"{what} must be seconds > 0 or a positive timedelta, "
                           f"not {timeout!r}")
    check_non_negative(seconds, what, MAX_TIMEOUT, " seconds (100 years)")
    return float(seconds)


def check_count(value: Any, what: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise InvalidEvent(f"{what} must be an int >= 0 or None, not {value!r}")
    if value is not None and value > MAX_INT64:
        raise InvalidEvent(f"{what} is {value!r}; the limit is {MAX_INT64} (2**63 - 1)")


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
        check_response_time(event.response_time, "response_time")
    if event.state_delta is not None:
        check_mapping(event.state_delta, "state_delta")
    check_timestamp(event.timestamp, "timestamp")
    check_message_metadata(event.metadata)


def check_message_metadata(metadata: object) -> None:
    """`Event.metadata`: a JSON object of at most MAX_MESSAGE_METADATA_BYTES."""
    if isinstance(metadata, dict) and not metadata:
        return
    check_mapping(metadata, "metadata")
    size = len(_json.encode(metadata))
    if size > MAX_MESSAGE_METADATA_BYTES:
        raise InvalidEvent(f"metadata is {size:,} bytes of JSON; the limit is "
                           f"{MAX_MESSAGE_METADATA_BYTES:,} bytes per message")


def check_numbers(payload: Payload) -> None:
    """The numbers a read model stores from this payload are within their limits.

    The log checks every payload it appends (imports and adapters too), so no event
    past these limits can reach it; `check_event` says the same of a caller's Event.
    """
    if isinstance(payload, MessageAppended) and isinstance(payload.message, Event):
        message = payload.message  # (a field of the wrong type: the encoder names it)
        if isinstance(message.usage, Usage):
            check_tokens(message.usage.tokens_in, "usage.tokens_in")
            check_tokens(message.usage.tokens_out, "usage.tokens_out")
            check_ids(**{"usage.model": message.usage.model,
                         "usage.provider": message.usage.provider})
        if message.response_time is not None:
            check_response_time(message.response_time, "response_time")
        check_timestamp(message.timestamp, "timestamp")
        check_message_metadata(message.metadata)
    elif isinstance(payload, InteractionTracked):
        check_tokens(payload.tokens_in, "tokens_in")
        check_tokens(payload.tokens_out, "tokens_out")
        check_response_time(payload.response_time, "response_time")
        check_ids(model=payload.model, provider=payload.provider)  # analytics keys
        if payload.turn is not None:
            check_id(payload.turn, "turn")
    elif isinstance(payload, SessionCreated) and payload.timeout is not None:
        timeout_of(payload.timeout)
    elif isinstance(payload, RetentionSet):
        for name in ("archive_after", "delete_after", "purge_after"):
            timeout_of(getattr(payload, name), name)
        check_count(payload.max_messages, "max_messages")
    elif isinstance(payload, HistoryTrimmed):
        check_count(payload.through_version, "through_version")
        check_count(payload.kept, "kept")
    elif isinstance(payload, HistoryCompacted) and isinstance(payload.summary, Event):
        check_numbers(MessageAppended(message=payload.summary))  # a summary is a message


def check_payload_ids(payload: Payload) -> None:
    """The ids a payload puts in indexed text columns (a session's tags, a retracted
    message's id) pass `check_id`, however the payload was made (imports, middleware)."""
    if isinstance(payload, (SessionCreated, TagsChanged)):
        tags_of(payload.tags)
    elif isinstance(payload, MessageRetracted):
        check_id(payload.message_id, "message_id")


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
    """An int (not a bool) from 0 to MAX_TOKENS."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidEvent(f"{what} must be an int >= 0, not {value!r}")
    if value > MAX_TOKENS:
        raise InvalidEvent(f"{what} is {value:,}; the limit is {MAX_TOKENS:,} (2**40) tokens "
                           "per event")


def check_status(status: Any) -> None:
    if status is not None and status not in STATUSES:
        raise InvalidEvent(f"status must be one of {STATUSES}, not {status!r}")


def check_page_limit(limit: Any, what: str = "limit") -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
        raise InvalidEvent(f"{what} must be an int from 1 to 10000, not {limit!r}")


# --- reads of the log ----------------------------------------------------------------

def check_position(value: Any, what: str) -> int:
    """A log position or version to read from: an int (not a bool) from 0 to MAX_INT64."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INT64:
        raise InvalidEvent(f"{what} must be an int >= 0, not {value!r}")
    return value


def check_read_filters(filters: Mapping[str, Any]) -> None:
    """The filters of `read_all` and `subscribe`: `types` (event type names), `app_name`,
    `user_id`, and the `batch_size` and `poll_interval` of the reads behind them."""
    types = filters.get("types")
    if types is not None:
        if isinstance(types, str) or not isinstance(types, Iterable):
            raise InvalidEvent(f"types must be a list of event type names such as "
                               f"['MessageAppended'], not {types!r}")
        unknown = [t for t in types if t not in PAYLOAD_TYPES]
        if unknown:
            raise InvalidEvent(f"types {unknown!r} are not event types; they are "
                               f"{sorted(PAYLOAD_TYPES)}")
    for name in ("app_name", "user_id"):
        if filters.get(name) is not None:
            check_id(filters[name], name)
    if "batch_size" in filters:
        check_page_limit(filters["batch_size"], "batch_size")
    if "poll_interval" in filters:
        interval = filters["poll_interval"]
        check_non_negative(interval, "poll_interval")
        if not interval > 0:
            raise InvalidEvent("poll_interval must be seconds > 0, not 0")


def check_wait(position: Any, timeout: Any) -> None:
    """`wait_for`'s arguments: a position, and seconds or None."""
    check_position(position, "position")
    if timeout is not None:
        check_non_negative(timeout, "timeout")


def check_ids(**ids: Any) -> None:
    """Each id given (None: not given) passes `check_id`, named by its keyword."""
    for what, value in ids.items():
        if value is not None:
            check_id(value, what)
