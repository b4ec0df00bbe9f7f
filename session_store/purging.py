"""Purging (the right to be forgotten): erase what a session, or a whole user, wrote.

A purge appends the fact and erases in the same commit, through the log's one audited
path (`storage.schema.erase_payloads`): `SessionPurged` on a session's stream erases
the rest of that stream; `ScopePurged` on an app or user scope stream names exactly
the events it erases there, the `app:`/`user:` writes of the purged session (linked
to it by `StateChanged.session_id`) or, for a purged user, the whole user stream.
What stays is the envelope of every event (ids, timestamps, types, hashes): the facts
and the chain remain auditable. The read models fold the erased log, so they forget.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import msgspec

from projections.heads import HEADS
from session_store.appending import Appending
from session_store.domain.events import (
    Payload,
    ScopePurged,
    SessionDeleted,
    SessionKey,
    SessionPurged,
    StateChanged,
)
from session_store.domain.lifecycle import Head
from session_store.domain.scopes import written_by
from session_store.errors import ConcurrencyError, SessionNotFound
from session_store.log.batching import Append
from session_store.reads import load_heads
from session_store.storage.codec import RECORD_LIST, decode_head, decode_rows

_RETRIES = 20
"""Attempts at a purge that keeps losing the race to a writer of the same session."""


@dataclass(frozen=True)
class PurgeReport:
    """What one `purge_user` call erased (all zero when there was nothing left to erase)."""

    sessions: int = 0
    """Sessions purged by this call (sessions purged before are not counted again)."""
    scope_events: int = 0
    """Events of the app and user scope streams whose payloads this call erased."""


async def delete_session(store: Appending, key: SessionKey, *, purge: bool,
                         reason: str = "delete_session(purge=True)") -> int:
    """Tombstone the session; with `purge` also erase its payloads and the `app:`/`user:`
    writes it made, in one commit. Returns how many scope events were erased.
    `SessionNotFound` when the session never existed."""
    for _ in range(_RETRIES):
        head = await _head(store, key)
        if not purge:
            if not head.deleted:
                await store._commit([store.log.prepare_append(key, [SessionDeleted()])])
            return 0
        # Scope events already erased are not named again, so purging twice is a no-op;
        # a session purged before its writes were linked still gets them erased here.
        found = await _written_by(store, key.app_name, key.user_id, {key.session_id})
        appends = _scope_purges(store, found, reason, session_id=key.session_id)
        own = _own_purge(store, head, reason)
        if own is not None:
            appends.append(own)
        if not appends:
            return 0
        try:
            await store._commit(appends)
        except ConcurrencyError:
            continue  # the session wrote meanwhile, maybe to a scope stream: look again
        return _count(found)
    raise ConcurrencyError(f"session {key.session_id!r} kept changing while it was purged; "
                           "stop its writers and purge again")


async def purge_user(store: Appending, app_name: str, user_id: str) -> PurgeReport:
    """Purge every session of the user (each like `delete_session(purge=True)`), the `app:`
    writes they made, and the user's whole `user:` stream. Idempotent; an unknown user is
    a no-op. A session the user creates while this runs may survive it: purge again."""
    reason = "purge_user"
    heads = await _user_heads(store, app_name, user_id)
    sessions = 0
    for head in heads:
        sessions += await _purge_own(store, head, reason)
    # Purged sessions take no more writes, so what they wrote to the scope streams cannot
    # grow now: one lookup finds it all (a purge cut short here is finished by the next).
    found = await _written_by(store, app_name, user_id, {h.session_id for h in heads})
    stream = SessionKey(app_name, user_id, "")
    rows = await store.db.dialect.fetch(store.db, _UNERASED, list(stream))
    found[stream] = [r.event_id for r in decode_rows(rows) if r.type != "ScopePurged"]
    appends = _scope_purges(store, found, reason, user_id=user_id)
    if appends:
        await store._commit(appends)
    return PurgeReport(sessions=sessions, scope_events=_count(found))


async def _purge_own(store: Appending, head: Head, reason: str) -> int:
    """Purge the session's own stream (1), or find it purged already (0)."""
    for _ in range(_RETRIES):
        own = _own_purge(store, head, reason)
        if own is None:
            return 0
        try:
            await store._commit([own])
            return 1
        except ConcurrencyError:
            head = await _head(store, head.key)
    raise ConcurrencyError(f"session {head.session_id!r} kept changing while it was purged; "
                           "stop its writers and purge again")


