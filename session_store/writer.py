"""The write path: group commit of appends into the log, one transaction per batch.

Callers hand `Commit`s to a writer and await their results. The writer drains
whatever is pending into one transaction: it takes the log's write lock, loads
each stream's version and last hash, checks every commit on its own (expected
version, idempotent event ids) and inserts the accepted ones together, with
the inline projections applied in the same transaction. One bad commit gets its
own error and never fails its neighbours; an unexpected database error in a
batch is retried commit by commit, each in a savepoint.

Positions are assigned as `max(position) + 1` while the write lock is held
(SQLite's `BEGIN IMMEDIATE`, PostgreSQL's transaction-level advisory lock), so
they become visible in commit order and a follower of `read_all` can never
skip an event committed late by a slower writer.
"""

from __future__ import annotations

import asyncio
import hashlib
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import structlog
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from session_store.append_sql import (
    BEGIN_LOCKED,
    WRITE_LOCK_HELD,
    PostgresAppend,
    Row,
    SQLiteAppend,
)
from session_store.errors import (
    ConcurrencyError,
    InvalidEvent,
    SessionStoreError,
    StoreUnavailable,
)
from session_store.events import Payload, RecordedEvent, SessionKey
from session_store.schema import events

log = structlog.get_logger(__name__)

InlineApply = Callable[[Connection, Sequence[RecordedEvent]], None]
"""An inline projection: folds freshly appended events into its tables, in the append's
transaction."""

MAX_BATCH_COMMITS = 512


