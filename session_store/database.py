"""From a URL to engines: where the store lives and how it is connected.

SQLite gets two engines on one file: an aiosqlite engine for reads and a plain
pysqlite engine owned by the writer thread (see `writer.ThreadWriter`).
PostgreSQL gets one asyncpg engine for both.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import aiosqlite
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from session_store.errors import StoreUnavailable

T = TypeVar("T")

DEFAULT_URL = "sessions.db"
Durability = Literal["off", "normal", "full"]


class PointReaders:
    """SQLite: a few aiosqlite connections beside SQLAlchemy's pool, for one-hop reads.

    Checking a connection out of SQLAlchemy's async pool and back costs about as much
    as a short read itself (~0.2 ms on the 2-core box), so `get_session` runs its plain
    SQL here instead: `run(function, *args)` calls `function(sqlite3_connection, *args)`
    on one of these connections' threads. Calls spread over the connections; each
    connection runs its calls one at a time.
    """

    def __init__(self, path: str, pragmas: tuple[str, ...], size: int = 4) -> None:
        self._path = path
        self._pragmas = pragmas
        self._size = size
        self._connections: list[Any] = []
        self._next = 0
        self._opening = asyncio.Lock()
        self._closed = False

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise StoreUnavailable("the store is closed")
        if len(self._connections) < self._size:
            async with self._opening:
                if len(self._connections) < self._size and not self._closed:
                    self._connections.append(await self._open())
        if not self._connections:  # closed while this call waited to open one
            raise StoreUnavailable("the store is closed")
        self._next = (self._next + 1) % len(self._connections)
        conn = self._connections[self._next]
        result: T = await conn._execute(function, conn._conn, *args)
        return result

    async def _open(self) -> Any:
        conn = await aiosqlite.connect(self._path)
        for pragma in self._pragmas:
            await conn.execute(pragma)
        return conn

    async def close(self) -> None:
        self._closed = True
        while self._connections:
            await self._connections.pop().close()


@dataclass(frozen=True)
class Database:
    url: sa.URL
    dialect: Literal["sqlite", "postgresql"]
    engine: AsyncEngine
    write_engine: Engine | None
    """SQLite only: the engine of the writer thread."""
    point_readers: PointReaders | None = None
    """SQLite only: connections for one-hop point reads (`reads.load_session`)."""

    @property
    def display_url(self) -> str:
        return self.url.render_as_string(hide_password=True)

    async def dispose(self) -> None:
        if self.point_readers is not None:
            await self.point_readers.close()
        await self.engine.dispose()
        if self.write_engine is not None:
            self.write_engine.dispose()


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
        return _sqlite(resolved, durability, busy_timeout)
    try:
        engine = create_async_engine(resolved, pool_size=pool_size, max_overflow=pool_size)
    except ImportError as error:
        raise StoreUnavailable(
            f"PostgreSQL needs asyncpg: pip install 'session-store[postgres]' ({error})"
        ) from None
    return Database(resolved, "postgresql", engine, None)


def _sqlite(url: sa.URL, durability: Durability, busy_timeout: float) -> Database:
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
    # No rollback when a read connection goes back to the pool: a SQLAlchemy connection
    # already rolls back a transaction it began when it closes, and the driver-level reads
    # (`reads.load_session`) begin none. The extra rollback was a hop to aiosqlite's thread,
    # a third of a `get_session(num_recent_events=20)`.
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
        # A bigger page cache keeps append cost flat as the log's indexes grow.
        cursor.execute("PRAGMA cache_size = -65536")
        # Checkpoint every ~40 MB of WAL instead of ~4 MB: the pages every append rewrites
        # (index edges, stream heads) reach the database file once per checkpoint, so fewer
        # checkpoints write fewer pages (~10 % more sequential appends through the ADK
        # adapter on the 2-core box). The file is cut back to 64 MB after a checkpoint.
        cursor.execute("PRAGMA wal_autocheckpoint = 10000")
        cursor.execute("PRAGMA journal_size_limit = 67108864")
        for pragma in pragmas:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(write_engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        # On the driver connection: this runs once per write transaction (per append).
        connection.connection.driver_connection.execute("BEGIN IMMEDIATE")

    return Database(url, "sqlite", engine, write_engine, PointReaders(path, pragmas))
