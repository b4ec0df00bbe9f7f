"""The facade: commands become events appended to the log (`session_store.appending`);
queries read projections.

`open_store()` opens (and creates or upgrades) a store; every method of
`SessionStore` is async. See docs/API.md for the contract.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any

from projections.analytics import Analytics, AnalyticsProjection
from projections.heads import HeadsProjection
from projections.health import Health
from projections.history import History, HistoryProjection
from projections.protocol import Projection
from projections.rebuild import Progress, RebuildReport
from projections.retention import RetentionIndex, RetentionProjection
from projections.runtime import ProjectionRuntime
from projections.users import Users, UsersProjection
from session_store import audit, purging, reads
from session_store.appending import SessionRef
from session_store.branching import Branching
from session_store.domain import validation
from session_store.domain.events import (
    RecordedEvent,
    SessionCreated,
    SessionKey,
)
from session_store.domain.ids import new_id
from session_store.domain.scopes import without_temp
from session_store.domain.snapshot import SESSION, WINDOW, Session, SessionPage, snapshot
from session_store.domain.times import Instant, moment, optional_seconds
from session_store.domain.validation import check_count, key_of, ref
from session_store.errors import (
    ConcurrencyError,
    InvalidEvent,
    SessionAlreadyExists,
    SessionNotFound,
    StoreUnavailable,
)
from session_store.home_loop import running_loop
from session_store.hooks import Hook, Hooks, Middleware
from session_store.log import NO_STREAM
from session_store.log.eventlog import EventLog
from session_store.messages import MessageReads
from session_store.replay import replay_session
from session_store.storage import failures
from session_store.storage.database import Database, Durability, connect
from session_store.storage.database import database_file as database_file  # for the CLI
from session_store.storage.database import describe_url as describe_url  # for the CLI
from session_store.transfer import Transfer
from session_store.upkeep import Upkeep


class SessionStore(Upkeep, Branching, MessageReads, Transfer):
    """Sessions of AI-agent conversations, kept as an event log with projections."""

    history: History
    """Messages with filters and full-text search."""
    users: Users
    """Per-user summaries."""
    analytics: Analytics
    """Tokens, messages and response times per session, user, app and day."""

    def __init__(self, db: Database, log: EventLog, runtime: ProjectionRuntime) -> None:
        self.db = db
        self.log = log
        self.projections = runtime
        self.hooks = Hooks()
        self.written = 0
        """The newest log position this store has appended (read-your-writes target)."""
        self.home_loop = running_loop() if db.dialect.loop_bound else None
        """The event loop this store must be called on (it opened there), None when any
        loop will do (SQLite); `session_store.home_loop.on_home_loop` calls it from others."""
        found = runtime.projections
        self.history = History(db, _built_in(found, "history", HistoryProjection), self._ready)
        self.users = Users(db, _built_in(found, "users", UsersProjection), self._ready)
        self.analytics = Analytics(db, _built_in(found, "analytics", AnalyticsProjection),
                                   self._ready)
        self.retention = RetentionIndex(db, _built_in(found, "retention", RetentionProjection),
                                        self._ready)

    @classmethod
    async def open(cls, url: str | None = None, *, durability: Durability = "normal",
                   max_event_bytes: int = validation.DEFAULT_MAX_EVENT_BYTES,
                   projections: Mapping[str, str] | None = None,
                   extra_projections: Sequence[Projection] = (),
                   pool_size: int = 10, hash_key: str | bytes | None = None,
                   busy_timeout: float = 30.0,
                   maintenance_interval: float | timedelta | None = None) -> SessionStore:
        """`hash_key` (default `$SESSION_STORE_HASH_KEY`) keys the log's anchors (HMAC):
        keep it outside the database, and give it to every process that opens the store.
        `busy_timeout`: seconds a SQLite write waits for another process's lock.
        `maintenance_interval`: seconds between background `enforce_retention` runs."""
        anchor_key = audit.anchor_key(hash_key)
        interval = validation.timeout_of(maintenance_interval, "maintenance_interval")
        validation.check_non_negative(busy_timeout, "busy_timeout")
        db = connect(url, durability=durability, pool_size=pool_size, busy_timeout=busy_timeout)
        log = EventLog(db, max_event_bytes=max_event_bytes, anchor_key=anchor_key)
        runtime = ProjectionRuntime(log, [
            HeadsProjection(), HistoryProjection(), UsersProjection(), AnalyticsProjection(),
            RetentionProjection(), *extra_projections], modes=projections)
        try:
            await log.prepare()
            await runtime.start()
        except OSError as error:
            await db.dispose()
            raise StoreUnavailable(f"cannot open {db.display_url}: {error}") from None
        except Exception as error:
            await db.dispose()
            failed = (failures.unavailable(error, db.display_url, "the store was not opened")
                      or failures.server_unavailable(error, db.display_url))
            if failed is None:
                raise
            raise failed from None
        except BaseException:
            await db.dispose()
            raise
        store = cls(db, log, runtime)
        store.start_upkeep(busy_timeout, interval)
        return store

    async def close(self) -> None:
        await self.stop_upkeep()
        await self.projections.close()
        await self.log.close()
        await self.db.dispose()

    async def __aenter__(self) -> SessionStore:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self.close()

    # --- read models, hooks, the store itself -------------------------------------------

    async def _ready(self) -> None:
        """Read-your-writes: the catch-up read models have folded what this store wrote."""
        await self.projections.wait_for(self.written, _READ_YOUR_WRITES_SECONDS)

    async def wait_for(self, position: int, timeout: float | None = None) -> None:
        """Return once every catch-up projection has folded the log up to `position`."""
        validation.check_wait(position, timeout)
        await self.projections.wait_for(position, timeout)

    def use(self, middleware: Middleware) -> None:
        """Add a middleware that transforms or rejects payloads before they are appended."""
        self.hooks.middleware.append(middleware)

    def on(self, event: str, hook: Hook) -> None:
        """Call `hook(recorded_event)` after each committed event of that type ('*' for all)."""
        self.hooks.on(event, hook)

    @property
    def display_url(self) -> str:
        """Where the store lives, password hidden."""
        return self.db.display_url

    @property
    def projection_names(self) -> list[str]:
        return sorted(self.projections.projections)

    async def last_position(self) -> int:
        """The position of the newest event in the log (0 when empty)."""
        return await self.log.last_position()

    async def count_events(self) -> int:
        """How many events the log holds (every stream, scope streams included)."""
        return await self.log.count()

    # --- sessions -----------------------------------------------------------------------

    async def create_session(self, *, app_name: str, user_id: str, session_id: str | None = None,
                             state: Mapping[str, Any] | None = None,
                             metadata: Mapping[str, Any] | None = None,
                             tags: Sequence[str] | None = None,
                             timeout: float | timedelta | None = None) -> Session:
        key = key_of(app_name, user_id, new_id() if session_id is None else session_id)
        initial = validation.check_mapping(state or {}, "state")
        created = SessionCreated(
            state=without_temp(initial), metadata=validation.check_mapping(metadata or {},
                                                                             "metadata"),
            tags=validation.tags_of(tags), timeout=validation.timeout_of(timeout))
        try:
            await self._append(key, [created], expected_version=NO_STREAM)
        except ConcurrencyError:
            raise SessionAlreadyExists(
                f"session {key.session_id!r} of user {key.user_id!r} in app {key.app_name!r} "
                "already exists (ids of deleted sessions are never reused)") from None
        session = await self.get_session(app_name=key[0], user_id=key[1], session_id=key[2])
        assert session is not None
        return session

    async def get_session(self, *, app_name: str, user_id: str, session_id: str,
                          num_recent_events: int | None = None,
                          after_timestamp: Instant | None = None,
                          at_version: int | None = None,
                          as_of: Instant | None = None) -> Session | None:
        """The session now (or as it was after event `at_version`, or at the moment `as_of`:
        after its last event recorded then); None when not visible (or not yet created).
        `after_timestamp` keeps the messages whose own time is at or after it."""
        key = key_of(app_name, user_id, session_id)
        check_count(num_recent_events, "num_recent_events")
        since = optional_seconds(after_timestamp, "after_timestamp")
        if as_of is not None:
            if at_version is not None:
                raise InvalidEvent("give at_version or as_of, not both")
            at_version = await reads.version_at(self.db, key, moment(as_of, "as_of"))
            if at_version is None:
                return None  # nothing was recorded yet at that moment
        if at_version is not None:
            check_count(at_version, "at_version")
            return await replay_session(self.log, key, to_version=at_version,
                                        recent=num_recent_events, since=since)
        loaded = await reads.load_session(self.db, key, limit=num_recent_events, since=since)
        head = loaded.head
        if head is None or head.deleted:
            return None
        whole = num_recent_events is None and since is None
        return snapshot(head, loaded.scoped, loaded.messages, covers=SESSION if whole else WINDOW,
                        tracked_times=loaded.tracked_times)

    async def get_user_state(self, *, app_name: str, user_id: str) -> dict[str, Any]:
        """The `user:` state shared by the user's sessions in the app, keys without prefix.

        It outlives the sessions that wrote it (as in Google ADK).
        """
        stream = SessionKey(validation.check_id(app_name, "app_name"),
                            validation.check_id(user_id, "user_id"), "")
        state = await reads.scope_state(self.db, stream)
        return {k.removeprefix("user:"): v for k, v in state.items()}

    async def get_app_state(self, *, app_name: str) -> dict[str, Any]:
        """The `app:` state shared by every session of the app, keys without prefix."""
        stream = SessionKey(validation.check_id(app_name, "app_name"), "", "")
        state = await reads.scope_state(self.db, stream)
        return {k.removeprefix("app:"): v for k, v in state.items()}

    async def list_sessions(self, *, app_name: str, user_id: str | None = None,
                            status: str | None = None, tags: Sequence[str] | None = None,
                            since: Instant | None = None, limit: int = 100,
                            cursor: str | None = None) -> SessionPage:
        """Session summaries (state and metadata, no events), oldest activity first."""
        validation.check_id(app_name, "app_name")
        if user_id is not None:
            validation.check_id(user_id, "user_id")
        validation.check_status(status)
        since = optional_seconds(since, "since")
        validation.check_page_limit(limit)
        query = reads.page_query(app_name=app_name, user_id=user_id, status=status,
                                 tags=validation.tags_of(tags) if tags else None, since=since,
                                 cursor=cursor, limit=limit, now=time.time())
        return await reads.list_page(self.db, query, app_name=app_name, limit=limit)

    async def get_user_sessions(self, *, app_name: str, user_id: str) -> list[Session]:
        sessions: list[Session] = []
        cursor: str | None = None
        while True:
            page = await self.list_sessions(app_name=app_name, user_id=user_id, limit=1000,
                                            cursor=cursor)
            sessions.extend(page.sessions)
            if page.next_cursor is None:
                return sessions
            cursor = page.next_cursor

    async def find_sessions(self, session_id: str, *, app_name: str | None = None,
                            user_id: str | None = None, limit: int = 20) -> list[SessionKey]:
        """Keys of the visible sessions with this id, in any app (narrowed when given)."""
        validation.check_id(session_id, "session_id")
        for value, what in ((app_name, "app_name"), (user_id, "user_id")):
            if value is not None:
                validation.check_id(value, what)
        validation.check_page_limit(limit)
        return await reads.find_sessions(self.db, session_id, app_name=app_name,
                                         user_id=user_id, limit=limit)

    async def app_names(self) -> list[str]:
        """Every app that has sessions, in order."""
        return await reads.app_names(self.db)

    async def delete_session(self, *, app_name: str, user_id: str, session_id: str,
                             purge: bool = False) -> None:
        """Tombstone the session (hidden everywhere, id never reused); `purge` also erases its
        payloads and the `app:`/`user:` values it wrote, keeping the facts (`purging`)."""
        await purging.delete_session(self, key_of(app_name, user_id, session_id), purge=purge)

    async def purge_user(self, *, app_name: str, user_id: str) -> purging.PurgeReport:
        """Forget a user of an app: purge every session of theirs, their `user:` state and the
        `app:` values their sessions wrote. Idempotent; an unknown user is a no-op."""
        return await purging.purge_user(self, validation.check_id(app_name, "app_name"),
                                        validation.check_id(user_id, "user_id"))

    # --- the log ---------------------------------------------------------------------------

    def read_stream(self, session: SessionRef, *, from_version: int = 1,
                    to_version: int | None = None) -> AsyncIterator[RecordedEvent]:
        key = ref(session)  # the arguments are checked here, not at the first iteration
        validation.check_position(from_version, "from_version")
        check_count(to_version, "to_version")
        return self.log.read_stream(key, from_version=from_version, to_version=to_version)

    def read_all(self, *, from_position: int = 0, limit: int | None = None,
                 **filters: Any) -> AsyncIterator[RecordedEvent]:
        validation.check_position(from_position, "from_position")
        check_count(limit, "limit")
        validation.check_read_filters(filters)
        return self.log.read_all(from_position=from_position, limit=limit, **filters)

    def subscribe(self, *, from_position: int = 0, **filters: Any
                  ) -> AsyncIterator[RecordedEvent]:
        validation.check_position(from_position, "from_position")
        validation.check_read_filters(filters)
        return self.log.subscribe(from_position=from_position, **filters)

    async def replay(self, session: SessionRef, *, to_version: int | None = None) -> Session:
        """The session folded from the log alone (no read model involved)."""
        key = ref(session)
        check_count(to_version, "to_version")
        replayed = await replay_session(self.log, key, to_version=to_version)
        if replayed is None:
            raise SessionNotFound(f"session {key.session_id!r} has no events to replay")
        return replayed

    async def verify(self, session: SessionRef | None = None, *,
                     digest: str | audit.Digest | None = None) -> audit.Report:
        """Audit the log (every row decodes, hash chains, anchors, versions, positions, the
        log's own bookkeeping, the append-only triggers) and compare the projections with a
        fresh fold; with a `digest` (from `digest()`), also that the log still extends it."""
        return await audit.verify(self.log, self.projections,
                                  None if session is None else ref(session), digest=digest)

    async def digest(self) -> audit.Digest:
        """The log's digest: its last position and anchor. Keep it outside the database;
        `verify(digest=...)` later proves the log still extends it."""
        return audit.Digest(*await self.log.tail())

    async def rebuild(self, names: Sequence[str] | None = None,
                      progress: Progress | None = None, **options: Any) -> RebuildReport:
        """Replay the log into fresh tables of the named projections (all by default) and
        swap them in; `progress(done, total)` is called as the pass goes."""
        return await self.projections.rebuild(names, progress, **options)

    async def health(self) -> Health:
        """How the read models stand: per projection its checkpoint, the log's last position,
        the lag and the events it quarantined (could not fold, skipped), and the catch-up
        follower's current error, if any (it retries). Waits for nothing."""
        return await self.projections.health()

    async def retry_quarantined(self, names: Sequence[str] | None = None,
                                progress: Progress | None = None) -> RebuildReport | None:
        """After fixing what made events fail to fold (an upcaster, new code): rebuild the
        projections holding quarantined events; what still fails stays quarantined and is
        in the report. None when no projection holds any."""
        return await self.projections.retry_quarantined(names, progress)


_READ_YOUR_WRITES_SECONDS = 30.0
"""How long a read-model query waits for the follower to reach the store's own writes."""


def _built_in(found: Mapping[str, Projection], name: str, kind: type[Any]) -> Any:
    projection = found[name]
    if not isinstance(projection, kind):
        raise TypeError(f"projection {name!r} must be a {kind.__name__}")
    return projection


class _Opening:
    """What `open_store()` returns: `async with` it, or `await` it for a store to close later."""

    def __init__(self, url: str | None, settings: dict[str, Any]) -> None:
        self._url, self._settings = url, settings
        self._store: SessionStore | None = None

    def __await__(self) -> Any:
        return SessionStore.open(self._url, **self._settings).__await__()

    async def __aenter__(self) -> SessionStore:
        self._store = await SessionStore.open(self._url, **self._settings)
        return self._store

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> None:
        if self._store is not None:
            await self._store.close()


def open_store(url: str | None = None, **settings: Any) -> _Opening:
    """Open the store at `url` (default `$SESSION_STORE_URL`, then ./sessions.db)."""
    return _Opening(url, settings)
