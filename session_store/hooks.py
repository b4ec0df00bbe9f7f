"""Middleware that may transform or reject a payload before it is appended, and
lifecycle hooks called after commit.

A middleware is `fn(key, payload) -> payload` (sync or async); it rejects by
raising `InvalidEvent`. A lifecycle hook is `fn(recorded_event)` (sync or
async) registered for an event type (`"MessageAppended"`) or its snake_case
name (`"message_appended"`), or `"*"` for all. A hook that raises is logged and
never undoes the append, which has already committed.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from session_store.domain.events import PAYLOAD_TYPES, Payload, RecordedEvent, SessionKey
from session_store.errors import InvalidEvent
from session_store.logs import get_logger

log = get_logger(__name__)

Middleware = Callable[[SessionKey, Payload], "Payload | Awaitable[Payload]"]
Hook = Callable[[RecordedEvent], "None | Awaitable[None]"]

_SNAKE = {re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower(): name for name in PAYLOAD_TYPES}


def event_type_of(name: str) -> str:
    """'message_appended' or 'MessageAppended' -> 'MessageAppended'; '*' stays."""
    if name == "*" or name in PAYLOAD_TYPES:
        return name
    if name in _SNAKE:
        return _SNAKE[name]
    raise ValueError(f"unknown event type {name!r}; one of {sorted(_SNAKE)}")


class Hooks:
    def __init__(self) -> None:
        self.middleware: list[Middleware] = []
        self.listeners: dict[str, list[Hook]] = {}

    def on(self, event: str, hook: Hook) -> None:
        self.listeners.setdefault(event_type_of(event), []).append(hook)

    async def transform(self, key: SessionKey, payloads: Sequence[Payload]) -> list[Payload]:
        result = []
        for payload in payloads:
            for middleware in self.middleware:
                changed: Any = middleware(key, payload)
                if inspect.isawaitable(changed):
                    changed = await changed
                if not isinstance(changed, Payload):
                    raise InvalidEvent(f"middleware {middleware!r} returned {changed!r}, "
                                       "not an event payload")
                payload = changed
            result.append(payload)
        return result

    async def notify(self, records: Sequence[RecordedEvent]) -> None:
        if not self.listeners:
            return
        for record in records:
            for hook in [*self.listeners.get(record.type, ()), *self.listeners.get("*", ())]:
                try:
                    outcome = hook(record)
                    if inspect.isawaitable(outcome):
                        await outcome
                except Exception as error:  # noqa: BLE001 - a hook never loses an append
                    log.warning("session_store.hook_failed", hook=repr(hook),
                                event_type=record.type, position=record.position,
                                error=repr(error))
