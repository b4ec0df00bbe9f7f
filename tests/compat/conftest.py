"""One PostgreSQL database per test module here (creating one per test costs seconds on a
loaded machine): each test gets it with an emptied schema, and a SQLite file of its own."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import require_pg


async def _execute(server: str, statement: str) -> None:
    conn = await asyncpg.connect(f"{server}/postgres")
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _admin(server: str, statement: str) -> None:
    """Run on a thread of its own: the fixture may be set up from a running event loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, _execute(server, statement)).result()


@pytest.fixture(scope="module")
def module_pg() -> Iterator[tuple[str, str]]:
    """(server, database name) of a database for this module, dropped after it."""
    server = require_pg()
    name = f"ss_compat_{uuid.uuid4().hex[:12]}"
    _admin(server, f'CREATE DATABASE "{name}"')
    try:
        yield server, name
    finally:
        _admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _empty(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await conn.close()


@pytest.fixture
async def store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """An empty store's URL on each backend (overrides tests/conftest.py's)."""
    if backend == "sqlite":
        return str(tmp_path / "sessions.db")
    server, name = request.getfixturevalue("module_pg")
    await _empty(f"{server}/{name}")
    return f"{server.replace('postgresql://', 'postgresql+asyncpg://')}/{name}"
