"""Helpers shared by the facade tests (fixtures `store`/`store_url` come from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from session_store.store import SessionStore


async def unchanged(store: SessionStore, action: Callable[[], Awaitable[Any]],
                    error: type[BaseException]) -> None:
    """`action` raises `error` and the log's last position does not move."""
    before = await store.log.last_position()
    with pytest.raises(error):
        await action()
    assert await store.log.last_position() == before