class Append(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Events for one session stream, already validated and encoded.

    A msgspec struct rather than a frozen dataclass: one is built per append, and
    a frozen dataclass's `__init__` cost 1 µs of the ~13 the event loop spends on it.
    """

    key: SessionKey
    payloads: tuple[Payload, ...]
    encoded: tuple[bytes, ...]
    event_ids: tuple[str, ...]
    expected_version: int | None = None
    caller_ids: bool = False
    erase: bool = False


Commit = tuple[Append, ...]
"""Appends that land together or not at all (several streams possible)."""

Result = list[RecordedEvent] | BaseException


def chain_hash(previous: str, key: SessionKey, version: int, type_name: str, event_id: str,
               recorded_at: float, data: bytes) -> str:
    """The per-session chained hash: each event seals the one before it."""
    digest = hashlib.sha256(previous.encode())
    header = "\x1f".join(
        (key.app_name, key.user_id, key.session_id, str(version), type_name, event_id,
         repr(recorded_at))
    )
    digest.update(header.encode())
    digest.update(data)
    return digest.hexdigest()


class StreamCache:
    """What the writer knew of the log at its last commit: the last position, and the
    heads (version, hash) of the streams it loaded or wrote (up to `size`; when full,
    the half first remembered is forgotten).

    A batch whose streams are all known skips loading them when the log still ends
    at the cached position, so nobody else appended since (SQLite asks first;
    PostgreSQL's write inserts nothing otherwise, in the same round trip, and the
    batch fails). A replayed event id is not looked up either: the unique index
    refuses it and the batch fails. A failed batch drops the cache and is written
    again after a real load. A batch that would refuse a commit on the cached
    heads is planned again on loaded ones before anything is written.
    """

    def __init__(self, size: int = 50_000) -> None:
        self.size = size
        self.position: int | None = None
        self.heads: dict[SessionKey, tuple[int, str]] = {}
        self._staged: tuple[int, dict[SessionKey, tuple[int, str]]] | None = None

    def lookup(self, keys: set[SessionKey]) -> tuple[dict[SessionKey, tuple[int, str]], int] | None:
        if self.position is None:
            return None
        heads = self.heads
        try:
            return {key: heads[key] for key in keys}, self.position
        except KeyError:
            return None

    def stage(self, position: int, heads: dict[SessionKey, tuple[int, str]]) -> None:
        """What this transaction has seen and written; known once it commits."""
        self._staged = (position, heads)

    def committed(self) -> None:
        if self._staged is None:
            return
        position, heads = self._staged
        self._staged = None
        self.position = position
        self.heads.update(heads)
        if len(self.heads) > self.size:
            for key in list(self.heads)[:len(self.heads) - self.size // 2]:
                del self.heads[key]

    def clear(self) -> None:
        self.position = None
        self.heads.clear()
        self._staged = None


class _Refused(Exception):
    """An optimistic batch would refuse a commit: plan it again on loaded heads."""


def write_batch(conn: Connection, commits: Sequence[Commit], inline: Sequence[InlineApply],
                cache: StreamCache | None = None) -> list[Result]:
    """Check and write a batch of commits inside the caller's transaction.

    With a `cache` that knows every touched stream, the heads come from it (see
    `StreamCache`); the caller must drop the cache and retry when this raises.
    """
    sql = PostgresAppend if conn.dialect.name == "postgresql" else SQLiteAppend
    if not conn.info.get(WRITE_LOCK_HELD):
        sql.lock(conn)
    keys = {append.key for commit in commits for append in commit}
    known = cache.lookup(keys) if cache is not None else None
    if known is not None and sql.current(conn, known[1]):
        try:
            return _write_planned(conn, sql, commits, inline, cache, *known, {},
                                  optimistic=True)
        except _Refused:
            pass
    caller_ids = [i for commit in commits for append in commit if append.caller_ids
                  for i in append.event_ids]
    heads, position, stored = sql.load(conn, keys, caller_ids)
    return _write_planned(conn, sql, commits, inline, cache, heads, position, stored,
                          optimistic=False)


def _write_planned(conn: Connection, sql: type[SQLiteAppend] | type[PostgresAppend],
                   commits: Sequence[Commit], inline: Sequence[InlineApply],
                   cache: StreamCache | None, heads: dict[SessionKey, tuple[int, str]],
                   position: int, stored: dict[str, RecordedEvent], *, optimistic: bool
                   ) -> list[Result]:
    caller_ids = not optimistic and any(append.caller_ids for commit in commits
                                        for append in commit)
    now = time.time()
    results: list[Result] = []
    fresh: list[RecordedEvent] = []
    rows: list[Row] = []
    erase: list[SessionKey] = []
    written: dict[SessionKey, tuple[int, str]] = {}  # new heads of the streams written to
    for commit in commits:
        try:
            replay = _already_stored(commit, stored) if stored else None
            if replay is not None:
                results.append(replay)
                continue
            planned, planned_rows, planned_heads = _plan(commit, heads, position, now)
        except SessionStoreError as error:
            if optimistic:
                raise _Refused from error
            results.append(error)
            continue
        heads.update(planned_heads)
        written.update(planned_heads)
        position += len(planned)
        if caller_ids:
            stored.update((r.event_id, r) for r in planned)
        fresh.extend(planned)
        rows.extend(planned_rows)
        erase.extend(append.key for append in commit if append.erase)
        results.append(planned)
    if rows:
        sql.write(conn, rows, [(*k, *head) for k, head in written.items()], position)
        for key in erase:
            _erase_payloads(conn, key)
        for apply in inline:
            apply(conn, fresh)
    if cache is not None:
        cache.stage(position, heads)
    return results


def write_each(conn: Connection, commits: Sequence[Commit], inline: Sequence[InlineApply]
               ) -> list[Result]:
    """Like `write_batch`, but each commit in its own savepoint: isolates a failing one."""
    results: list[Result] = []
    for commit in commits:
        try:
            with conn.begin_nested():
                results.append(write_batch(conn, [commit], inline)[0])
        except Exception as error:  # noqa: BLE001 - handed to that commit's caller
            results.append(error)
    return results


def _already_stored(commit: Commit, stored: dict[str, RecordedEvent]) -> list[RecordedEvent] | None:
    """The stored records when every event id of the commit is already in the log."""
    found: list[RecordedEvent] = []
    missing = False
    for append in commit:
        if not append.caller_ids:
            continue  # generated ids are fresh; a replayed commit is known by the caller's ids
        for event_id in append.event_ids:
            record = stored.get(event_id)
            if record is None:
                missing = True
            elif record.key != append.key:
                raise InvalidEvent(f"event id {event_id!r} is already stored in another session")
            else:
                found.append(record)
    if not found:
        return None
    if missing:
        raise InvalidEvent(
            f"event ids {[r.event_id for r in found]} are already stored but others of the same "
            "append are not: an append is idempotent only as a whole"
        )
    return found


def _plan(commit: Commit, heads: dict[SessionKey, tuple[int, str]], position: int, now: float
          ) -> tuple[list[RecordedEvent], list[Row], dict[SessionKey, tuple[int, str]]]:
    planned: list[RecordedEvent] = []
    rows: list[Row] = []
    local: dict[SessionKey, tuple[int, str]] = {}
    for append in commit:
        key = append.key
        version, previous = local.get(key) or heads.get(key) or (0, "")
        expected = append.expected_version
        if expected is not None and expected != version:
            raise ConcurrencyError(
                f"session {key.session_id!r} of user {key.user_id!r} in app "
                f"{key.app_name!r}: expected version {expected}, but it is at {version}; "
                "read it again and retry",
                expected=expected, actual=version,
            )
        app, user, session = key
        for payload, data, event_id in zip(append.payloads, append.encoded, append.event_ids,
                                           strict=True):
            version += 1
            position += 1
            type_name = type(payload).__name__
            previous = chain_hash(previous, key, version, type_name, event_id, now, data)
            planned.append(RecordedEvent(
                position=position, app_name=app, user_id=user, session_id=session,
                version=version, type=type_name, data=payload,  # type: ignore[arg-type]
                event_id=event_id, recorded_at=now, hash=previous,
            ))
            rows.append((position, app, user, session, version, type_name, payload.schema, data,
                         event_id, now, previous))
        local[key] = (version, previous)
    return planned, rows, local


def _erase_payloads(conn: Connection, key: SessionKey) -> None:
    conn.execute(
        events.update()
        .where(events.c.app_name == key.app_name, events.c.user_id == key.user_id,
               events.c.session_id == key.session_id, events.c.type != "SessionPurged")
        .values(data=b"")
    )


def _closed_error() -> StoreUnavailable:
    return StoreUnavailable("the store is closed: open it again to append")


def _settle(future: asyncio.Future[Any], result: Any) -> None:
    """Hand `result` (a value, or an exception to raise) to the future's awaiter."""
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


Pending = tuple[Commit, "asyncio.Future[list[RecordedEvent]]"]
Wave = tuple[list[Pending], asyncio.AbstractEventLoop]
"""Commits submitted in one iteration of an event loop, handed to the writer thread at once."""


@dataclass(frozen=True, slots=True)
class Job:
    """Any other write transaction (a catch-up batch, DDL), run by the writer thread in turn."""

    function: Callable[..., Any]
    args: tuple[Any, ...]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


class ThreadWriter:
    """SQLite's single writer: a thread that owns the write connection.

    One hop to the thread per batch (not per statement) is what makes small
    sequential appends cheap.
    """

    def __init__(self, engine: Engine, inline: Sequence[InlineApply],
                 on_commit: Callable[[int], None]) -> None:
        self._engine = engine
        self._inline = inline
        self._on_commit = on_commit
        self._cache = StreamCache()
        self._queue: queue.SimpleQueue[Wave | Job | None] = queue.SimpleQueue()
        self._gathering: dict[asyncio.AbstractEventLoop, list[Pending]] = {}
        self._closing = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="session-store-writer", daemon=True)
        self._thread.start()

    async def submit(self, commit: Commit) -> list[RecordedEvent]:
        # Commits submitted in the same event-loop iteration travel to the thread together,
        # in one hand-off scheduled after them: the thread wakes once per wave of appends
        # instead of once per append, and does not contend for the GIL while the loop is
        # still preparing the rest of the wave.
        if self._closed:
            raise _closed_error()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[RecordedEvent]] = loop.create_future()
        wave = self._gathering.get(loop)
        if wave is None:
            wave = self._gathering[loop] = []
            loop.call_soon(self._hand_off, loop)
        wave.append((commit, future))
        return await future

    async def run(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run `function(connection, *args)` in a write transaction of the writer's own.

        In-process writers other than appends (catch-up folds, rebuild chunks) come here
        rather than to a second connection: they take turns with the appends instead of
        contending for SQLite's lock, whose busy handler sleeps milliseconds at a time.
        """
        if self._closed:
            raise _closed_error()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        with self._closing:
            if self._closed:
                raise _closed_error()
            self._queue.put(Job(function, args, future, loop))
        return await future

    def _hand_off(self, loop: asyncio.AbstractEventLoop) -> None:
        wave = self._gathering.pop(loop, None)
        if not wave:
            return
        with self._closing:
            if not self._closed:
                self._queue.put((wave, loop))
                return
        for _, future in wave:  # gathered while the writer closed: never reaches the thread
            _settle(future, _closed_error())

    async def close(self) -> None:
        self._hand_off(asyncio.get_running_loop())
        with self._closing:
            self._closed = True
            self._queue.put(None)
        await asyncio.to_thread(self._thread.join)

    def _run(self) -> None:
        with self._engine.connect() as conn:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                if isinstance(item, Job):
                    self._job(conn, item)
                    continue
                batch = [(pending, item[1]) for pending in item[0]]
                stop = False
                job: Job | None = None
                while len(batch) < MAX_BATCH_COMMITS:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        stop = True
                        break
                    if isinstance(more, Job):
                        job = more  # after this batch, in submission order
                        break
                    batch.extend((pending, more[1]) for pending in more[0])
                for start in range(0, len(batch), MAX_BATCH_COMMITS):
                    self._write(conn, batch[start:start + MAX_BATCH_COMMITS])
                if job is not None:
                    self._job(conn, job)
                if stop:
                    return

    @staticmethod
    def _job(conn: Connection, job: Job) -> None:
        try:
            with conn.begin():
                result = job.function(conn, *job.args)
        except BaseException as error:  # noqa: BLE001 - handed to the caller
            job.loop.call_soon_threadsafe(_settle, job.future, error)
        else:
            job.loop.call_soon_threadsafe(_settle, job.future, result)

    def _write(self, conn: Connection, batch: list[tuple[Pending, asyncio.AbstractEventLoop]]
               ) -> None:
        commits = [commit for (commit, _), _ in batch]
        cache = self._cache
        try:
            try:
                with conn.begin():
                    results = write_batch(conn, commits, self._inline, cache)
                cache.committed()
            except Exception:  # noqa: BLE001 - loaded afresh, then one by one
                cache.clear()
                try:
                    with conn.begin():
                        results = write_batch(conn, commits, self._inline)
                except Exception:  # noqa: BLE001 - retried one by one below
                    with conn.begin():
                        results = write_each(conn, commits, self._inline)
        except Exception as error:  # noqa: BLE001 - the transaction itself failed
            log.error("session_store.write_failed", error=str(error), commits=len(commits))
            results = [error] * len(commits)
        last = max((r[-1].position for r in results if isinstance(r, list) and r), default=0)
        # One wake-up per event loop per batch: each call_soon_threadsafe writes to the
        # loop's self-pipe, which costs more than settling a future.
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, Result]]] = {}
        for ((_, future), loop), result in zip(batch, results, strict=True):
            by_loop.setdefault(loop, []).append((future, result))
        for loop, settled in by_loop.items():
            loop.call_soon_threadsafe(self._deliver, settled, last)

    def _deliver(self, settled: list[tuple[Any, Result]], last: int) -> None:
        for future, result in settled:
            _settle(future, result)
        if last:
            self._on_commit(last)


class TaskWriter:
    """PostgreSQL's writer: an asyncio task draining pending commits into one transaction each.

    Other processes (or other stores) write concurrently; the advisory lock
    taken by `write_batch` keeps their positions in commit order.
    """

    def __init__(self, engine: AsyncEngine, inline: Sequence[InlineApply],
                 on_commit: Callable[[int], None]) -> None:
        self._engine = engine
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._conn: AsyncConnection | None = None
        """The writer's own connection, kept between batches (checkout costs ~a round trip)."""
        self._inline = inline
        self._on_commit = on_commit
        self._cache = StreamCache()
        self._queue: asyncio.Queue[Pending | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def submit(self, commit: Commit) -> list[RecordedEvent]:
        if self._closed:
            raise _closed_error()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="session-store-writer")
        future: asyncio.Future[list[RecordedEvent]] = asyncio.get_running_loop().create_future()
        await self._queue.put((commit, future))
        return await future

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            await self._queue.put(None)
            await self._task
            self._task = None
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            batch = [item]
            stop = False
            while len(batch) < MAX_BATCH_COMMITS and not self._queue.empty():
                more = self._queue.get_nowait()
                if more is None:
                    stop = True
                    break
                batch.append(more)
            await self._write(batch)
            if stop:
                return

    async def _write(self, batch: list[Pending]) -> None:
        commits = [commit for commit, _ in batch]
        cache = self._cache
        try:
            try:
                results = await self._transaction(write_batch, commits, cache)
                cache.committed()
            except Exception:  # noqa: BLE001 - loaded afresh, then one by one
                cache.clear()
                try:
                    results = await self._transaction(write_batch, commits)
                except Exception:  # noqa: BLE001 - retried one by one below
                    results = await self._transaction(write_each, commits)
        except Exception as error:  # noqa: BLE001 - the transaction itself failed
            log.error("session_store.write_failed", error=str(error), commits=len(commits))
            results = [error] * len(commits)
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result)
        last = max((r[-1].position for r in results if isinstance(r, list) and r), default=0)
        if last:
            self._on_commit(last)

    async def _transaction(self, write: Callable[..., list[Result]], commits: list[Commit],
                           *args: Any) -> list[Result]:
        """Run `write` in a transaction that starts already holding the write lock.

        `BEGIN` and the lock go to the server in one round trip (SQLAlchemy, in autocommit
        mode here, would send them separately); so do `COMMIT` and `ROLLBACK`. Savepoints
        and inline projections run through SQLAlchemy inside this transaction as usual.
        """
        if self._conn is None:
            self._conn = await self._autocommit.connect()
        conn = self._conn
        fairy = await conn.get_raw_connection()
        driver: Any = fairy.driver_connection
        try:
            await driver.execute(BEGIN_LOCKED)
            fairy.info[WRITE_LOCK_HELD] = True
            try:
                results = await conn.run_sync(write, commits, self._inline, *args)
                await driver.execute("COMMIT")
            except BaseException:
                await driver.execute("ROLLBACK")
                raise
            finally:
                fairy.info.pop(WRITE_LOCK_HELD, None)
                await conn.rollback()  # ends SQLAlchemy's bookkeeping; no round trip
        except BaseException:
            if driver.is_in_transaction() or driver.is_closed():
                self._conn = None  # never reuse a connection in an unknown state
                await conn.invalidate()
            raise
        return results
