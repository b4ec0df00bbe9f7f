"""Enforcing retention: archive, delete, purge and trim the sessions a policy says are due.

Each rule finds its candidates in the retention index (`projections.retention`), a
range of an index on (app, status, last activity) or (app, messages): the work is
in the sessions it acts on, not in the size of the store. Every candidate is
confirmed against its head (the inline read model) and appended at the head's
version, so a session that woke up meanwhile is left alone (the append loses
the race and is skipped), and running again with the same clock does nothing
more: what was done no longer matches.

What each rule appends is an existing fact: `SessionArchived(reason="retention")`,
`SessionDeleted`, the purge of `purging.delete_session`, and for `max_messages`
a `HistoryTrimmed` marker that hides the oldest visible messages (the log keeps
them; analytics still count them: they happened).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from projections.heads import HEADS
from projections.retention import Cursor, RetentionIndex
from session_store import purging
from session_store.appending import Appending
from session_store.domain import validation
from session_store.domain.events import (
    HistoryTrimmed,
    MessageAppended,
    Payload,
    SessionArchived,
    SessionDeleted,
    SessionKey,
)
from session_store.domain.lifecycle import ACTIVE, ARCHIVED, DELETED, ENDED, EXPIRED, Head
from session_store.domain.retention import Duration, RetentionPolicy
from session_store.errors import ConcurrencyError, SessionClosed, SessionNotFound
from session_store.storage.codec import RECORD_LIST, decode_head, decode_rows

BATCH = 500
"""Candidates read, confirmed and appended per round (one commit for all of them)."""
_NOT_DUE = (ConcurrencyError, SessionClosed, SessionNotFound)
"""What an append of a candidate that changed meanwhile raises: it is no longer due."""


@dataclass(frozen=True)
class RetentionReport:
    """What one `enforce_retention` (or `cleanup`) call did, session by session."""

    now: float
    """The clock the call measured idleness against."""
    archived: tuple[SessionKey, ...] = ()
    deleted: tuple[SessionKey, ...] = ()
    purged: tuple[SessionKey, ...] = ()
    trimmed: tuple[SessionKey, ...] = ()
    """Sessions whose oldest visible messages were hidden (`max_messages`)."""

    @property
    def counts(self) -> dict[str, int]:
        return {"archived": len(self.archived), "deleted": len(self.deleted),
                "purged": len(self.purged), "trimmed": len(self.trimmed)}

    @property
    def total(self) -> int:
        """Sessions acted on (a session archived and trimmed counts twice)."""
        return len(self.archived) + len(self.deleted) + len(self.purged) + len(self.trimmed)


@dataclass(frozen=True)
class Rules:
    """The thresholds one call applies to one app (seconds; None: off)."""

    archive_after: float | None = None
    delete_after: float | None = None
    delete_archived_after: float | None = None
    purge_after: float | None = None
    max_messages: int | None = None

    @classmethod
    def of(cls, policy: RetentionPolicy) -> Rules:
        return cls(archive_after=policy.archive_after, delete_after=policy.delete_after,
                   purge_after=policy.purge_after, max_messages=policy.max_messages)


@dataclass
class _Done:
    archived: list[SessionKey] = field(default_factory=list)
    deleted: list[SessionKey] = field(default_factory=list)
    purged: list[SessionKey] = field(default_factory=list)
    trimmed: list[SessionKey] = field(default_factory=list)

    def report(self, now: float) -> RetentionReport:
        return RetentionReport(now=now, archived=tuple(self.archived),
                               deleted=tuple(self.deleted), purged=tuple(self.purged),
                               trimmed=tuple(self.trimmed))


def clock(now: Any) -> float:
    """`now` as epoch seconds (the time retention measures against; default: the time)."""
    if now is None:
        return time.time()
    validation.check_timestamp(now, "now")
    return float(now)


def cleanup_rules(inactive_for: Duration | None, archived_for: Duration | None,
                  deleted_for: Duration | None) -> Rules:
    """`cleanup`'s overrides: archive sessions idle `inactive_for`, delete archived ones
    idle `archived_for`, purge deleted ones `deleted_for` after their delete."""
    return Rules(archive_after=validation.timeout_of(inactive_for, "inactive_for"),
                 delete_archived_after=validation.timeout_of(archived_for, "archived_for"),
                 purge_after=validation.timeout_of(deleted_for, "deleted_for"))


async def enforce(store: Appending, index: RetentionIndex, rules: dict[str, Rules],
                  now: float) -> RetentionReport:
    """Apply each app's rules: delete, then archive, then purge, then trim."""
    done = _Done()
    for app_name, rule in rules.items():
        if rule.delete_after is not None:
            done.deleted += await _sweep(store, index, app_name,
                                         (ACTIVE, EXPIRED, ARCHIVED, ENDED),
                                         now - rule.delete_after, _delete)
        if rule.delete_archived_after is not None:
            done.deleted += await _sweep(store, index, app_name, (ARCHIVED,),
                                         now - rule.delete_archived_after, _delete_archived)
        if rule.archive_after is not None:
            done.archived += await _sweep(store, index, app_name, (ACTIVE, EXPIRED),
                                          now - rule.archive_after, _archive)
        if rule.purge_after is not None:
            done.purged += await _purge(store, index, app_name, now - rule.purge_after)
        if rule.max_messages is not None:
            await _trim(store, index, app_name, rule.max_messages, done)
    return done.report(now)


