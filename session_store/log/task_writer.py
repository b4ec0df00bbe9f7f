"""`TaskWriter`: PostgreSQL's writer, an asyncio task per store (SQLite's thread and what
both share are in `session_store.log.writers`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.util import await_only as await_

from session_store.domain.events import RecordedEvent
from session_store.errors import StoreUnavailable
from session_store.futures import settle
from session_store.log.batching import (
    MAX_BATCH_COMMITS,
    Attempt,
    Commit,
    InlineApply,
    Result,
    StreamCache,
    write_with_retry,
)
from session_store.log.writers import Pending, closed_error, log
from session_store.storage.postgres import BEGIN_LOCKED, WRITE_LOCK_HELD


class TaskWriter:
    """PostgreSQL's writer: an asyncio task draining pending commits into one transaction each.

    Other processes (or other stores) write concurrently; the advisory lock
    taken by `write_batch` keeps their positions in commit order.
    """

    def __init__(self, engine: AsyncEngine, inline: Sequence[InlineApply],
                 on_commit: Callable[[int], None], *, anchor_key: bytes | None = None) -> None:
        self._engine = engine
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._conn: AsyncConnection | None = None
        """The writer's own connection, kept between batches (checkout costs ~a round trip)."""
        self._inline = inline
        self._on_commit = on_commit
        self._cache = StreamCache()
        self._anchor_key = anchor_key
        self._queue: asyncio.Queue[Pending | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._broken: str | None = None
        """Why nothing more can be appended: the task died."""
        self._taken: list[Pending] = []

    async def submit(self, commit: Commit) -> list[RecordedEvent]:
        if self._closed:
            raise closed_error()
        loop = asyncio.get_running_loop()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="session-store-writer")
        elif self._broken is not None or self._task.done() or self._task.get_loop() is not loop:
            raise StoreUnavailable(self._broken or (
                "a PostgreSQL store appends on the event loop of its first append (its "
                "connections belong to that loop), and that loop has closed or is another "
                "one: open the store inside the event loop that uses it (or use "
                "SyncSessionStore from any thread)"))
        future: asyncio.Future[list[RecordedEvent]] = loop.create_future()
        await self._queue.put((commit, future))
        return await future

    async def close(self) -> None:
        self._closed = True
        task, self._task = self._task, None
        if task is not None and task.get_loop() is not asyncio.get_running_loop():
            self._conn = None  # it and its connection belong to another (closed?) loop
            return
        if task is not None and not task.done():
            await self._queue.put(None)
            await task
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def _run(self) -> None:
        try:
            await self._serve()
        except BaseException as error:  # every caller waiting must hear of it
            if isinstance(error, asyncio.CancelledError):
                self._broken = ("the store's writer task was cancelled (did its event loop "
                                "close?): a PostgreSQL store works on the event loop it first "
                                "appended on; open the store inside the loop that uses it")
            else:
                self._broken = (f"the store's writer task stopped ({error!r}): nothing more "
                                "can be appended; close the store and open it again")
                log.error("session_store.writer_stopped", error=repr(error))
            waiting = [future for _, future in self._taken]
            while not self._queue.empty():
                item = self._queue.get_nowait()
                if item is not None:
                    waiting.append(item[1])
            for future in waiting:
                settle(future, StoreUnavailable(self._broken))
            if isinstance(error, asyncio.CancelledError):
                raise

    async def _serve(self) -> None:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            batch = self._taken = [item]
            stop = False
            while len(batch) < MAX_BATCH_COMMITS and not self._queue.empty():
                more = self._queue.get_nowait()
                if more is None:
                    stop = True
                    break
                batch.append(more)
            await self._write(batch)
            self._taken = []
            if stop:
                return

    async def _write(self, batch: list[Pending]) -> None:
        commits = [commit for commit, _ in batch]
        failures: list[BaseException] = []
        results = await self._attempt(commits, failures)
        if results is None:  # the connection broke: once more, on a fresh one
            results = await self._attempt(commits, failures)
        if results is None:
            why = f" ({failures[-1]!r})" if failures else ""
            results = [StoreUnavailable(
                f"the connection to PostgreSQL broke, or could not be made{why}; nothing was "
                "written: retry once the server is reachable") for _ in commits]
        for (_, future), result in zip(batch, results, strict=True):
            settle(future, result)
        last = max((r[-1].position for r in results if isinstance(r, list) and r), default=0)
        if last:
            self._on_commit(last)

    async def _attempt(self, commits: list[Commit], failures: list[BaseException]
                       ) -> list[Result] | None:
        """The batch's results, or None when the connection broke before it committed (or
        none could be made: the reason goes to `failures`)."""
        if self._conn is None:
            try:
                self._conn = await self._autocommit.connect()
            except Exception as error:  # noqa: BLE001 - the server is unreachable
                failures.append(error)
                return None
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

        return write_with_retry(transaction, commits, self._inline, self._cache,
                                key=self._anchor_key)
