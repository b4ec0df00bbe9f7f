"""`LoopThread`: an event loop on a thread of its own, which `SyncSessionStore` hands its
calls to, and which closes without leaving any caller waiting."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

from session_store.errors import StoreUnavailable

T = TypeVar("T")


class LoopThread:
    """An event loop on a thread of its own, running the coroutines callers hand it.

    Once `stop` has begun, every call raises `StoreUnavailable`, and so does a call still
    running when the loop stops (it is cancelled): no caller is left waiting.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._lock = threading.Lock()
        self._stopping = False
        self._stopped = threading.Event()
        self._calls: dict[concurrent.futures.Future[Any], Coroutine[Any, Any, Any]] = {}
        self._thread = threading.Thread(target=self.loop.run_forever,
                                        name="session-store-loop", daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        with self._lock:
            if self._stopping:
                coroutine.close()
                raise StoreUnavailable("the store is closed: open a new SyncSessionStore")
            call = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
            self._calls[call] = coroutine
        try:
            return call.result()
        except concurrent.futures.CancelledError:
            if not self._stopping:
                raise
            raise StoreUnavailable("the store was closed while this call ran (it may not have "
                                   "finished): open a new SyncSessionStore") from None
        finally:
            with self._lock:
                self._calls.pop(call, None)

    def iterate(self, iterator: AsyncIterator[T]) -> Iterator[T]:
        """`iterator`'s items, one blocking step at a time; closing the generator (or
        leaving a `for` loop over it) closes `iterator` on the loop."""
        try:
            while True:
                try:
                    yield self.run(_next(iterator))
                except StopAsyncIteration:
                    return
        finally:
            closing = getattr(iterator, "aclose", None)
            if closing is not None and not self._stopping:
                with contextlib.suppress(StoreUnavailable):  # the store closed meanwhile
                    self.run(closing())

    def stop(self, closing: Coroutine[Any, Any, Any] | None = None) -> None:
        """Refuse new calls, run `closing` (the store's close), cancel the calls still
        running, stop the loop. A second caller (of any thread) waits for the first."""
        with self._lock:
            first, self._stopping = not self._stopping, True
        if not first:
            if closing is not None:
                closing.close()
            self._stopped.wait()
            return
        try:
            if closing is not None:
                asyncio.run_coroutine_threadsafe(_last(closing), self.loop).result()
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join()
            self.loop.close()
            with self._lock:  # handed over too late to start: their callers must not wait
                for call, coroutine in self._calls.items():
                    if call.cancel():
                        coroutine.close()
            self._stopped.set()


async def _last(closing: Coroutine[Any, Any, Any]) -> None:
    """Run `closing`, then cancel every other task of the loop (calls still waiting, such as
    a blocked `subscribe`), so that their callers hear `StoreUnavailable`."""
    try:
        await closing
    finally:
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)


async def _next(iterator: AsyncIterator[T]) -> T:
    return await iterator.__anext__()
