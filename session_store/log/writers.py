"""The writers: how batches of commits reach the database, one transaction each.

`ThreadWriter` (SQLite) is a thread that owns the single write connection; one hop
to it per wave of appends, not per statement, is what makes small sequential
appends cheap. `TaskWriter` (PostgreSQL, in `log.task_writer`) is an asyncio task per
store; other processes write concurrently and the database's advisory lock orders them.
Both run each batch through `batching.write_with_retry`, and neither leaves a caller
waiting when it cannot go on: its callers get `StoreUnavailable`.
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
from session_store.logs import get_logger
from session_store.storage.failures import FileIdentity, unavailable

log = get_logger(__name__)


def closed_error() -> StoreUnavailable:
    return StoreUnavailable("the store is closed: open it again to append")


def _tell(loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], result: Any) -> None:
    """Settle `future` on its loop, from the writer thread; a loop that has closed has
    nobody waiting (e.g. `asyncio.run` per call, as in OpenAI Agents' `Runner.run_sync`)."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(settle, future, result)


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
                 on_commit: Callable[[int], None], *, anchor_key: bytes | None = None) -> None:
        self._engine = engine
        self._inline = inline
        self._on_commit = on_commit
        self._cache = StreamCache()
        self._anchor_key = anchor_key
        self._queue: queue.SimpleQueue[Wave | Job | None] = queue.SimpleQueue()
        self._gathering: dict[asyncio.AbstractEventLoop, list[Pending]] = {}
        self._closing = threading.Lock()
        self._closed = False
        self._broken: str | None = None
        """Why nothing more can be appended: the thread died, or the file went away."""
        self._where = engine.url.database or ""
        self._file: FileIdentity | None = None
        self._taken: tuple[list[tuple[Pending, asyncio.AbstractEventLoop]], Job | None] = ([],
                                                                                          None)
        """What the thread took from the queue and has not answered: answered if it dies."""
        self._thread = threading.Thread(target=self._run, name="session-store-writer", daemon=True)
        self._thread.start()

    async def submit(self, commit: Commit) -> list[RecordedEvent]:
        # Commits submitted in the same event-loop iteration travel to the thread together,
        # in one hand-off scheduled after them: the thread wakes once per wave of appends
        # instead of once per append, and does not contend for the GIL while the loop is
        # still preparing the rest of the wave.
        if self._closed or self._broken is not None:
            raise self._refusal()
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
        if self._closed or self._broken is not None:
            raise self._refusal()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        with self._closing:
            if self._closed or self._broken is not None:
                raise self._refusal()
            self._queue.put(Job(function, args, future, loop))
        return await future

    def _refusal(self) -> StoreUnavailable:
        return StoreUnavailable(self._broken) if self._broken is not None else closed_error()

    def _hand_off(self, loop: asyncio.AbstractEventLoop) -> None:
        wave = self._gathering.pop(loop, None)
        if not wave:
            return
        with self._closing:
            if not self._closed and self._broken is None:
                self._queue.put((wave, loop))
                return
        for _, future in wave:  # gathered while the writer closed: never reaches the thread
            settle(future, self._refusal())

    async def close(self) -> None:
        self._hand_off(asyncio.get_running_loop())
        with self._closing:
            self._closed = True
            self._queue.put(None)
        await asyncio.to_thread(self._thread.join)

    def _run(self) -> None:
        try:
            with self._engine.connect() as conn:
                self._file = FileIdentity(self._where)
                self._serve(conn)
        except BaseException as error:  # noqa: BLE001 - every caller waiting must hear of it
            self._die(error)

    def _die(self, error: BaseException) -> None:
        """The thread is ending on an error: fail what it took, what is queued, and (as
        `_refusal`) everything later, instead of leaving the callers waiting forever."""
        log.error("session_store.writer_stopped", error=repr(error))
        with self._closing:
            self._broken = (f"the store's writer thread stopped ({error!r}): nothing more can "
                            "be appended; close the store and open it again")
        batch, job = self._taken
        waiting = [(future, loop) for (_, future), loop in batch]
        jobs = [job] if job is not None else []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, Job):
                jobs.append(item)
            elif item is not None:
                waiting.extend((future, item[1]) for _, future in item[0])
        waiting.extend((job.future, job.loop) for job in jobs)
        for future, loop in waiting:  # (one already answered keeps its answer: `settle`)
            _tell(loop, future, StoreUnavailable(self._broken))

    def _serve(self, conn: Connection) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, Job):
                self._taken = ([], item)
                self._job(conn, item)
                self._taken = ([], None)
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
            self._taken = (batch, job)
            for start in range(0, len(batch), MAX_BATCH_COMMITS):
                self._write(conn, batch[start:start + MAX_BATCH_COMMITS])
            if job is not None:
                self._job(conn, job)
            self._taken = ([], None)
            if stop:
                return

    def _job(self, conn: Connection, job: Job) -> None:
        if self._broken is not None:
            _tell(job.loop, job.future, StoreUnavailable(self._broken))
            return
        try:
            with conn.begin():
                result = job.function(conn, *job.args)
        except BaseException as error:  # noqa: BLE001 - handed to the caller
            _tell(job.loop, job.future, unavailable(error, self._where) or error)
        else:
            _tell(job.loop, job.future, result)

    def _write(self, conn: Connection, batch: list[tuple[Pending, asyncio.AbstractEventLoop]]
               ) -> None:
        commits = [commit for (commit, _), _ in batch]

        def transaction(attempt: Attempt) -> list[Result]:
            with conn.begin():
                return attempt(conn)

        if self._broken is None:
            results = self._checked(write_with_retry(transaction, commits, self._inline,
                                                     self._cache, key=self._anchor_key))
        else:
            results = [StoreUnavailable(self._broken) for _ in commits]
        last = max((r[-1].position for r in results if isinstance(r, list) and r), default=0)
        # One wake-up per event loop per batch: each call_soon_threadsafe writes to the
        # loop's self-pipe, which costs more than settling a future.
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, Result]]] = {}
        for ((_, future), loop), result in zip(batch, results, strict=True):
            by_loop.setdefault(loop, []).append((future, result))
        for loop, settled in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that caller's loop closed: see `_tell`
                loop.call_soon_threadsafe(self._deliver, settled, last)

    def _checked(self, results: list[Result]) -> list[Result]:
        """The batch's results as acknowledged: the database's own failures as
        `StoreUnavailable`, and no commit acknowledged once the file at the path is not the
        one the writer opened (removed or replaced: what was written there is lost)."""
        committed = False
        for index, result in enumerate(results):
            if isinstance(result, list):
                committed = True
            else:
                results[index] = unavailable(result, self._where) or result
        problem = self._file.problem() if committed and self._file is not None else None
        if problem is None:
            return results
        self._broken = (f"{problem}: appends written since cannot be read back, so none is "
                        "acknowledged; open the store again (on a restored file)")
        return [StoreUnavailable(self._broken) if isinstance(r, list) else r for r in results]

    def _deliver(self, settled: list[tuple[Any, Result]], last: int) -> None:
        for future, result in settled:
            settle(future, result)
        if last:
            self._on_commit(last)
