"""Query parameters, read into typed values: a wrong one is an `InvalidEvent` (400) that
names the parameter, never a half answer."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request

from session_store.domain import validation
from session_store.errors import InvalidEvent

STATUSES = ("active", "archived", "ended", "expired")
MAX_LIMIT = 1000


def text(request: Request, name: str) -> str | None:
    """A parameter given and not blank, else None; ids are checked as the store checks
    them."""
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    return value


def an_id(request: Request, name: str) -> str | None:
    value = text(request, name)
    return None if value is None else validation.check_id(value, name)


def whole(request: Request, name: str, *, default: int | None = None, low: int = 0,
          high: int | None = None) -> int | None:
    value = text(request, name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise InvalidEvent(f"{name} must be a whole number, not {value!r}") from None
    if number < low or (high is not None and number > high):
        bounds = f"from {low} to {high}" if high is not None else f"{low} or more"
        raise InvalidEvent(f"{name} must be {bounds}, not {number}")
    return number


def limit(request: Request, default: int = 50) -> int:
    found = whole(request, "limit", default=default, low=1, high=MAX_LIMIT)
    assert found is not None
    return found


def status(request: Request) -> str | None:
    value = text(request, "status")
    if value is not None and value not in STATUSES:
        raise InvalidEvent(f"status must be one of {', '.join(STATUSES)}, not {value!r}")
    return value


def tags(request: Request) -> list[str] | None:
    """`tags=a,b` or `tags=a&tags=b`: sessions holding every one of them."""
    given = [tag.strip() for value in request.query_params.getlist("tags")
             for tag in value.split(",") if tag.strip()]
    return [validation.check_id(tag, "tags") for tag in given] or None


def since(request: Request) -> float | None:
    """Epoch seconds, or an ISO date or time (UTC when it names no zone)."""
    value = text(request, "since")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidEvent(f"since must be epoch seconds or an ISO date or time "
                               f"(2026-12-01, 2026-12-01T10:00), not {value!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = moment.timestamp()
    if not 0 <= seconds <= validation.MAX_TIMESTAMP:
        raise InvalidEvent(f"since must be from 0 to {validation.MAX_TIMESTAMP}, not {value!r}")
    return seconds
