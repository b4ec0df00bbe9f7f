"""`SyncSessionStore`: the same methods as `SessionStore`, blocking.

It runs its own event loop in a background thread; any number of caller
threads may call it at once (calls are handed to that loop, where the
group-commit writer batches them). Async iterators come back as lists.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from types import TracebackType
from typing import Any

from session_store.store import SessionStore

_ITERATORS = frozenset({"read_stream", "read_all"})


class SyncSessionStore:
    """A thread-safe, blocking facade over `SessionStore`."""

    def __init__(self, url: str | None = None, **settings: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever,
                                        name="session-store-loop", daemon=True)
        self._thread.start()
        try:
            self._store: SessionStore = self._run(SessionStore.open(url, **settings))
        except BaseException:
            self._stop()
            raise

    def _run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._store, name)
        if name in _ITERATORS:
            return lambda *a, **k: self._run(_collect(target(*a, **k)))
        if not asyncio.iscoroutinefunction(target):
            return target
        method: Callable[..., Coroutine[Any, Any, Any]] = target
        return lambda *a, **k: self._run(method(*a, **k))

    def close(self) -> None:
        if self._loop.is_running():
            try:
                self._run(self._store.close())
            finally:
                self._stop()

    def _stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> SyncSessionStore:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


async def _collect(iterator: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in iterator]
