"""Calling a store from any event loop: a store whose connections belong to one loop
(PostgreSQL's, `Dialect.loop_bound`) has its calls from other loops and threads handed to
that loop, its home, and awaited there (as OpenAI Agents' `Runner.run_sync` needs: each
worker thread runs its own loop)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop of the calling thread, None outside of one."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


async def on_home_loop(home: asyncio.AbstractEventLoop | None,
                       coroutine: Coroutine[Any, Any, T]) -> T:
    """`await coroutine`, on `home` when that is another loop still running (the caller's
    loop waits for it without blocking); here when there is no home, when this is it, or
    when it has stopped (nothing else can answer then)."""
    here = asyncio.get_running_loop()
    if home is None or home is here or home.is_closed() or not home.is_running():
        return await coroutine
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, home))
