"""From a URL to a `Database`: where the store lives, how it is connected, in which dialect.

SQLite gets two engines on one file (an aiosqlite engine for reads, a pysqlite engine
owned by the writer thread, which issues `BEGIN IMMEDIATE` itself) and point
readers; PostgreSQL one asyncpg engine for both. This is the one place that picks a
dialect. What the SQLite connection settings buy (2-core box):

- Point reads (`get_session`, `read_all` pages) run on `PointReaders`, one hop to a
  reader thread for the whole read: checking a connection out of SQLAlchemy's async
  pool and back cost about as much as a short read (~0.2 ms).
- The writer's connection keeps a 64 MiB page cache and checkpoints the WAL every
  ~40 MB instead of ~4 MB: the pages every append rewrites reach the database file
  once per checkpoint (~10 % more sequential appends through the ADK adapter).
- No rollback when a read connection goes back to SQLAlchemy's pool: a SQLAlchemy
  connection already rolls back a transaction it began, and the driver-level reads
  begin none (the extra rollback was a third of a `get_session(num_recent_events=20)`).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from session_store.errors import StoreUnavailable
from session_store.storage import postgres, sqlite
from session_store.storage.dialect import Dialect

T = TypeVar("T")
DEFAULT_URL = "sessions.db"
Durability: TypeAlias = sqlite.Durability

SQLITE = sqlite.SQLite()
POSTGRES = postgres.Postgres()
_DIALECTS: dict[str, Dialect] = {"sqlite": SQLITE, "postgresql": POSTGRES}


def dialect_of(conn: Connection) -> Dialect:
    """The dialect of a connection (inside a write transaction, where no `Database` is at
    hand: inline and catch-up folds, rebuild chunks)."""
    return _DIALECTS[conn.dialect.name]


@dataclass(frozen=True)
class Database:
    url: sa.URL
    dialect: Dialect
    engine: AsyncEngine
    write_engine: Engine | None = None
    """SQLite only: the engine of the writer thread."""
    point_readers: PointReaders | None = None
    """SQLite only: connections for one-hop point reads."""

    @property
    def display_url(self) -> str:
        return self.url.render_as_string(hide_password=True)

    async def dispose(self) -> None:
        if self.point_readers is not None:
            await self.point_readers.close()
        await self.engine.dispose()
        if self.write_engine is not None:
            self.write_engine.dispose()


class PointReaders:
    """A few sqlite3 connections, each on a thread of its own, for one-hop reads.

    `run(function, *args)` calls `function(sqlite3_connection, *args)` on one of the
    connections' threads (see the module docstring for why). Calls spread over the
    connections; each connection runs its calls one at a time.
    """

    def __init__(self, path: str, pragmas: tuple[str, ...], size: int = 4) -> None:
        self._path = path
        self._pragmas = pragmas
        self._size = size
        self._readers: list[tuple[ThreadPoolExecutor, sqlite3.Connection]] = []
        self._next = 0
        self._opening = asyncio.Lock()
        self._closed = False

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise StoreUnavailable("the store is closed")
        if len(self._readers) < self._size:
            async with self._opening:
                if len(self._readers) < self._size and not self._closed:
                    self._readers.append(await self._open())
        if not self._readers:  # closed while this call waited to open one
            raise StoreUnavailable("the store is closed")
        self._next = (self._next + 1) % len(self._readers)
        thread, conn = self._readers[self._next]
        return await asyncio.get_running_loop().run_in_executor(thread, function, conn, *args)

    async def _open(self) -> tuple[ThreadPoolExecutor, sqlite3.Connection]:
        thread = ThreadPoolExecutor(1, thread_name_prefix="session-store-read")

        def connect() -> sqlite3.Connection:
            conn = sqlite3.connect(self._path, check_same_thread=False)
            for pragma in self._pragmas:
                conn.execute(pragma)
            return conn

        conn = await asyncio.get_running_loop().run_in_executor(thread, connect)
        return thread, conn

    async def close(self) -> None:
        self._closed = True
        loop = asyncio.get_running_loop()
        while self._readers:
            thread, conn = self._readers.pop()
            await loop.run_in_executor(thread, conn.close)
            thread.shutdown(wait=False)


def _sqlite_engines(url: sa.URL, durability: Durability, busy_timeout: float
            ) -> tuple[AsyncEngine, Engine, PointReaders]:
    """The read engine, the writer thread's engine and the point readers of a file."""
    path = url.database
    if not path or path == ":memory:" or (url.query.get("mode") == "memory"):
        raise StoreUnavailable(
            "in-memory SQLite cannot be shared by the writer thread and readers: use a file "
            "(a temporary directory works for tests)"
        )
    parent = Path(path).expanduser().resolve().parent
    if not parent.is_dir():
        raise StoreUnavailable(f"cannot create {path}: directory {parent} does not exist")
    pragmas = (
        f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}",
        f"PRAGMA synchronous = {durability.upper()}",
    )
    engine = create_async_engine(url, pool_reset_on_return=None)
    write_engine = sa.create_engine(url.set(drivername="sqlite+pysqlite"))

    @event.listens_for(engine.sync_engine, "connect")
    def _read_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        for pragma in pragmas:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(write_engine, "connect")
    def _write_pragmas(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN IMMEDIATE ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA cache_size = -65536")
        cursor.execute("PRAGMA wal_autocheckpoint = 10000")
        cursor.execute("PRAGMA journal_size_limit = 67108864")  # cut back after a checkpoint
        for pragma in pragmas:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(write_engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        # On the driver connection: this runs once per write transaction (per append).
        connection.connection.driver_connection.execute("BEGIN IMMEDIATE")

    return engine, write_engine, PointReaders(path, pragmas)


def resolve_url(url: str | None) -> sa.URL:
    """`url`, else `$SESSION_STORE_URL`, else ./sessions.db; a bare path means SQLite."""
    text = url or os.environ.get("SESSION_STORE_URL") or DEFAULT_URL
    if "://" not in text:
        return sa.make_url("sqlite+aiosqlite:///" + str(Path(text)))
    try:
        parsed = sa.make_url(text)
    except sa.exc.ArgumentError as error:
        raise StoreUnavailable(f"cannot parse database URL {text!r}: {error}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg")
    raise StoreUnavailable(
        f"unsupported database {backend!r} in {parsed.render_as_string(hide_password=True)}: "
        "use a SQLite path or a postgresql:// URL"
    )


def connect(url: str | None = None, *, durability: Durability = "normal",
            busy_timeout: float = 30.0, pool_size: int = 10) -> Database:
    resolved = resolve_url(url)
    if resolved.get_backend_name() == "sqlite":
        engine, write_engine, readers = _sqlite_engines(resolved, durability, busy_timeout)
        return Database(resolved, SQLITE, engine, write_engine, readers)
    return Database(resolved, POSTGRES, postgres.engine(resolved, pool_size))
