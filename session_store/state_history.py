"""Every value a state key took, from the log: `state_history(session, key)`.

A session key's history is read from the session's stream, an `app:` or `user:` key's
from its scope stream (shared: every session of the app, or of the user, wrote there).
The stream is folded event by event with the session fold (`domain.lifecycle`), so a
value set by a message, a state change, a rewind or a fork reads as the state did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from session_store import reads
from session_store.domain import validation
from session_store.domain.events import SessionKey, StateChanged
from session_store.domain.lifecycle import Head, advance
from session_store.domain.scopes import delta_of, key_scope, scope_stream
from session_store.errors import InvalidEvent, SessionNotFound

if TYPE_CHECKING:
    from session_store.log.eventlog import EventLog
    from session_store.storage.database import Database

_ABSENT = object()


@dataclass(frozen=True, slots=True)
class StateValue:
    """One value of a state key: set by the event at `version` of `stream` (the session's
    own stream, or the app or user scope stream), recorded at `recorded_at`."""

    value: Any
    """The value (None when `present` is False)."""
    present: bool
    """False when the key left the state (a rewind or fork to before it was set)."""
    version: int
    position: int
    recorded_at: float
    stream: SessionKey
    session_id: str | None
    """The session whose command wrote it (for scope streams, when the log says)."""


async def state_history(db: Database, log: EventLog, key: SessionKey, state_key: str
                        ) -> list[StateValue]:
    """Every value `state_key` took in the session (or its app/user scope), oldest first."""
    if not isinstance(state_key, str) or not state_key:
        raise InvalidEvent(f"state key must be a non-empty string, not {state_key!r}")
    validation.check_text(state_key, "state key")
    scope = key_scope(state_key)
    if scope == "temp":
        raise InvalidEvent(f"{state_key!r} is a temp: key: those are never stored")
    head, _ = await reads.load_heads(db, key)
    if head is None or head.deleted:
        raise SessionNotFound(f"session {key.session_id!r} of user {key.user_id!r} in app "
                              f"{key.app_name!r} does not exist")
    stream = key if scope == "session" else scope_stream(key, scope)
    values: list[StateValue] = []
    folded: Head | None = None
    before: Any = _ABSENT
    async for record in log.read_stream(stream):
        folded = advance(folded, record)
        after = folded.state.get(state_key, _ABSENT)
        written = state_key in delta_of(record.data)  # a write, even of the same value
        if not written and (after is before or (after is not _ABSENT and before is not _ABSENT
                                                and after == before)):
            continue
        data = record.data
        if scope == "session":
            writer: str | None = key.session_id
        else:
            writer = data.session_id if isinstance(data, StateChanged) else None
        values.append(StateValue(value=None if after is _ABSENT else after,
                                 present=after is not _ABSENT, version=record.version,
                                 position=record.position, recorded_at=record.recorded_at,
                                 stream=stream, session_id=writer))
        before = after
    return values
