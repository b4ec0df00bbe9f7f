"""Read-your-writes over catch-up read models.

Catch-up projections trail the log by a few milliseconds. The store wraps each
read model's query object so that a query first waits until the followers have
folded every position this store has itself written: a caller always sees its
own appends, without paying for inline folds on the append path.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

WAIT_SECONDS = 30.0


class ReadYourWrites:
    """Proxy of a query object: each async query waits for `written()` first."""

    def __init__(self, queries: Any, written: Callable[[], int],
                 wait_for: Callable[[int, float | None], Awaitable[None]]) -> None:
        self._queries = queries
        self._written = written
        self._wait_for = wait_for

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._queries, name)
        if not inspect.iscoroutinefunction(attribute):
            return attribute

        async def query(*args: Any, **kwargs: Any) -> Any:
            await self._wait_for(self._written(), WAIT_SECONDS)
            return await attribute(*args, **kwargs)

        query.__doc__ = attribute.__doc__
        return query

    def __repr__(self) -> str:
        return f"ReadYourWrites({self._queries!r})"
