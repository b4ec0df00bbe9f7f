"""The whole contract of a projection: what the runtime calls, and when.

A projection is a read model folded from the log. It names itself and its fold's
version, owns tables (built for a name suffix, so a rebuild can fill fresh copies
beside the live ones), and folds batches of events in position order inside the
caller's transaction. The optional hooks have defaults here; a projection
overrides the ones it needs by subclassing `Projection`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from session_store.domain.events import RecordedEvent
from session_store.storage.database import Database
from session_store.storage.dialect import Dialect

Rows = list[tuple[Any, ...]]


class Projection(Protocol):
    """A read model folded from the log."""

    name: str
    """Unique among a store's projections; names its checkpoint."""
    version: int
    """Of the fold: a stored model of another version is rebuilt when the store opens."""

    def tables(self) -> Sequence[sa.Table]:
        """The tables this projection owns (created by the runtime when missing)."""
        ...

    def for_rebuild(self, suffix: str) -> Projection:
        """The same projection writing to fresh tables named with `suffix`."""
        ...

    def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        """Fold a batch of events (in position order) into the tables."""
        ...

    # --- optional hooks -------------------------------------------------------------

    def extra_tables(self, dialect: Dialect) -> list[str]:
        """More tables it owns that SQLAlchemy's `Table` cannot describe (a full-text index):
        dropped and renamed along with its tables, same suffix rule."""
        return []

    def install(self, conn: Connection) -> None:
        """Runs once right after its tables were created."""
        return None

    def start_bulk(self) -> None:
        """A rebuild starts filling fresh tables: work that can wait may wait."""
        return None

    def finish_bulk(self, conn: Connection) -> None:
        """The rebuild's fill has ended: do what `start_bulk` deferred."""
        return None

    def dump_extras(self, conn: Connection) -> dict[str, Rows]:
        """The rows of `extra_tables`, for `verify` to compare."""
        return {}


Ready = Callable[[], Awaitable[None]]


async def _now() -> None:
    pass


class Queries:
    """Base of a read model's query object: every query reads through `rows`, which first
    awaits `ready` (the store passes one that waits until the catch-up follower has
    folded what the store itself wrote: read-your-writes)."""

    def __init__(self, db: Database, ready: Ready | None = None) -> None:
        self.db = db
        self._ready = ready or _now

    async def rows(self, query: Any) -> list[Any]:
        """The rows of `query` as mappings, once the read model is ready."""
        await self._ready()
        async with self.db.engine.connect() as conn:
            return list((await conn.execute(query)).mappings().all())
