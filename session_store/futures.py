"""Settling an asyncio future with a value or an exception: what a thread or task that
answers callers (the writers, the point readers) hands each of them."""

from __future__ import annotations

import asyncio
from typing import Any


def settle(future: asyncio.Future[Any], result: Any) -> None:
    """Hand `result` (a value, or an exception to raise) to the future's awaiter; a future
    already done (its caller gave up) is left alone."""
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)
