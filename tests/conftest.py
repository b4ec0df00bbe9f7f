"""Shared fixtures: every storage test runs on a SQLite file and on PostgreSQL.

`store_url` is parametrized over both backends. Each PostgreSQL test gets a
database of its own, dropped afterwards. Without a reachable server the
PostgreSQL cases are skipped loudly; under CI=true that is a failure.
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from session_store.store import SessionStore, open_store
from tests.pg_server import find_server

_server: str | None = None
_searched = False


def pg_server() -> str | None:
    global _server, _searched
    if not _searched:
        _searched = True
        _server = find_server()
        if _server is None:
            warnings.warn("PostgreSQL is not reachable and no binaries were found: "
                          "PostgreSQL tests are SKIPPED", stacklevel=1)
    return _server


def require_pg() -> str:
    server = pg_server()
    if server is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no PostgreSQL server is reachable or startable")
        pytest.skip("PostgreSQL is not available (see warning)")
    return server


@asynccontextmanager
async def fresh_pg_database() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database (asyncpg URL), dropped on exit."""
    server = require_pg()
    name = f"ss_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(f"{server}/postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield f"{server.replace('postgresql://', 'postgresql+asyncpg://')}/{name}"
    finally:
        admin = await asyncpg.connect(f"{server}/postgres")
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    async with fresh_pg_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return str(tmp_path / "sessions.db")


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def store_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """A URL of an empty store on each backend."""
    if backend == "sqlite":
        yield str(tmp_path / "sessions.db")
        return
    async with fresh_pg_database() as url:
        yield url


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[SessionStore]:
    async with open_store(store_url) as opened:
        yield opened


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The LangGraph conformance counts, in the output of every run that has them."""
    lines: list[str] = []
    for report in terminalreporter.stats.get("passed", []) + terminalreporter.stats.get(
            "failed", []):
        for name, value in getattr(report, "user_properties", []):
            if name == "langgraph_conformance" and value not in lines:
                lines.append(value)
    if lines:
        terminalreporter.section("LangGraph conformance")
        for line in lines:
            terminalreporter.write_line(line)