def _own_purge(store: Appending, head: Head, reason: str) -> Append | None:
    """The erasing append that purges the session's own stream (None: purged already).

    At the version read: a write racing the purge (with the scope events the lookup did
    not see) makes the commit fail, and the purge looks again."""
    if head.purged:
        return None
    payloads: list[Payload] = [] if head.deleted else [SessionDeleted()]
    payloads.append(SessionPurged(reason=reason))
    return store.log.prepare_append(head.key, payloads, erase=True,
                                    expected_version=head.version)


async def _head(store: Appending, key: SessionKey) -> Head:
    head, _ = await load_heads(store.db, key)
    if head is None:
        raise SessionNotFound(f"session {key.session_id!r} of user {key.user_id!r} in app "
                              f"{key.app_name!r} does not exist")
    return head


def _count(found: dict[SessionKey, list[str]]) -> int:
    return sum(len(events) for events in found.values())


# --- finding what to erase ---------------------------------------------------------------

_UNERASED = (f"SELECT {RECORD_LIST} FROM ss_events WHERE app_name = ? AND user_id = ? "
             "AND session_id = ? AND length(data) > 0 ORDER BY version")
"""A stream's events whose payloads are not erased yet."""

_CANDIDATES = (
    f"SELECT {RECORD_LIST} FROM ss_events WHERE app_name = ? AND session_id = '' "
    "AND user_id IN (?, '') AND type = 'StateChanged' AND length(data) > 0 "
    "AND recorded_at IN (SELECT recorded_at FROM ss_events WHERE app_name = ? "
    "AND user_id = ? AND session_id {which}) ORDER BY position")
"""Unerased events of the app's and the user's scope streams recorded at the time of an
event of the given sessions of the user.

A scope event lands in the commit of the session event that carried its delta
(`Appending._append`, `import_records`), and every record of a commit has the same
`recorded_at`: only these can have been written by those sessions. The link in the
payload (`scopes.written_by`) then says which were."""


async def _written_by(store: Appending, app_name: str, user_id: str, sessions: set[str]
                      ) -> dict[SessionKey, list[str]]:
    """Ids of the unerased app and user scope events written by these sessions, per stream."""
    if not sessions:
        return {}
    which = "= ?" if len(sessions) == 1 else "<> ''"  # one session, or all of the user's
    params = [app_name, user_id, app_name, user_id, *(sessions if len(sessions) == 1 else ())]
    rows = await store.db.dialect.fetch(store.db, _CANDIDATES.format(which=which), params)
    found: dict[SessionKey, list[str]] = {}
    for record in decode_rows(rows):
        data = record.data
        if isinstance(data, StateChanged) and written_by(record.key, data, user_id, sessions):
            found.setdefault(record.key, []).append(record.event_id)
    return found


async def _user_heads(store: Appending, app_name: str, user_id: str) -> list[Head]:
    """Every session of the user, deleted and purged ones included."""
    rows = await store.db.dialect.fetch(store.db, _USER_HEADS, [app_name, user_id])
    return [decode_head(bytes(body)) for body, in rows]


_USER_HEADS = (f"SELECT body FROM {HEADS.name} WHERE app_name = ? AND user_id = ? "
               "AND session_id <> '' ORDER BY session_id")


# --- the purge facts ---------------------------------------------------------------------

def _scope_purges(store: Appending, found: dict[SessionKey, list[str]], reason: str, *,
                  session_id: str | None = None, user_id: str | None = None) -> list[Append]:
    """One erasing append per scope stream, its `ScopePurged` facts naming every event."""
    return [store.log.prepare_append(
                stream, [ScopePurged(event_ids=ids, session_id=session_id, user_id=user_id,
                                     reason=reason)
                         for ids in _chunks(events, store.log.max_event_bytes)],
                erase=True)
            for stream, events in found.items() if events]


def _chunks(ids: Iterable[str], max_bytes: int) -> list[list[str]]:
    """`ids` cut into lists that each encode well within `max_bytes` (a long user stream
    names more ids than one event may hold)."""
    budget = max(max_bytes - 1024, 1)
    chunks: list[list[str]] = [[]]
    size = 0
    for event_id in ids:
        cost = len(msgspec.json.encode(event_id)) + 1
        if chunks[-1] and size + cost > budget:
            chunks.append([])
            size = 0
        chunks[-1].append(event_id)
        size += cost
    return chunks
