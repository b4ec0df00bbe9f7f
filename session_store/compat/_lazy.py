"""A store opened on the first awaited call (the seeds build their managers and providers
without awaiting), in a temporary directory of its own when asked (their "memory")."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Callable

from session_store.store import SessionStore, open_store


class LazyStore:
    """The store at `url` (or, with `url=None`, in a temporary directory removed by
    `close()`), opened once by the first `get()`; `prepare(store)` runs right after."""

    def __init__(self, url: str | None, *, prefix: str = "session-store-",
                 prepare: Callable[[SessionStore], None] | None = None) -> None:
        self.temporary = tempfile.mkdtemp(prefix=prefix) if url is None else None
        self.url = f"{self.temporary}/sessions.db" if url is None else url
        self.opened: SessionStore | None = None
        self._prepare = prepare
        self._opening = asyncio.Lock()

    async def get(self) -> SessionStore:
        async with self._opening:
            if self.opened is None:
                self.opened = await open_store(self.url)
                if self._prepare is not None:
                    self._prepare(self.opened)
            return self.opened

    async def close(self) -> None:
        if self.opened is not None:
            await self.opened.close()
            self.opened = None
        if self.temporary is not None:
            shutil.rmtree(self.temporary, ignore_errors=True)
