"""The writers: how batches of commits reach the database, one transaction each.

`ThreadWriter` (SQLite) is a thread that owns the single write connection; one hop
to it per wave of appends, not per statement, is what makes small sequential
appends cheap. `TaskWriter` (PostgreSQL) is an asyncio task per store; other
processes write concurrently and the database's advisory lock orders them. Both
run each batch through `batching.write_with_retry`.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.util import await_only as await_

from session_store.domain.events import RecordedEvent
from session_store.errors import StoreUnavailable
from session_store.log.batching import (
    MAX_BATCH_COMMITS,
    Attempt,
    Commit,
    InlineApply,
    Result,
    StreamCache,
    write_with_retry,
)
from session_store.storage.postgres import BEGIN_LOCKED, WRITE_LOCK_HELD


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

        def transaction(attempt: Attempt) -> list[Result]:
            with conn.begin():
                return attempt(conn)

        results = write_with_retry(transaction, commits, self._inline, self._cache)
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
        results = await self._attempt(commits)
        if results is None:  # the connection broke: once more, on a fresh one
            results = await self._attempt(commits)
        if results is None:
            results = [StoreUnavailable("the connection to PostgreSQL broke during the "
                                        "append; nothing was written")] * len(commits)
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result)
        last = max((r[-1].position for r in results if isinstance(r, list) and r), default=0)
        if last:
            self._on_commit(last)

    async def _attempt(self, commits: list[Commit]) -> list[Result] | None:
        """The batch's results, or None when the connection broke before it committed."""
        if self._conn is None:
            self._conn = await self._autocommit.connect()
        conn = self._conn
        broken: list[bool] = []
        results: list[Result] | None = None
        try:
            results = await conn.run_sync(self._retry, commits, broken)
        except Exception:  # noqa: BLE001 - the connection itself failed
            broken.append(True)
        committed = results is not None and any(isinstance(r, list) for r in results)
        if results is not None and (not broken or committed):
            if broken:
                self._conn = None
                await conn.invalidate()
            return results
        self._conn = None  # never reuse a connection in an unknown state
        self._cache.clear()
        await conn.invalidate()
        return None

    def _retry(self, conn: Connection, commits: list[Commit], broken: list[bool]
               ) -> list[Result]:
        """`write_with_retry` on the writer's connection (in SQLAlchemy's greenlet bridge,
        so the driver's own calls are awaited in place).

        Each transaction starts already holding the write lock: `BEGIN` and the lock go
        to the server in one round trip (SQLAlchemy, in autocommit mode here, would send
        them separately); so do `COMMIT` and `ROLLBACK`. Savepoints and inline projections
        run through SQLAlchemy inside it as usual.
        """
        fairy = conn.connection
        driver: Any = fairy.driver_connection

        def transaction(attempt: Attempt) -> list[Result]:
            try:
                await_(driver.execute(BEGIN_LOCKED))
                fairy.info[WRITE_LOCK_HELD] = True
                results = attempt(conn)
                await_(driver.execute("COMMIT"))
            except BaseException:
                if not driver.is_closed() and driver.is_in_transaction():
                    with contextlib.suppress(Exception):
                        await_(driver.execute("ROLLBACK"))
                if driver.is_closed() or driver.is_in_transaction():
                    broken.append(True)
                raise
            finally:
                fairy.info.pop(WRITE_LOCK_HELD, None)
                conn.rollback()  # ends SQLAlchemy's bookkeeping; no round trip
            return results

        return write_with_retry(transaction, commits, self._inline, self._cache)
