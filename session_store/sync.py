"""`SyncSessionStore`: the methods of `SessionStore`, blocking.

It runs its own event loop in a background thread; any number of caller threads
may call it at once (calls are handed to that loop, where the group-commit writer
batches them). Reads of the log come back as lists, `subscribe` as a blocking
iterator, and the read models (`history`, `users`, `analytics`) as blocking query
objects. Every method is written out, with the async one's signature.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator, Coroutine, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, TypeVar

from projections.analytics import Analytics, Stats
from projections.health import Health
from projections.history import History, Message
from projections.rebuild import Progress, RebuildReport
from projections.summary import Summary, When
from projections.users import Users, UserSession, UserSummary
from session_store.appending import ImportReport, SessionRef
from session_store.audit import Report
from session_store.domain.events import Event, RecordedEvent, SessionKey
from session_store.domain.messages import StoredMessage
from session_store.domain.retention import RetentionPolicy
from session_store.domain.snapshot import Session, SessionPage
from session_store.domain.times import Instant
from session_store.hooks import Hook, Middleware
from session_store.log import ANY
from session_store.loop_thread import LoopThread
from session_store.purging import PurgeReport
from session_store.retention import RetentionReport
from session_store.state_history import StateValue
from session_store.store import SessionStore
from session_store.upkeep import OptimizeReport

T = TypeVar("T")


async def _collect(iterator: AsyncIterator[T]) -> list[T]:
    return [item async for item in iterator]


class SyncSessionStore:
    """A thread-safe, blocking facade over `SessionStore`."""

    def __init__(self, url: str | None = None, **settings: Any) -> None:
        self._loop = LoopThread()
        try:
            self._store: SessionStore = self._loop.run(SessionStore.open(url, **settings))
        except BaseException:
            self._loop.stop()
            raise
        self.history = SyncHistory(self._store.history, self._loop)
        self.users = SyncUsers(self._store.users, self._loop)
        self.analytics = SyncAnalytics(self._store.analytics, self._loop)

    def close(self) -> None:
        """Close the store. Calls still running finish or raise `StoreUnavailable`, as does
        every later call; closing again, or from several threads at once, is harmless."""
        self._loop.stop(self._store.close())

    def __enter__(self) -> SyncSessionStore:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    @property
    def store(self) -> SessionStore:
        """The async store underneath (its methods must run on this store's loop)."""
        return self._store

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the async store runs on, in this store's background thread."""
        return self._loop.loop

    @property
    def display_url(self) -> str:
        return self._store.display_url

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine of the async store (`store`) on this store's loop, blocking; a
        closed store raises `StoreUnavailable` (what the compat managers build on)."""
        return self._loop.run(coroutine)

    @property
    def projection_names(self) -> list[str]:
        return self._store.projection_names

    def use(self, middleware: Middleware) -> None:
        self._store.use(middleware)

    def on(self, event: str, hook: Hook) -> None:
        self._store.on(event, hook)

    def wait_for(self, position: int, timeout: float | None = None) -> None:
        self._loop.run(self._store.wait_for(position, timeout))

    def last_position(self) -> int:
        return self._loop.run(self._store.last_position())

    def count_events(self) -> int:
        return self._loop.run(self._store.count_events())

    # --- sessions -----------------------------------------------------------------------

    def create_session(self, *, app_name: str, user_id: str, session_id: str | None = None,
                       state: Mapping[str, Any] | None = None,
                       metadata: Mapping[str, Any] | None = None,
                       tags: Sequence[str] | None = None,
                       timeout: float | timedelta | None = None) -> Session:
        return self._loop.run(self._store.create_session(
            app_name=app_name, user_id=user_id, session_id=session_id, state=state,
            metadata=metadata, tags=tags, timeout=timeout))

    def get_session(self, *, app_name: str, user_id: str, session_id: str,
                    num_recent_events: int | None = None, after_timestamp: Instant | None = None,
                    at_version: int | None = None,
                    as_of: float | datetime | None = None) -> Session | None:
        return self._loop.run(self._store.get_session(
            app_name=app_name, user_id=user_id, session_id=session_id,
            num_recent_events=num_recent_events, after_timestamp=after_timestamp,
            at_version=at_version, as_of=as_of))

    def get_user_state(self, *, app_name: str, user_id: str) -> dict[str, Any]:
        return self._loop.run(self._store.get_user_state(app_name=app_name, user_id=user_id))

    def get_app_state(self, *, app_name: str) -> dict[str, Any]:
        return self._loop.run(self._store.get_app_state(app_name=app_name))

    def list_sessions(self, *, app_name: str, user_id: str | None = None,
                      status: str | None = None, tags: Sequence[str] | None = None,
                      since: Instant | None = None, limit: int = 100,
                      cursor: str | None = None) -> SessionPage:
        return self._loop.run(self._store.list_sessions(
            app_name=app_name, user_id=user_id, status=status, tags=tags, since=since,
            limit=limit, cursor=cursor))

    def get_user_sessions(self, *, app_name: str, user_id: str) -> list[Session]:
        return self._loop.run(self._store.get_user_sessions(app_name=app_name, user_id=user_id))

    def find_sessions(self, session_id: str, *, app_name: str | None = None,
                      user_id: str | None = None, limit: int = 20) -> list[SessionKey]:
        return self._loop.run(self._store.find_sessions(
            session_id, app_name=app_name, user_id=user_id, limit=limit))

    def app_names(self) -> list[str]:
        return self._loop.run(self._store.app_names())

    def delete_session(self, *, app_name: str, user_id: str, session_id: str,
                       purge: bool = False) -> None:
        self._loop.run(self._store.delete_session(
            app_name=app_name, user_id=user_id, session_id=session_id, purge=purge))

    def purge_user(self, *, app_name: str, user_id: str) -> PurgeReport:
        return self._loop.run(self._store.purge_user(app_name=app_name, user_id=user_id))

    # --- appending ------------------------------------------------------------------------

    def append_event(self, session: SessionRef, event: Event, *,
                     expected_version: int | None = ANY) -> RecordedEvent:
        return self._loop.run(self._store.append_event(
            session, event, expected_version=expected_version))

    def append_events(self, session: SessionRef, events: Sequence[Event], *,
                      expected_version: int | None = ANY) -> list[RecordedEvent]:
        return self._loop.run(self._store.append_events(
            session, events, expected_version=expected_version))

    def retract_message(self, session: SessionRef, message_id: str, *,
                        expected_version: int | None = ANY) -> RecordedEvent:
        return self._loop.run(self._store.retract_message(
            session, message_id, expected_version=expected_version))

    def fork_session(self, session: SessionRef, *, at_version: int | None = None,
                     session_id: str | None = None, user_id: str | None = None,
                     metadata: Mapping[str, Any] | None = None,
                     tags: Sequence[str] | None = None) -> Session:
        return self._loop.run(self._store.fork_session(
            session, at_version=at_version, session_id=session_id, user_id=user_id,
            metadata=metadata, tags=tags))

    def rewind(self, session: SessionRef, *, to_version: int,
               expected_version: int | None = ANY) -> RecordedEvent:
        return self._loop.run(self._store.rewind(session, to_version=to_version,
                                                 expected_version=expected_version))

    def compact(self, session: SessionRef, summary: Event | str, *,
                through_version: int | None = None, keep_recent: int | None = None,
                expected_version: int | None = ANY) -> RecordedEvent:
        return self._loop.run(self._store.compact(
            session, summary, through_version=through_version, keep_recent=keep_recent,
            expected_version=expected_version))

    def state_history(self, session: SessionRef, key: str) -> builtins.list[StateValue]:
        return self._loop.run(self._store.state_history(session, key))

    def add_message(self, session: SessionRef, role: str, text: str | None = None,
                    **fields: Any) -> RecordedEvent:
        return self._loop.run(self._store.add_message(session, role, text, **fields))

    def update_state(self, session: SessionRef, delta: Mapping[str, Any], *,
                     expected_version: int | None = ANY) -> RecordedEvent:
        return self._loop.run(self._store.update_state(
            session, delta, expected_version=expected_version))

    def update_session_metadata(self, session: SessionRef, patch: Mapping[str, Any], *,
                                merge: bool = True) -> RecordedEvent:
        return self._loop.run(self._store.update_session_metadata(session, patch, merge=merge))

    def track_interaction(self, session: SessionRef, *, tokens_in: int = 0,
                          tokens_out: int = 0, response_time: float = 0.0,
                          model: str | None = None,
                          provider: str | None = None) -> RecordedEvent:
        return self._loop.run(self._store.track_interaction(
            session, tokens_in=tokens_in, tokens_out=tokens_out, response_time=response_time,
            model=model, provider=provider))

    def archive_session(self, session: SessionRef) -> RecordedEvent:
        return self._loop.run(self._store.archive_session(session))

    def reactivate_session(self, session: SessionRef) -> RecordedEvent:
        return self._loop.run(self._store.reactivate_session(session))

    def end_session(self, session: SessionRef) -> RecordedEvent:
        return self._loop.run(self._store.end_session(session))

    def clear_history(self, session: SessionRef) -> RecordedEvent:
        return self._loop.run(self._store.clear_history(session))

    def cleanup_expired_sessions(self) -> int:
        return self._loop.run(self._store.cleanup_expired_sessions())

    def import_records(self, records: Iterable[RecordedEvent]) -> ImportReport:
        return self._loop.run(self._store.import_records(records))

    def import_events(self, source: Any) -> ImportReport:
        return self._loop.run(self._store.import_events(source))

    def export_session(self, *, app_name: str, user_id: str, session_id: str,
                       format: str = "jsonl") -> str:
        return self._loop.run(self._store.export_session(
            app_name=app_name, user_id=user_id, session_id=session_id, format=format))

    def get_message(self, *, app_name: str, user_id: str, session_id: str,
                    message_id: str) -> StoredMessage:
        return self._loop.run(self._store.get_message(
            app_name=app_name, user_id=user_id, session_id=session_id, message_id=message_id))

    def set_tags(self, session: SessionRef, tags: Sequence[str], *,
                 expected_version: int | None = ANY) -> RecordedEvent:
        return self._loop.run(self._store.set_tags(session, tags,
                                                   expected_version=expected_version))

    # --- the log ---------------------------------------------------------------------------

    def read_stream(self, session: SessionRef, *, from_version: int = 1,
                    to_version: int | None = None) -> list[RecordedEvent]:
        return self._loop.run(_collect(self._store.read_stream(
            session, from_version=from_version, to_version=to_version)))

    def read_all(self, *, from_position: int = 0, limit: int | None = None,
                 **filters: Any) -> list[RecordedEvent]:
        return self._loop.run(_collect(self._store.read_all(
            from_position=from_position, limit=limit, **filters)))

    def subscribe(self, *, from_position: int = 0, **filters: Any) -> Iterator[RecordedEvent]:
        """Catch up, then follow the log, blocking for each next event; never ends by itself
        (break out of the loop, or `close()` the iterator)."""
        return self._loop.iterate(self._store.subscribe(from_position=from_position, **filters))

    def replay(self, session: SessionRef, *, to_version: int | None = None) -> Session:
        return self._loop.run(self._store.replay(session, to_version=to_version))

    def verify(self, session: SessionRef | None = None) -> Report:
        return self._loop.run(self._store.verify(session))

    def rebuild(self, names: Sequence[str] | None = None, progress: Progress | None = None,
                **options: Any) -> RebuildReport:
        return self._loop.run(self._store.rebuild(names, progress, **options))

    def health(self) -> Health:
        return self._loop.run(self._store.health())

    def retry_quarantined(self, names: Sequence[str] | None = None,
                          progress: Progress | None = None) -> RebuildReport | None:
        return self._loop.run(self._store.retry_quarantined(names, progress))

    # --- retention and upkeep ----------------------------------------------------------------

    def set_retention(self, *, app_name: str, policy: RetentionPolicy | None) -> RecordedEvent:
        return self._loop.run(self._store.set_retention(app_name=app_name, policy=policy))

    def get_retention(self, *, app_name: str) -> RetentionPolicy | None:
        return self._loop.run(self._store.get_retention(app_name=app_name))

    def enforce_retention(self, *, app_name: str | None = None,
                          now: float | None = None) -> RetentionReport:
        return self._loop.run(self._store.enforce_retention(app_name=app_name, now=now))

    def cleanup(self, *, app_name: str | None = None,
                inactive_for: float | timedelta | None = None,
                archived_for: float | timedelta | None = None,
                deleted_for: float | timedelta | None = None,
                now: float | None = None) -> RetentionReport:
        return self._loop.run(self._store.cleanup(
            app_name=app_name, inactive_for=inactive_for, archived_for=archived_for,
            deleted_for=deleted_for, now=now))

    def optimize(self) -> OptimizeReport:
        return self._loop.run(self._store.optimize())


class SyncHistory:
    """`store.history`, blocking."""

    def __init__(self, queries: History, loop: LoopThread) -> None:
        self._queries, self._loop = queries, loop

    def messages(self, *, app_name: str, user_id: str, session_id: str,
                 roles: Sequence[str] | None = None, since: Instant | None = None,
                 until: Instant | None = None, after_version: int | None = None,
                 limit: int | None = None, order: str = "oldest", last: int | None = None,
                 metadata: Mapping[str, Any] | None = None) -> list[Message]:
        return self._loop.run(self._queries.messages(
            app_name=app_name, user_id=user_id, session_id=session_id, roles=roles,
            since=since, until=until, after_version=after_version, limit=limit, order=order,
            last=last, metadata=metadata))

    def search(self, text: str, *, app_name: str, user_id: str | None = None,
               session_id: str | None = None, roles: Sequence[str] | None = None,
               since: Instant | None = None, until: Instant | None = None,
               limit: int = 50, metadata: Mapping[str, Any] | None = None) -> list[Message]:
        return self._loop.run(self._queries.search(
            text, app_name=app_name, user_id=user_id, session_id=session_id, roles=roles,
            since=since, until=until, limit=limit, metadata=metadata))

    def count(self, *, app_name: str, user_id: str, session_id: str) -> int:
        return self._loop.run(self._queries.count(app_name=app_name, user_id=user_id,
                                                  session_id=session_id))


class SyncUsers:
    """`store.users`, blocking."""

    def __init__(self, queries: Users, loop: LoopThread) -> None:
        self._queries, self._loop = queries, loop

    def get(self, *, app_name: str, user_id: str) -> UserSummary | None:
        return self._loop.run(self._queries.get(app_name=app_name, user_id=user_id))

    def list(self, *, app_name: str, active_since: float | None = None,
             after: str | None = None, limit: int = 100) -> builtins.list[UserSummary]:
        return self._loop.run(self._queries.list(app_name=app_name, active_since=active_since,
                                                 after=after, limit=limit))

    def sessions(self, *, app_name: str, user_id: str, status: str | None = None
                 ) -> builtins.list[UserSession]:
        return self._loop.run(self._queries.sessions(app_name=app_name, user_id=user_id,
                                                     status=status))


class SyncAnalytics:
    """`store.analytics`, blocking."""

    def __init__(self, queries: Analytics, loop: LoopThread) -> None:
        self._queries, self._loop = queries, loop

    def by_session(self, app_name: str, user_id: str, session_id: str) -> Stats | None:
        return self._loop.run(self._queries.by_session(app_name, user_id, session_id))

    def sessions(self, app_name: str, *, user_id: str | None = None,
                 session_id: str | None = None) -> list[Stats]:
        return self._loop.run(self._queries.sessions(app_name, user_id=user_id,
                                                     session_id=session_id))

    def by_user(self, app_name: str) -> list[Stats]:
        return self._loop.run(self._queries.by_user(app_name))

    def by_app(self) -> list[Stats]:
        return self._loop.run(self._queries.by_app())

    def by_day(self, app_name: str, *, since: str | None = None,
               until: str | None = None) -> list[Stats]:
        return self._loop.run(self._queries.by_day(app_name, since=since, until=until))

    def histogram(self, by: str, app_names: Sequence[str]) -> dict[int, int]:
        return self._loop.run(self._queries.histogram(by, app_names))

    def summary(self, *, app_name: str | None = None, user_id: str | None = None,
                start: When | None = None, end: When | None = None) -> Summary:
        return self._loop.run(self._queries.summary(app_name=app_name, user_id=user_id,
                                                    start=start, end=end))
