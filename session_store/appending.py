"""The runner's side of the facade: the commands that append events.

`Appending` is the half of `SessionStore` that writes: each command validates
its input, becomes payloads, passes the middleware and is appended to the
session's stream (with the app and user scope streams its state delta touches)
in one commit. Lifecycle hooks run after the commit.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from projections.history import History
from session_store import reads
from session_store.domain import validation
from session_store.domain.events import (
    Event,
    HistoryCleared,
    InteractionTracked,
    MessageAppended,
    MessageRetracted,
    MetadataChanged,
    Payload,
    RecordedEvent,
    SessionArchived,
    SessionEnded,
    SessionExpired,
    SessionKey,
    SessionReactivated,
    StateChanged,
    TagsChanged,
)
from session_store.domain.scopes import (
    delta_of,
    shared_change,
    shared_deltas,
    without_temp,
)
from session_store.domain.snapshot import Session
from session_store.domain.validation import ref
from session_store.errors import ConcurrencyError, InvalidEvent, SessionNotFound
from session_store.hooks import Hooks
from session_store.log import ANY
from session_store.log.batching import Append
from session_store.log.eventlog import EventLog
from session_store.messages import visible_message
from session_store.storage.database import Database

SessionRef = Session | SessionKey | tuple[str, str, str]


@dataclass(frozen=True)
class ImportReport:
    """What `import_records` did: `events` read (of `sessions` sessions), `added` of them
    new to this store (the rest were stored already), `sessions_added` sessions new."""

    sessions: int
    events: int
    added: int
    sessions_added: int

    @property
    def present(self) -> int:
        """Events of the import that the store already held."""
        return self.events - self.added


def appended(event: Event) -> MessageAppended:
    """The payload that records `event`, checked: its author defaults to its role, and its
    `temp:` state keys are dropped."""
    validation.check_event(event)
    if not event.author:
        event = msgspec.structs.replace(event, author=event.role)
    if event.state_delta:
        event = msgspec.structs.replace(
            event, state_delta=without_temp(event.state_delta) or None)
    return MessageAppended(message=event)


class Appending:
    """Commands that append to the log (mixed into `SessionStore`)."""

    db: Database
    log: EventLog
    hooks: Hooks
    history: History
    written: int
    """The newest log position this store has appended (read-your-writes target)."""

    async def append_event(self, session: SessionRef, event: Event, *,
                           expected_version: int | None = ANY) -> RecordedEvent:
        """Append a conversation event; an event id already stored is an idempotent no-op."""
        return (await self.append_events(session, [event], expected_version=expected_version))[0]

    async def append_events(self, session: SessionRef, events: Sequence[Event], *,
                            expected_version: int | None = ANY) -> list[RecordedEvent]:
        """Append several conversation events in one transaction: all land, or none does.

        Re-sending events whose ids are all stored is an idempotent no-op that
        returns the stored records.
        """
        key = ref(session)
        if isinstance(events, Event) or not events:
            raise InvalidEvent("append_events takes a non-empty list of Event")
        messages = [appended(event) for event in events]
        return await self._append(key, messages, expected_version=expected_version,
                                  event_ids=[m.message.id for m in messages])

    async def retract_message(self, session: SessionRef, message_id: str, *,
                              expected_version: int | None = ANY) -> RecordedEvent:
        """Take a message back: it leaves the visible history; the log keeps both facts.
        `MessageNotFound` (nothing written) unless the session shows that message now."""
        key = ref(session)
        await visible_message(self.db, self.history, key, message_id)
        retracted = MessageRetracted(message_id=message_id)
        return (await self._append(key, [retracted], expected_version=expected_version))[0]

    async def set_tags(self, session: SessionRef, tags: Sequence[str], *,
                       expected_version: int | None = ANY) -> RecordedEvent:
        """Replace the session's tags (a `TagsChanged` event; `list_sessions(tags=...)`
        finds it by the new ones). Each tag is checked like an id; duplicates are dropped."""
        changed = TagsChanged(tags=validation.tags_of(tags))
        return (await self._append(ref(session), [changed],
                                   expected_version=expected_version))[0]

    async def append_payloads(self, session: SessionRef, payloads: Sequence[Payload], *,
                              expected_version: int | None = ANY) -> list[RecordedEvent]:
        """Append payloads of the vocabulary as they are (the adapters' own event types, e.g.
        LangGraph's checkpoints) in one transaction; `InvalidEvent` for anything else."""
        if isinstance(payloads, Payload) or not payloads:
            raise InvalidEvent("append_payloads takes a non-empty list of payloads")
        for payload in payloads:
            if not isinstance(payload, Payload):
                raise InvalidEvent(f"not an event payload: {type(payload).__name__}")
            if isinstance(payload, MessageAppended):
                validation.check_event(payload.message)
        return await self._append(ref(session), payloads, expected_version=expected_version)

    async def add_message(self, session: SessionRef, role: str, text: str | None = None,
                          **fields: Any) -> RecordedEvent:
        try:
            event = Event(role=role, text=text, **fields)
        except TypeError as error:
            raise InvalidEvent(f"add_message: {error}") from None
        return await self.append_event(session, event)

    async def update_state(self, session: SessionRef, delta: Mapping[str, Any], *,
                           expected_version: int | None = ANY) -> RecordedEvent:
        """Change state; `app:`/`user:` keys are shared, `temp:` keys are dropped."""
        full = validation.check_mapping(delta, "delta")
        return (await self._append(ref(session), [StateChanged(delta=without_temp(full))],
                                   expected_version=expected_version))[0]

    async def update_session_metadata(self, session: SessionRef, patch: Mapping[str, Any], *,
                                      merge: bool = True) -> RecordedEvent:
        changed = MetadataChanged(patch=validation.check_mapping(patch, "patch"),
                                  merge=bool(merge))
        return (await self._append(ref(session), [changed]))[0]

    async def track_interaction(self, session: SessionRef, *, tokens_in: int = 0,
                                tokens_out: int = 0, response_time: float = 0.0,
                                model: str | None = None,
                                provider: str | None = None) -> RecordedEvent:
        validation.check_tokens(tokens_in, "tokens_in")
        validation.check_tokens(tokens_out, "tokens_out")
        validation.check_non_negative(response_time, "response_time")
        tracked = InteractionTracked(tokens_in=tokens_in, tokens_out=tokens_out,
                                     response_time=float(response_time), model=model,
                                     provider=provider)
        return (await self._append(ref(session), [tracked]))[0]

    async def archive_session(self, session: SessionRef) -> RecordedEvent:
        return (await self._append(ref(session), [SessionArchived()]))[0]

    async def reactivate_session(self, session: SessionRef) -> RecordedEvent:
        return (await self._append(ref(session), [SessionReactivated()]))[0]

    async def end_session(self, session: SessionRef) -> RecordedEvent:
        return (await self._append(ref(session), [SessionEnded()]))[0]

    async def clear_history(self, session: SessionRef) -> RecordedEvent:
        """The visible history starts over; the log keeps every message."""
        return (await self._append(ref(session), [HistoryCleared()]))[0]

    async def cleanup_expired_sessions(self) -> int:
        """Expire active sessions idle past their own timeout; returns how many."""
        now = time.time()
        expired = 0
        for head in await reads.overdue_heads(self.db, now):
            append = self.log.prepare_append(
                head.key, [SessionExpired(idle_seconds=now - head.last_update_time)],
                expected_version=head.version)
            try:
                await self._commit([append])
            except (ConcurrencyError, SessionNotFound):
                continue  # activity or a delete won the race: not idle any more
            expired += 1
        return expired

    async def import_records(self, records: Iterable[RecordedEvent]) -> ImportReport:
        """Append the session streams of exported records, keeping their event ids: what
        is already stored is not added again, so importing twice is a no-op.

        Payloads (message timestamps included) and each event's `recorded_at` are kept as
        they were (so a session's `created_at`, `last_update_time` and `expires_at` too);
        positions, hashes and anchors are this log's own: a new chain over the original
        times. Scope streams are not imported: the sessions' own deltas write them again
        (event ids `f"{event_id}:{scope}"`, at the time of the event that wrote them). A
        stream whose stored events are a prefix of the exported ones gets the rest.
        """
        streams: dict[SessionKey, list[RecordedEvent]] = {}
        for record in records:
            if not isinstance(record, RecordedEvent):
                raise InvalidEvent(f"import_records takes RecordedEvent records, not "
                                   f"{type(record).__name__}")
            if record.session_id:
                streams.setdefault(record.key, []).append(record)
        added = added_sessions = 0
        for key, found in streams.items():
            found.sort(key=lambda r: r.version)
            missing = await self._not_stored(key, found)
            if not missing:
                continue
            appends = [self.log.prepare_append(key, [r.data for r in missing],
                                               event_ids=[r.event_id for r in missing],
                                               recorded_at=[r.recorded_at for r in missing])]
            by_stream: dict[SessionKey, list[tuple[RecordedEvent, dict[str, Any]]]] = {}
            for record in missing:
                for stream, shared in shared_deltas(key, delta_of(record.data)):
                    by_stream.setdefault(stream, []).append((record, shared))
            for stream, changes in by_stream.items():
                scope = "user" if stream.user_id else "app"
                appends.append(self.log.prepare_append(
                    stream, [shared_change(key, stream, d) for _, d in changes],
                    event_ids=[f"{r.event_id}:{scope}" for r, _ in changes],
                    recorded_at=[r.recorded_at for r, _ in changes]))
            sent = {id(payload) for payload in appends[0].payloads}
            fresh = sum(id(r.data) in sent for r in await self._commit(appends))
            added += fresh
            added_sessions += bool(fresh) and len(missing) == len(found)
        read = sum(len(found) for found in streams.values())
        return ImportReport(sessions=len(streams), events=read, added=added,
                            sessions_added=added_sessions)

    async def _not_stored(self, key: SessionKey, exported: list[RecordedEvent]
                          ) -> list[RecordedEvent]:
        """The exported events of `key` its stream does not hold yet: all of them, none, or
        the ones after those it holds (an export of a session that went on since)."""
        stored = {r.event_id async for r in self.log.read_stream(key)}
        if not stored:
            return exported
        held = [r.event_id in stored for r in exported]
        count = sum(held)
        if count == len(exported):
            return []
        if not count or all(held[:count]):  # none (appended after the stored ones), or a
            return exported[count:]            # prefix: the rest
        raise InvalidEvent(f"session {key.app_name}/{key.user_id}/{key.session_id} already "
                           f"holds {count} of the {len(exported)} exported events, not as a "
                           "prefix: import it into another store")

    async def _append(self, key: SessionKey, payloads: Sequence[Payload], *,
                      expected_version: int | None = ANY,
                      event_ids: Sequence[str | None] | None = None) -> list[RecordedEvent]:
        """Append to the session's stream, plus app/user scope streams for shared state keys.

        The middleware runs first: the scope streams get the shared keys of the payloads
        as transformed (what the session's own events store), each linked to the session
        that wrote it (`StateChanged.session_id`) so a purge of the session erases it.
        `temp:` keys were dropped before, so neither the middleware nor the log sees them.
        """
        payloads = await self.hooks.transform(key, payloads)
        delta: dict[str, Any] = {}
        for payload in payloads:
            delta.update(delta_of(payload))
        # Scope streams first: their events get lower positions than the session's, so the
        # session as of version N (`at_version`) includes the shared state written with N.
        # They land in the session's commit, so they share its `recorded_at` (what a purge
        # looks them up by, `session_store.purging`).
        appends = [self.log.prepare_append(stream, [shared_change(key, stream, shared)])
                   for stream, shared in shared_deltas(key, delta)]
        appends.append(self.log.prepare_append(key, payloads, expected_version=expected_version,
                                               event_ids=event_ids))
        records = await self._commit(appends)
        return [r for r in records if r.session_id == key.session_id]

    async def _commit(self, appends: Sequence[Append]) -> list[RecordedEvent]:
        records = await self.log.commit(appends)
        if records:
            self.written = max(self.written, records[-1].position)
        if any(append.caller_ids for append in appends):
            # An idempotent re-send answers with the stored records: no new fact, no hooks.
            # Fresh records carry the very payload objects handed in; stored ones are decoded.
            sent = {id(payload) for append in appends for payload in append.payloads}
            await self.hooks.notify([r for r in records if id(r.data) in sent])
        else:
            await self.hooks.notify(records)
        return records
