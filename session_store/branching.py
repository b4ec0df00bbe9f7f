"""Branching a conversation: fork a session at a version, rewind it, compact its history.

Each is a fact in the log. A fork is a new session whose stream opens with the source's
visible messages at that version (copies, with their own timestamps) and a
`SessionForked` carrying the source's state then; the source records a `ForkCreated`
in the same commit, so both ends name each other. A rewind appends a `HistoryRewound`
that takes the later messages out of the visible history and puts the session-scoped
state back; a compaction appends a `HistoryCompacted` whose summary stands for the
older messages. The log, and `replay` of any version, keep every message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from session_store import reads
from session_store.appending import Appending, SessionRef
from session_store.domain import validation
from session_store.domain.events import (
    Event,
    ForkCreated,
    HistoryCompacted,
    HistoryRewound,
    MessageAppended,
    Payload,
    RecordedEvent,
    SessionCreated,
    SessionForked,
    SessionKey,
)
from session_store.domain.ids import new_id
from session_store.domain.lifecycle import Head, fold_all, visible_history
from session_store.domain.snapshot import Session
from session_store.domain.validation import ref
from session_store.errors import (
    ConcurrencyError,
    InvalidEvent,
    SessionAlreadyExists,
    SessionNotFound,
)
from session_store.log import ANY, NO_STREAM
from session_store.state_history import StateValue, state_history

SUMMARY_AUTHOR = "summary"
"""The author of a summary given as text (`compact(session, "...")`)."""


async def head_at(store: Branching, key: SessionKey, version: int | None
                  ) -> tuple[Head, list[RecordedEvent]]:
    """The session folded from its log up to `version` (now, when None), with its message
    and compaction records; `SessionNotFound` when it is not visible, `InvalidEvent` when
    it has not reached `version`."""
    if await reads.tombstoned(store.db, key):
        raise SessionNotFound(f"session {key.session_id!r} was deleted")
    records: list[RecordedEvent] = []
    history: list[RecordedEvent] = []
    async for record in store.log.read_stream(key, to_version=version):
        records.append(record)
        if isinstance(record.data, (MessageAppended, HistoryCompacted)):
            history.append(record)
    head = fold_all(records)
    if head is None or head.deleted:
        raise SessionNotFound(f"session {key.session_id!r} of user {key.user_id!r} in app "
                              f"{key.app_name!r} does not exist")
    if version is not None and head.version < version:
        raise InvalidEvent(f"session {key.session_id!r} has {head.version} events, "
                           f"not {version}")
    return head, history


def _check_version(value: Any, what: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or value < 1):
        raise InvalidEvent(f"{what} must be an int >= 1, not {value!r}")
    validation.check_count(value, what)


async def fork_session(store: Branching, source: SessionKey, *, at_version: int | None,
                       session_id: str | None, user_id: str | None,
                       metadata: Mapping[str, Any] | None,
                       tags: Sequence[str] | None) -> SessionKey:
    """Append the fork of `source` at `at_version` (now, when None); returns its key."""
    _check_version(at_version, "at_version")
    fork = validation.key_of(source.app_name, source.user_id if user_id is None else user_id,
                             new_id() if session_id is None else session_id)
    if fork == source:
        raise InvalidEvent("a fork needs a session id of its own")
    head, history = await head_at(store, source, at_version)
    payloads: list[Payload] = [SessionCreated(
        metadata=dict(head.metadata) if metadata is None
        else validation.check_mapping(metadata, "metadata"),
        tags=list(head.tags) if tags is None else validation.tags_of(tags),
        timeout=head.timeout)]
    for record in visible_history(head, history):
        data = record.data
        if isinstance(data, HistoryCompacted):  # the summary opens the fork's history too
            payloads.append(HistoryCompacted(summary=data.summary,
                                             through_version=len(payloads)))
        else:
            payloads.append(data)
    payloads.append(SessionForked(source_app_name=source.app_name,
                                  source_user_id=source.user_id,
                                  source_session_id=source.session_id,
                                  at_version=head.version, state=dict(head.state)))
    link = ForkCreated(app_name=fork.app_name, user_id=fork.user_id,
                       session_id=fork.session_id, at_version=head.version)
    try:
        await store._commit([store.log.prepare_append(fork, payloads,
                                                      expected_version=NO_STREAM),
                             store.log.prepare_append(source, [link])])
    except ConcurrencyError:
        raise SessionAlreadyExists(
            f"session {fork.session_id!r} of user {fork.user_id!r} in app "
            f"{fork.app_name!r} already exists (ids of deleted sessions are never "
            "reused)") from None
    return fork


async def rewind(store: Branching, key: SessionKey, to_version: int, *,
                 expected_version: int | None = ANY) -> RecordedEvent:
    """Append the `HistoryRewound` that takes the session back to `to_version`."""
    if to_version is None:
        raise InvalidEvent("rewind needs to_version")
    _check_version(to_version, "to_version")
    head, _ = await head_at(store, key, to_version)
    rewound = HistoryRewound(to_version=to_version, state=dict(head.state),
                             history_from=head.history_from, retracted=list(head.retracted),
                             hidden=list(head.hidden), summary_version=head.summary_version)
    return (await store._append(key, [rewound], expected_version=expected_version))[0]


def summary_event(summary: Event | str) -> Event:
    """The summary message of a compaction: an `Event`, or text said by the system."""
    if isinstance(summary, str):
        summary = Event(role="system", author=SUMMARY_AUTHOR,
                        text=validation.check_text(summary, "summary"))
    validation.check_event(summary)
    if summary.state_delta:
        raise InvalidEvent("a summary changes no state: give it no state_delta")
    return summary


async def compact(store: Branching, key: SessionKey, summary: Event | str, *,
                  through_version: int | None, keep_recent: int | None,
                  expected_version: int | None = ANY) -> RecordedEvent:
    """Append the `HistoryCompacted` whose `summary` stands for the visible messages up to
    `through_version`, or all but the `keep_recent` newest (every one, given neither)."""
    message = summary_event(summary)
    if through_version is not None and keep_recent is not None:
        raise InvalidEvent("give through_version or keep_recent, not both")
    _check_version(through_version, "through_version")
    validation.check_count(keep_recent, "keep_recent")
    head, _ = await reads.load_heads(store.db, key)
    if head is None or head.deleted:
        raise SessionNotFound(f"session {key.session_id!r} of user {key.user_id!r} in app "
                              f"{key.app_name!r} does not exist")
    if through_version is None:
        through_version = head.version
        if keep_recent:
            recent = await reads.load_session(store.db, key, limit=keep_recent, since=None)
            messages = [r for r in recent.messages if isinstance(r.data, MessageAppended)]
            if len(messages) == keep_recent:
                through_version = messages[0].version - 1
            else:  # no more than that many: nothing older to stand for
                through_version = head.history_from
    elif through_version > head.version:
        raise InvalidEvent(f"session {key.session_id!r} has {head.version} events, "
                           f"not {through_version}")
    compacted = HistoryCompacted(summary=message, through_version=through_version)
    return (await store._append(key, [compacted], expected_version=expected_version))[0]


class Branching(Appending):
    """Fork, rewind, compact and a key's history (mixed into `SessionStore`)."""

    if TYPE_CHECKING:
        async def get_session(self, *, app_name: str, user_id: str,
                              session_id: str) -> Session | None: ...

    async def fork_session(self, session: SessionRef, *, at_version: int | None = None,
                           session_id: str | None = None, user_id: str | None = None,
                           metadata: Mapping[str, Any] | None = None,
                           tags: Sequence[str] | None = None) -> Session:
        """A new session starting from `session` as it was at `at_version` (now, when None):
        its session state and visible messages; both record the link (`forked_from`,
        `forks`). Metadata and tags are the source's unless given."""
        fork = await fork_session(self, ref(session), at_version=at_version,
                                            session_id=session_id, user_id=user_id,
                                            metadata=metadata, tags=tags)
        forked = await self.get_session(app_name=fork[0], user_id=fork[1], session_id=fork[2])
        assert forked is not None
        return forked

    async def rewind(self, session: SessionRef, *, to_version: int,
                     expected_version: int | None = ANY) -> RecordedEvent:
        """Go back to version `to_version`: later messages leave the visible history and the
        session state is as it was then; the log (and `replay`) keep everything."""
        return await rewind(self, ref(session), to_version,
                                      expected_version=expected_version)

    async def compact(self, session: SessionRef, summary: Event | str, *,
                      through_version: int | None = None, keep_recent: int | None = None,
                      expected_version: int | None = ANY) -> RecordedEvent:
        """A summary that stands for the older visible messages (up to `through_version`, or
        all but the `keep_recent` newest; all, given neither): reads show it, then the rest."""
        return await compact(self, ref(session), summary,
                                       through_version=through_version,
                                       keep_recent=keep_recent,
                                       expected_version=expected_version)

    async def state_history(self, session: SessionRef, key: str) -> list[StateValue]:
        """Every value state `key` took, oldest first, with its version and time; `app:` and
        `user:` keys from their shared scope streams."""
        return await state_history(self.db, self.log, ref(session), key)
