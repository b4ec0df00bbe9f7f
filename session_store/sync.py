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
_READ_MODELS = frozenset({"history", "users", "analytics"})


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
        return _blocking(getattr(self._store, name), name, self._run)

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


class _BlockingQueries:
    """A read model's query object (`store.history`, ...) with blocking methods."""

    def __init__(self, queries: Any, run: Callable[[Coroutine[Any, Any, Any]], Any]) -> None:
        self._queries, self._run = queries, run

    def __getattr__(self, name: str) -> Any:
        return _blocking(getattr(self._queries, name), name, self._run)


def _blocking(target: Any, name: str, run: Callable[[Coroutine[Any, Any, Any]], Any]) -> Any:
    if name in _ITERATORS:
        return lambda *a, **k: run(_collect(target(*a, **k)))
    if name in _READ_MODELS:
        return _BlockingQueries(target, run)
    if not asyncio.iscoroutinefunction(target):
        return target
    method: Callable[..., Coroutine[Any, Any, Any]] = target
    return lambda *a, **k: run(method(*a, **k))


async def _collect(iterator: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in iterator]
