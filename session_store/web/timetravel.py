"""Time travel: a session's state as of any version, by scope, and what changed from the
version before, as a diff.

The states are the store's own (`get_session(at_version=N)`): the session folded from
the log up to its event N, with the `app:` and `user:` state folded from the scope
streams up to that event's place in the log.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from session_store.domain.events import SessionKey
from session_store.domain.scopes import key_scope
from session_store.errors import InvalidEvent, SessionNotFound
from session_store.store import SessionStore

SCOPES = ("session", "app", "user")


def by_scope(state: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """`state` split into its session, `app:` and `user:` parts (keys as stored)."""
    split: dict[str, dict[str, Any]] = {scope: {} for scope in SCOPES}
    for key in sorted(state):
        split.setdefault(key_scope(key), {})[key] = state[key]
    return split


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each key added, removed or changed from `before` to `after`, in key order."""
    changes = []
    for key in sorted(set(before) | set(after)):
        if key not in before:
            changes.append({"key": key, "scope": key_scope(key), "change": "added",
                            "after": after[key]})
        elif key not in after:
            changes.append({"key": key, "scope": key_scope(key), "change": "removed",
                            "before": before[key]})
        elif before[key] != after[key] or type(before[key]) is not type(after[key]):
            changes.append({"key": key, "scope": key_scope(key), "change": "changed",
                            "before": before[key], "after": after[key]})
    return changes


async def state_at(store: SessionStore, key: SessionKey, version: int) -> dict[str, Any]:
    """The state as of `version` (1 .. the session's version), by scope, and the diff from
    the version before (from nothing, for version 1)."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidEvent(f"version must be a whole number of 1 or more, not {version!r}")
    then = await store.get_session(app_name=key.app_name, user_id=key.user_id,
                                   session_id=key.session_id, at_version=version,
                                   num_recent_events=0)
    if then is None:
        now = await store.get_session(app_name=key.app_name, user_id=key.user_id,
                                      session_id=key.session_id, num_recent_events=0)
        if now is None:
            raise SessionNotFound(f"no session {key.session_id!r} of user {key.user_id!r} "
                                  f"in app {key.app_name!r}")
        raise InvalidEvent(f"version {version} is past the session's last, {now.version}")
    before: Mapping[str, Any] = {}
    if version > 1:
        previous = await store.get_session(app_name=key.app_name, user_id=key.user_id,
                                           session_id=key.session_id, at_version=version - 1,
                                           num_recent_events=0)
        before = previous.state if previous is not None else {}
    return {"version": version, "status": then.status, "metadata": dict(then.metadata),
            "tags": list(then.tags), "last_update_time": then.last_update_time,
            "state": by_scope(then.state), "diff": diff(before, then.state)}
