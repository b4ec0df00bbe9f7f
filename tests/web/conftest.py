"""The viewer's fixtures: the app over a store, an httpx client through ASGI, and the demo
database per backend (the CLI tests' `demo_db`, written once per module)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from session_store.store import SessionStore, open_store
from session_store.web.app import Viewer, create_app
from tests.cli.conftest import demo_db, demo_summary, demo_url  # noqa: F401 - fixtures

BASE = "http://127.0.0.1"


@dataclass
class Served:
    store: SessionStore
    viewer: Viewer
    client: httpx.AsyncClient


async def served(store: SessionStore, token: str | None = None) -> AsyncIterator[Served]:
    viewer = create_app(store, token=token)
    transport = httpx.ASGITransport(app=viewer.asgi)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        try:
            yield Served(store, viewer, client)
        finally:
            await viewer.close()


@pytest.fixture
async def demo(demo_url: str) -> AsyncIterator[Served]:  # noqa: F811 - the fixture above
    """The viewer over the demo database (read-only tests)."""
    async with open_store(demo_url) as store:
        async for one in served(store):
            yield one


@pytest.fixture
async def fresh(store: SessionStore) -> AsyncIterator[Served]:
    """The viewer over an empty store of each backend (tests that append)."""
    async for one in served(store):
        yield one
