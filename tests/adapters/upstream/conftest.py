"""Stores for the upstream conformance suites vendored here: a SQLite file per test, and on
PostgreSQL one database per module emptied before each test (dropping its schema is much
cheaper than a database per test, and these suites have many small tests)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.conftest import require_pg


def _admin(server: str, sql: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(f"{server}/postgres")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.fixture(scope="module")
def module_pg() -> Iterator[tuple[str, str]]:
    """(server, database name) of a PostgreSQL database kept for the module's tests."""
    server = require_pg()
    name = f"ss_upstream_{uuid.uuid4().hex[:12]}"
    _admin(server, f'CREATE DATABASE "{name}"')
    try:
        yield server, name
    finally:
        _admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def upstream_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store's URL on each backend."""
    if request.param == "sqlite":
        return str(tmp_path / "sessions.db")
    server, name = request.getfixturevalue("module_pg")

    async def empty() -> None:
        conn = await asyncpg.connect(f"{server}/{name}")
        try:
            await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        finally:
            await conn.close()

    asyncio.run(empty())
    return f"{server.replace('postgresql://', 'postgresql+asyncpg://')}/{name}"


OPENAI_STORE: list[Any] = []
"""The store of the running OpenAI Agents test (opened on the test's own event loop)."""


@pytest.fixture
async def openai_store(upstream_url: str) -> AsyncIterator[None]:
    from session_store.store import open_store

    async with open_store(upstream_url) as store:
        OPENAI_STORE[:] = [store]
        yield
    OPENAI_STORE.clear()
