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
import contextlib
import os
import queue
import re
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from session_store.errors import StoreUnavailable
from session_store.futures import settle
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
    shown: str = ""
    """The URL as the user gave it (password hidden): what messages name."""

    @property
    def display_url(self) -> str:
        return self.shown or self.url.render_as_string(hide_password=True)

    async def dispose(self) -> None:
        if self.point_readers is not None:
            await self.point_readers.close()
        await self.engine.dispose()
        if self.write_engine is not None:
            self.write_engine.dispose()


class _Reader:
    """One sqlite3 connection owned by a thread that runs the calls handed to it in turn.

    A plain queue and one `call_soon_threadsafe` per call: `run_in_executor`'s
    concurrent futures cost about a tenth of a short `get_session` more.
    """

    def __init__(self, path: str, pragmas: tuple[str, ...]) -> None:
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, args=(path, pragmas),
                                        name="session-store-read", daemon=True)
        self._thread.start()

    def _serve(self, path: str, pragmas: tuple[str, ...]) -> None:
        conn = sqlite3.connect(path, check_same_thread=False)
        try:
            for pragma in pragmas:
                conn.execute(pragma)
            while (call := self._calls.get()) is not None:
                function, args, future, loop = call
                try:
                    result: Any = function(conn, *args)
                except BaseException as error:  # noqa: BLE001 - handed to the caller
                    result = error
                with contextlib.suppress(RuntimeError):  # the caller's loop has closed
                    loop.call_soon_threadsafe(settle, future, result)
                # Hold nothing until the next call: an idle reader would keep its last
                # result (a page of rows) alive.
                del call, function, args, future, loop, result
        finally:
            conn.close()

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._calls.put((function, args, future, loop))
        return await future

    async def close(self) -> None:
        self._calls.put(None)  # after the calls already queued
        await asyncio.to_thread(self._thread.join)


_Call = tuple[Callable[..., Any], tuple[Any, ...], "asyncio.Future[Any]",
              asyncio.AbstractEventLoop]


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
        self._readers: list[_Reader] = []
        self._next = 0
        self._closed = False

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise StoreUnavailable("the store is closed")
        if len(self._readers) < self._size:  # opened lazily: the thread connects itself
            self._readers.append(_Reader(self._path, self._pragmas))
        self._next = (self._next + 1) % len(self._readers)
        return await self._readers[self._next].run(function, *args)

    async def close(self) -> None:
        self._closed = True
        while self._readers:
            await self._readers.pop().close()


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
    # The writer's path is absolute: it checks that the file it opened is still there
    # (`storage.failures.FileIdentity`), whatever the working directory is by then.
    write_engine = sa.create_engine(url.set(drivername="sqlite+pysqlite",
                                            database=os.path.abspath(path)))

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
    except (sa.exc.ArgumentError, ValueError) as error:  # ValueError: a port not a number
        raise StoreUnavailable(f"cannot parse database URL {_hidden(text)!r}: {error}"
                               ) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg")
    raise StoreUnavailable(
        f"unsupported database {backend!r} in {parsed.render_as_string(hide_password=True)}: "
        "use a SQLite path or a postgresql:// URL"
    )


def shown_url(url: str | None) -> str:
    """The URL as the user gave it (else `$SESSION_STORE_URL`, else ./sessions.db), with its
    password hidden: what messages name, rather than the driver URL the store uses."""
    text = url or os.environ.get("SESSION_STORE_URL") or DEFAULT_URL
    return _hidden(text)


def _hidden(text: str) -> str:
    if "://" not in text:
        return text
    try:
        return sa.make_url(text).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError):  # unparsable: hide what looks like a password
        return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", text)


def connect(url: str | None = None, *, durability: Durability = "normal",
            busy_timeout: float = 30.0, pool_size: int = 10) -> Database:
    resolved = resolve_url(url)
    shown = shown_url(url)
    if resolved.get_backend_name() == "sqlite":
        engine, write_engine, readers = _sqlite_engines(resolved, durability, busy_timeout)
        return Database(resolved, SQLITE, engine, write_engine, readers, shown)
    return Database(resolved, POSTGRES, postgres.engine(resolved, pool_size), shown=shown)


def database_file(url: str | None) -> Path | None:
    """The SQLite file `url` (else `$SESSION_STORE_URL`, else ./sessions.db) names; None for
    a database server. `StoreUnavailable` for a URL no store can open."""
    resolved = resolve_url(url)
    return Path(resolved.database or "") if resolved.get_backend_name() == "sqlite" else None


def describe_url(url: str | None) -> str:
    """`url` as the store resolves it, password hidden."""
    resolve_url(url)  # StoreUnavailable for a URL no store can open
    return shown_url(url)
