"""From a URL to a `Database`: where the store lives, how it is connected, in which dialect.

SQLite gets two engines on one file (an aiosqlite engine for reads, a pysqlite engine
owned by the writer thread) and point readers; PostgreSQL one asyncpg engine for
both (see the dialect modules). This is the one place that picks a dialect.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from session_store.errors import StoreUnavailable
from session_store.storage import postgres, sqlite
from session_store.storage.dialect import Dialect
from session_store.storage.sqlite import PointReaders

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
        engine, write_engine, readers = sqlite.engines(resolved, durability, busy_timeout)
        return Database(resolved, SQLITE, engine, write_engine, readers)
    return Database(resolved, POSTGRES, postgres.engine(resolved, pool_size))