# --- the rules ---------------------------------------------------------------------------

def _delete(head: Head, before: float) -> Payload | None:
    due = not head.deleted and head.last_update_time < before
    return SessionDeleted() if due else None


def _delete_archived(head: Head, before: float) -> Payload | None:
    return _delete(head, before) if head.status == ARCHIVED else None


def _archive(head: Head, before: float) -> Payload | None:
    due = (not head.deleted and head.status in (ACTIVE, EXPIRED)
           and head.last_update_time < before)
    return SessionArchived(reason="retention") if due else None


async def _sweep(store: Appending, index: RetentionIndex, app_name: str,
                 statuses: Sequence[str], before: float, rule: Any) -> list[SessionKey]:
    """Append `rule(head, before)` to every candidate whose head confirms it is due."""
    done: list[SessionKey] = []
    async for heads in _candidates(store, index, app_name, statuses, before):
        due = [(head, payload) for head in heads
               if (payload := rule(head, before)) is not None]
        done += await _append_each(store, due)
    return done


async def _purge(store: Appending, index: RetentionIndex, app_name: str, before: float
                 ) -> list[SessionKey]:
    done: list[SessionKey] = []
    async for heads in _candidates(store, index, app_name, (DELETED,), before):
        for head in heads:
            if head.deleted and not head.purged:
                await purging.delete_session(store, head.key, purge=True, reason="retention")
                done.append(head.key)
    return done


async def _trim(store: Appending, index: RetentionIndex, app_name: str, limit: int,
                done: _Done) -> None:
    after: Cursor | None = None
    while True:
        found = await index.longer_than(app_name, limit, after, BATCH)
        if not found:
            return
        after = found[-1][1]
        due: list[tuple[Head, Payload]] = []
        for head in await load_heads(store, [key for key, _ in found]):
            if head.deleted or head.status == ENDED:
                continue
            through = await _last_hidden(store, head, limit)
            if through is not None:
                due.append((head, HistoryTrimmed(through_version=through, kept=limit)))
        done.trimmed += await _append_each(store, due)
        if len(found) < BATCH:
            return


_NEWEST = (f"SELECT {RECORD_LIST} FROM ss_events WHERE app_name = ? AND user_id = ? "
           "AND session_id = ? AND type = 'MessageAppended' AND version > ? "
           "AND version <= ? ORDER BY version DESC LIMIT ?")



async def _last_hidden(store: Appending, head: Head, limit: int) -> int | None:
    """The version of the newest visible message past the `limit` newest (None: the session
    shows no more than `limit`): a trim through it keeps exactly `limit`."""
    hidden = set(head.retracted)
    rows = await store.db.dialect.fetch(store.db, _NEWEST, [
        *head.key, head.history_from, head.version, limit + len(hidden) + 1])
    visible = [r for r in decode_rows(rows) if isinstance(r.data, MessageAppended)
               and r.data.message.id not in hidden]
    return visible[limit].version if len(visible) > limit else None



# --- candidates, heads, appends ----------------------------------------------------------

async def _candidates(store: Appending, index: RetentionIndex, app_name: str,
                      statuses: Sequence[str], before: float) -> AsyncIterator[list[Head]]:
    """The heads of the index's idle candidates, a batch at a time, one pass per status
    (each a range of the index in its own order: no sort, whatever the count)."""
    for status in statuses:
        after: Cursor | None = None
        while True:
            found = await index.idle(app_name, status, before, after, BATCH)
            if not found:
                break
            after = found[-1][1]
            yield await load_heads(store, [key for key, _ in found])
            if len(found) < BATCH:
                break


_CHUNK = 300
"""Keys per statement (SQLite allows 32,766 parameters)."""


def _heads_sql(count: int) -> str:
    """The heads of `count` sessions given as flat (app, user, session) parameters: the
    keys joined to the table's primary key, one index search each (on both backends)."""
    keys = ", ".join(["(?, ?, ?)"] * count)
    return (f"WITH k(a, u, s) AS (VALUES {keys}) SELECT h.body FROM k JOIN {HEADS.name} h "
            "ON h.app_name = k.a AND h.user_id = k.u AND h.session_id = k.s")


async def load_heads(store: Appending, keys: Sequence[SessionKey]) -> list[Head]:
    """The heads of these sessions (missing ones left out)."""
    heads: list[Head] = []
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start:start + _CHUNK]
        rows = await store.db.dialect.fetch(store.db, _heads_sql(len(chunk)),
                                            [part for key in chunk for part in key])
        heads += (decode_head(bytes(body)) for body, in rows)
    return heads


async def _append_each(store: Appending, due: Sequence[tuple[Head, Payload]]
                       ) -> list[SessionKey]:
    """Append each payload to its session at the head's version, all in one commit; when a
    session changed meanwhile, one commit each, skipping those no longer due."""
    if not due:
        return []
    appends = [store.log.prepare_append(head.key, [payload], expected_version=head.version)
               for head, payload in due]
    try:
        await store._commit(appends)
        return [head.key for head, _ in due]
    except _NOT_DUE:
        pass
    done: list[SessionKey] = []
    for head, payload in due:
        try:
            await store._commit([store.log.prepare_append(head.key, [payload],
                                                          expected_version=head.version)])
        except _NOT_DUE:
            continue
        done.append(head.key)
    return done
