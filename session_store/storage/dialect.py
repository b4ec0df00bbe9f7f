"""What the layers above ask of a database dialect: the one seam between them and SQL.

Everything that differs between SQLite and PostgreSQL is behind this protocol, in
one module per dialect (`session_store.storage.sqlite`, `session_store.storage.postgres`):
locks, the append statements, keyed loads and upserts of read-model rows, the
full-text index, the reads on the driver connection. Code above `storage` asks for
a dialect (`Database.dialect`, or `database.dialect_of(connection)` inside a write
transaction) and never branches on its name. Statements that SQLAlchemy Core writes
the same way for both (most of the read models' queries) stay with their callers.

The sync methods run on a SQLAlchemy `Connection` inside the caller's transaction
(the writer's, a catch-up batch's, a rebuild chunk's); the async ones open their own
connection.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from session_store.domain.events import RecordedEvent, SessionKey
from session_store.domain.search import Term

if TYPE_CHECKING:  # typing only: the database module imports the dialects
    from session_store.storage.database import Database

Lock = Literal["schema", "projections", "writes"]
"""Process-wide locks: schema migrations, projection table creation, appends."""
Row = tuple[int, str, str, str, int, str, int, bytes, str, float, str, str]
"""One ss_events row to insert: `codec.RECORD_NAMES` order, then its anchor."""
StreamHead = tuple[str, str, str, int, str]
"""One ss_streams row: app_name, user_id, session_id, version, hash."""
Tail = tuple[int, str]
"""The log's last position and that event's anchor ((0, "") when the log is empty)."""
Loaded = tuple[dict[SessionKey, tuple[int, str]], Tail, dict[str, RecordedEvent]]
"""Stream heads, the log's tail, and the stored records of caller-given event ids."""
Key = tuple[Any, ...]
"""A primary key's values, in the table's primary-key column order."""
Optimized = tuple[list[str], int, int]
"""What `optimize` did (one line per step), and the database's bytes before and after."""
Follow = Callable[[Sequence[Any]], "tuple[str, Sequence[Any]] | None"]
"""Given a statement's rows, the next statement (`?` placeholders) and its parameters."""


class StaleHeads(Exception):
    """A batch was planned on heads someone else has moved past: plan it again."""


class TextIndex(Protocol):
    """Full-text search over a table's text column (history), words folded alike on both."""

    def tables(self) -> list[str]:
        """Tables the index adds beside the indexed table (dropped and renamed with it)."""
        ...

    def install(self, conn: Connection) -> None:
        """Create the index, right after the indexed table."""
        ...

    def insert(self, conn: Connection, rows: Sequence[tuple[Any, ...]],
               fold: Callable[[str], str], *, bulk: bool) -> None:
        """Insert rows (position first, the text at `TEXT_COLUMN`) and index their text;
        `bulk`: leave the indexing to `finish_bulk`."""
        ...

    def finish_bulk(self, conn: Connection) -> None:
        """Index every row inserted with `bulk`."""
        ...

    def delete(self, conn: Connection, where: str, params: dict[str, Any], *,
               bulk: bool) -> None:
        """Delete the rows `where` (SQL with :named parameters), and their index entries."""
        ...

    def forget(self, conn: Connection) -> None:
        """Drop what deleted rows left inside the index itself (after a purge: no word of
        an erased message may stay in the database)."""
        ...

    def dump(self, conn: Connection) -> dict[str, list[tuple[Any, ...]]]:
        """What the index holds beyond the table's rows, for `verify` to compare."""
        ...

    def match(self, query: Any, terms: Sequence[Term]) -> Any:
        """`query` (a select over the table) narrowed to rows that may match every term: at
        least those that do (`session_store.domain.search` decides)."""
        ...


class Dialect(Protocol):
    name: str
    """'sqlite' or 'postgresql', as SQLAlchemy names the dialect."""
    single_writer: bool
    """One writer connection owned by a thread (SQLite), instead of a writer task per
    store with the database serialising writers (PostgreSQL)."""
    loop_bound: bool
    """Its connections belong to the event loop that made them (asyncpg): the store must be
    called on one loop. SQLite's readers and writer thread answer any loop."""
    triggers: Sequence[str]
    """The statements that make the log append-only (all but the audited purge); they
    replace whatever triggers of the same names exist."""

    def trigger_problems(self, conn: Connection) -> list[str]:
        """What is missing, disabled or altered among the append-only triggers, and any
        trigger on the log table that is not one of them (none: [])."""
        ...

    # --- inside a write transaction --------------------------------------------------

    def lock(self, conn: Connection, what: Lock) -> None:
        """Hold `what` until the transaction ends (across processes)."""
        ...

    def still_at(self, conn: Connection, position: int) -> bool:
        """Whether `position` may still be the log's last (no one else appended since)."""
        ...

    def tail(self, conn: Connection) -> Tail:
        """The log's last position and anchor, read now."""
        ...

    def load_streams(self, conn: Connection, keys: set[SessionKey], event_ids: list[str]
                     ) -> Loaded:
        ...

    def write_records(self, conn: Connection, rows: list[Row], heads: list[StreamHead],
                      position: int) -> None:
        """Insert the rows and the streams' new heads; `StaleHeads` when the log no longer
        ends at `position` (PostgreSQL checks in the same round trip)."""
        ...

    def select_keyed(self, conn: Connection, table: sa.Table, columns: Sequence[str],
                     keys: Sequence[Key]) -> list[tuple[Any, ...]]:
        """`columns` of the rows of `table` with these primary keys, in one index search each."""
        ...

    def upsert(self, conn: Connection, table: sa.Table, rows: Sequence[tuple[Any, ...]]
               ) -> None:
        """Insert or replace whole rows (every column, in table order) by primary key (a row
        whose columns are all its key is inserted unless it is there)."""
        ...

    def delete_keyed(self, conn: Connection, table: sa.Table, keys: Sequence[Key],
                     by: Sequence[str] | None = None) -> None:
        """Delete the rows with these keys: values of the columns `by` (default: the
        primary key), in that order."""
        ...

    def text_index(self, table: sa.Table, name: str) -> TextIndex:
        ...

    # --- reads on their own connection --------------------------------------------

    async def fetch(self, db: Database, query: str, params: Sequence[Any]) -> Sequence[Any]:
        """Rows of one plain-SQL statement (`?` placeholders) as tuples, on the driver
        connection: no SQLAlchemy row processing, one consistent snapshot."""
        ...

    async def fetch_then(self, db: Database, query: str, params: Sequence[Any],
                         follow: Follow) -> tuple[Sequence[Any], Sequence[Any]]:
        """`query`'s rows, then the rows of the statement `follow(rows)` returns (none when
        it returns None), in one hop where the driver allows: a point read such as
        `get_session` (its heads, then its messages)."""
        ...

    async def optimize(self, db: Database, tables: Sequence[str], text_tables: Sequence[str],
                       busy_timeout: float) -> Optimized:
        """Upkeep outside any transaction: reclaim space, refresh the planner's statistics
        of `tables`, merge the full-text index `text_tables`; waits up to `busy_timeout`
        seconds for other connections' locks."""
        ...

    def scan(self, db: Database) -> LogScan:
        """A reader of the log in position order for a rebuild pass (payloads that do not
        decode read as `PayloadUnreadable`: the pass sets them aside)."""
        ...


class LogScan(Protocol):
    """`read(after, limit)`: the next records of the log; `close()` when the pass ends."""

    async def read(self, after: int, limit: int) -> list[RecordedEvent]:
        ...

    async def close(self) -> None:
        ...
