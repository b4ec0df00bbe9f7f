"""State scopes, as in Google ADK: which stream a state key lives in.

`app:` keys are shared by every session of the app and live in the app stream
`(app, "", "")`; `user:` keys are shared by the user's sessions in the app and
live in the user stream `(app, user, "")`; `temp:` keys belong to one
invocation's snapshot and never reach the log; other keys belong to the
session's own stream.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from session_store.domain.events import (
    MessageAppended,
    Payload,
    SessionCreated,
    SessionKey,
    StateChanged,
)

APP_PREFIX, USER_PREFIX, TEMP_PREFIX = "app:", "user:", "temp:"
SHARED_SCOPES = ("app", "user")
"""The scopes with streams of their own, in the order a commit appends to them."""
_NOT_SESSION = (APP_PREFIX, USER_PREFIX, TEMP_PREFIX)


def key_scope(state_key: str) -> str:
    """'app', 'user', 'temp' or 'session': where a state key lives."""
    if state_key.startswith(APP_PREFIX):
        return "app"
    if state_key.startswith(USER_PREFIX):
        return "user"
    if state_key.startswith(TEMP_PREFIX):
        return "temp"
    return "session"


def scope_of(key: SessionKey) -> str:
    """'app', 'user' or 'session': which state keys a stream folds."""
    if key.session_id:
        return "session"
    return "user" if key.user_id else "app"


def scope_stream(key: SessionKey, scope: str) -> SessionKey:
    """The stream holding `scope` ('app' or 'user') state for a session's app and user."""
    return SessionKey(key.app_name, key.user_id if scope == "user" else "", "")


def without_temp(state: Mapping[str, Any]) -> dict[str, Any]:
    """`state` without its `temp:` keys: what the session's own event records."""
    return {k: v for k, v in state.items() if not k.startswith(TEMP_PREFIX)}


def shared_deltas(key: SessionKey, delta: Mapping[str, Any] | None
                  ) -> list[tuple[SessionKey, dict[str, Any]]]:
    """The scope streams a session's `delta` changes, each with its part of the delta,
    in `SHARED_SCOPES` order (the order a commit appends them in)."""
    if not delta:
        return []
    split: list[tuple[SessionKey, dict[str, Any]]] = []
    for scope in SHARED_SCOPES:
        shared = {k: v for k, v in delta.items() if key_scope(k) == scope}
        if shared:
            split.append((scope_stream(key, scope), shared))
    return split


def shared_change(key: SessionKey, stream: SessionKey, delta: dict[str, Any]) -> StateChanged:
    """The event that records session `key`'s `delta` on the scope `stream`, linked to the
    session (and, on the app stream, its user) so that purging the session erases it."""
    return StateChanged(delta=delta, session_id=key.session_id,
                        user_id=None if stream.user_id else key.user_id)


def written_by(record_key: SessionKey, change: StateChanged, user_id: str,
               sessions: Collection[str]) -> bool:
    """Whether the scope event `change` on stream `record_key` was written by one of these
    sessions of `user_id` (an event written before the link existed says nothing: False)."""
    user = record_key.user_id or change.user_id
    return user == user_id and change.session_id in sessions


def update_stream_state(key: SessionKey, state: dict[str, Any], delta: Mapping[str, Any]
                        ) -> None:
    """`state` of the stream `key` updated in place with the keys of `delta` it folds."""
    if key.session_id:
        for k, v in delta.items():
            if not k.startswith(_NOT_SESSION):
                state[k] = v
        return
    prefix = USER_PREFIX if key.user_id else APP_PREFIX
    for k, v in delta.items():
        if k.startswith(prefix):
            state[k] = v


def delta_of(payload: Payload) -> Mapping[str, Any]:
    """The state delta a session event records (its initial state, for a creation)."""
    if isinstance(payload, MessageAppended):
        return payload.message.state_delta or {}
    if isinstance(payload, StateChanged):
        return payload.delta
    if isinstance(payload, SessionCreated):
        return payload.state
    return {}
