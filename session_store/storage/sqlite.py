"""Every statement of the SQLite dialect (its engines and connections are set up in
`session_store.storage.database`).

The speed tricks of this dialect, and what each buys (2-core box):

- The append statements and the read models' keyed loads and upserts go to the
  sqlite3 cursor directly, skipping SQLAlchemy's per-execute machinery, which cost
  more than the statements (about half the writer's time).
- Keyed loads join the table to their keys as a `VALUES` CTE, keys first
  (`keyed_select`): SQLite 3.40 answers `(a, b) IN (VALUES ...)` with a scan of the
  whole table, so a 64-key load over 50,000 sessions went from 16.7 ms to 0.15 ms.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from session_store.domain.events import RecordedEvent, SessionKey
from session_store.domain.search import Term
from session_store.storage.codec import RECORD_LIST, decode_row, decode_rows
from session_store.storage.dialect import (
    Follow,
    Key,
    Loaded,
    Lock,
    Optimized,
    Row,
    StreamHead,
)
from session_store.storage.schema import PURGE_ALLOWED

if TYPE_CHECKING:
    from session_store.storage.database import Database, PointReaders

Durability = Literal["off", "normal", "full"]

CHUNK = 300
"""Keys per keyed statement: SQLite allows 32,766 parameters; 300 x 4 stays far below."""

_TRIGGER_SQL = {
    "ss_events_no_update": f"""CREATE TRIGGER ss_events_no_update BEFORE UPDATE ON ss_events
        WHEN NOT ({PURGE_ALLOWED.format(empty="x''")})
        BEGIN SELECT RAISE(ABORT, 'ss_events is append-only'); END""",
    "ss_events_no_delete": """CREATE TRIGGER ss_events_no_delete BEFORE DELETE ON ss_events
        BEGIN SELECT RAISE(ABORT, 'ss_events is append-only'); END""",
}
_TRIGGERS = tuple(statement for name, sql in _TRIGGER_SQL.items()
                  for statement in (f"DROP TRIGGER IF EXISTS {name}", sql))


def _spaced(sql: str) -> str:
    return " ".join(sql.split())


def keyed_select(table: str, columns: Sequence[str], key_columns: Sequence[str],
                 count: int) -> str:
    """SELECT `columns` of `table` for `count` keys given as flat `?` parameters, in
    `key_columns` order (see the module docstring for why a join)."""
    width = len(key_columns)
    names = ", ".join(f"k{i}" for i in range(width))
    row = "(" + ", ".join("?" * width) + ")"
    on = " AND ".join(f"t.{column} = k.k{i}" for i, column in enumerate(key_columns))
    return (f"WITH k({names}) AS (VALUES {', '.join([row] * count)}) "
            f"SELECT {', '.join(f't.{c}' for c in columns)} FROM k CROSS JOIN {table} AS t "
            f"ON {on}")


def upsert_sql(table: str, columns: Sequence[str], keys: Sequence[str]) -> str:
    """`INSERT (columns) ... ON CONFLICT (keys) DO UPDATE SET` the other columns: `?`
    parameters in `columns` order."""
    updates = ", ".join(f"{name} = excluded.{name}" for name in columns if name not in keys)
    action = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"  # all columns are keys
    return (f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
            f"({', '.join('?' * len(columns))}) ON CONFLICT ({', '.join(keys)}) "
            f"{action}")


def _cursor(conn: Connection) -> sqlite3.Cursor:
    return conn.connection.driver_connection.cursor()  # type: ignore[union-attr, no-any-return]


def _key_names(table: sa.Table) -> list[str]:
    return [c.name for c in table.primary_key.columns]


class SQLite:
    """The SQLite dialect (`session_store.storage.dialect.Dialect`)."""

    name = "sqlite"
    single_writer = True
    loop_bound = False
    triggers: Sequence[str] = _TRIGGERS

    _HEAD = ("SELECT version, hash FROM ss_streams WHERE app_name = ? AND user_id = ? "
             "AND session_id = ?")
    _LAST = "SELECT max(position) FROM ss_events"
    _TAIL = "SELECT position, anchor FROM ss_events ORDER BY position DESC LIMIT 1"
    _INSERT = (f"INSERT INTO ss_events ({RECORD_LIST}, anchor) "
               "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
    _STREAM_COLUMNS = ("app_name", "user_id", "session_id", "version", "hash")
    _UPSERT_STREAMS = upsert_sql("ss_streams", _STREAM_COLUMNS, _STREAM_COLUMNS[:3])

    def __init__(self) -> None:
        self._upserts: dict[str, str] = {}

    # --- inside a write transaction --------------------------------------------------

    def lock(self, conn: Connection, what: Lock) -> None:
        """Every write transaction begins with `BEGIN IMMEDIATE`: it holds the file's lock."""

    def trigger_problems(self, conn: Connection) -> list[str]:
        found: dict[str, str] = dict(conn.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
            "AND tbl_name = 'ss_events'").all())
        problems = [f"append-only trigger {name} is missing" for name in _TRIGGER_SQL
                    if name not in found]
        problems.extend(f"append-only trigger {name} was altered"
                        for name, sql in _TRIGGER_SQL.items()
                        if name in found and _spaced(found[name]) != _spaced(sql))
        problems.extend(f"unexpected trigger {name} on ss_events" for name in found
                        if name not in _TRIGGER_SQL)
        return problems

    def still_at(self, conn: Connection, position: int) -> bool:
        cursor = _cursor(conn)
        last = cursor.execute(self._LAST).fetchone()[0] or 0
        cursor.close()
        return bool(last == position)

    def tail(self, conn: Connection) -> tuple[int, str]:
        cursor = _cursor(conn)
        row = cursor.execute(self._TAIL).fetchone()
        cursor.close()
        return (row[0], row[1]) if row is not None else (0, "")

    def load_streams(self, conn: Connection, keys: set[SessionKey], event_ids: list[str]
                     ) -> Loaded:
        cursor = _cursor(conn)
        heads: dict[SessionKey, tuple[int, str]] = {}
        if len(keys) == 1:
            (key,) = keys
            row = cursor.execute(self._HEAD, key).fetchone()
            if row is not None:
                heads[key] = (row[0], row[1])
        else:
            key_list = list(keys)
            for start in range(0, len(key_list), CHUNK):
                chunk = key_list[start:start + CHUNK]
                query = keyed_select("ss_streams", self._STREAM_COLUMNS,
                                     self._STREAM_COLUMNS[:3], len(chunk))
                for app, user, session, version, digest in cursor.execute(
                        query, [part for key in chunk for part in key]):
                    heads[SessionKey(app, user, session)] = (version, digest)
        row = cursor.execute(self._TAIL).fetchone()
        tail = (row[0], row[1]) if row is not None else (0, "")
        stored: dict[str, RecordedEvent] = {}
        for start in range(0, len(event_ids), 500):
            ids = event_ids[start:start + 500]
            query = (f"SELECT {RECORD_LIST} FROM ss_events WHERE event_id IN ("
                     + ", ".join(["?"] * len(ids)) + ")")
            for row in cursor.execute(query, ids):
                record = decode_row(row)
                stored[record.event_id] = record
        cursor.close()
        return heads, tail, stored

    def write_records(self, conn: Connection, rows: list[Row], heads: list[StreamHead],
                      position: int) -> None:
        cursor = _cursor(conn)
        cursor.executemany(self._INSERT, rows)
        cursor.executemany(self._UPSERT_STREAMS, heads)
        cursor.close()

    def select_keyed(self, conn: Connection, table: sa.Table, columns: Sequence[str],
                     keys: Sequence[Key]) -> list[tuple[Any, ...]]:
        key_columns = _key_names(table)
        cursor = _cursor(conn)
        found: list[tuple[Any, ...]] = []
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start:start + CHUNK]
            query = keyed_select(table.name, columns, key_columns, len(chunk))
            found.extend(cursor.execute(query, [part for key in chunk for part in key]))
        cursor.close()
        return found

    def upsert(self, conn: Connection, table: sa.Table, rows: Sequence[tuple[Any, ...]]
               ) -> None:
        if not rows:
            return
        statement = self._upserts.get(table.name)
        if statement is None:
            statement = self._upserts[table.name] = upsert_sql(
                table.name, [c.name for c in table.columns], _key_names(table))
        cursor = _cursor(conn)
        cursor.executemany(statement, rows)
        cursor.close()

    def delete_keyed(self, conn: Connection, table: sa.Table, keys: Sequence[Key],
                     by: Sequence[str] | None = None) -> None:
        if not keys:
            return
        where = " AND ".join(f"{name} = ?" for name in (by or _key_names(table)))
        cursor = _cursor(conn)
        cursor.executemany(f"DELETE FROM {table.name} WHERE {where}", keys)
        cursor.close()

    def text_index(self, table: sa.Table, name: str) -> SQLiteTextIndex:
        return SQLiteTextIndex(table, name)

    # --- reads on their own connection --------------------------------------------

    async def fetch(self, db: Database, query: str, params: Sequence[Any]) -> Sequence[Any]:
        return await _readers(db).run(_fetch, query, params)

    async def fetch_then(self, db: Database, query: str, params: Sequence[Any],
                         follow: Follow) -> tuple[Sequence[Any], Sequence[Any]]:
        return await _readers(db).run(_fetch_then, query, params, follow)

    def scan(self, db: Database) -> SQLiteScan:
        return SQLiteScan(db.url.database or "")

    async def optimize(self, db: Database, tables: Sequence[str], text_tables: Sequence[str],
                       busy_timeout: float) -> Optimized:
        return await asyncio.to_thread(_optimize, db.url.database or "", text_tables,
                                       busy_timeout)


def _optimize(path: str, text_tables: Sequence[str], busy_timeout: float) -> Optimized:
    """On a connection of its own in autocommit (VACUUM cannot run in a transaction):
    checkpoint and truncate the WAL, merge each FTS5 index, ANALYZE, VACUUM, checkpoint
    again (VACUUM writes through the WAL). ANALYZE and VACUUM cover every table."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        before = _size(conn)
        steps = [_checkpoint(conn)]
        for name in text_tables:
            conn.execute(f"INSERT INTO {name} ({name}) VALUES ('optimize')")
            steps.append(f"fts5 optimize {name}")
        conn.execute("ANALYZE")
        steps.append("ANALYZE")
        conn.execute("VACUUM")
        steps.append("VACUUM")
        steps.append(_checkpoint(conn))
        return steps, before, _size(conn)
    finally:
        conn.close()


def _checkpoint(conn: sqlite3.Connection) -> str:
    busy, frames, done = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return (f"wal_checkpoint(TRUNCATE): {done} of {frames} frames"
            + (" (busy: a reader held it)" if busy else ""))


def _size(conn: sqlite3.Connection) -> int:
    pages, = conn.execute("PRAGMA page_count").fetchone()
    size, = conn.execute("PRAGMA page_size").fetchone()
    return int(pages) * int(size)


def _readers(db: Database) -> PointReaders:
    assert db.point_readers is not None, "a SQLite database has point readers"
    return db.point_readers


def _fetch(conn: sqlite3.Connection, query: str, params: Sequence[Any]) -> list[Any]:
    return conn.execute(query, params).fetchall()


def _fetch_then(conn: sqlite3.Connection, query: str, params: Sequence[Any], follow: Follow
                ) -> tuple[Sequence[Any], Sequence[Any]]:
    rows = conn.execute(query, params).fetchall()
    then = follow(rows)
    return rows, (() if then is None else conn.execute(*then).fetchall())


class SQLiteTextIndex:
    """FTS5, contentless (the text lives in the indexed table), word presence only
    (`detail=none`, which halves its cost), diacritics folded by the tokenizer; its rowid is
    the table's first primary-key column. A contentless index is told what it drops."""

    TEXT = "text"

    def __init__(self, table: sa.Table, name: str) -> None:
        self.table, self.name = table, name
        columns = [c.name for c in table.columns]
        self._key = columns[0]
        self._text = columns.index(self.TEXT)
        self._insert = (f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES "
                        f"({', '.join('?' * len(columns))})")

    def tables(self) -> list[str]:
        return [self.name]

    def install(self, conn: Connection) -> None:
        conn.exec_driver_sql(f"CREATE VIRTUAL TABLE IF NOT EXISTS {self.name} USING "
                             "fts5(text, tokenize = 'unicode61 remove_diacritics 2', "
                             "detail = none, content = '')")

    def insert(self, conn: Connection, rows: Sequence[tuple[Any, ...]],
               fold: Callable[[str], str], *, bulk: bool) -> None:
        cursor = _cursor(conn)
        cursor.executemany(self._insert, rows)
        if not bulk:
            cursor.executemany(f"INSERT INTO {self.name} (rowid, text) VALUES (?, ?)",
                               [(row[0], row[self._text]) for row in rows])
        cursor.close()

    def finish_bulk(self, conn: Connection) -> None:
        conn.exec_driver_sql(f"INSERT INTO {self.name} (rowid, text) "
                             f"SELECT {self._key}, text FROM {self.table.name}")

    def delete(self, conn: Connection, where: str, params: dict[str, Any], *,
               bulk: bool) -> None:
        if not bulk:
            conn.execute(sa.text(f"INSERT INTO {self.name} ({self.name}, rowid, text) SELECT "
                                 f"'delete', {self._key}, text FROM {self.table.name} "
                                 f"WHERE {where}"), params)
        conn.execute(sa.text(f"DELETE FROM {self.table.name} WHERE {where}"), params)

    def forget(self, conn: Connection) -> None:
        # A delete only adds a tombstone: the words stay in the older segments until they
        # are merged. 'optimize' merges them all (work in the size of the whole index).
        conn.exec_driver_sql(f"INSERT INTO {self.name} ({self.name}) VALUES ('optimize')")

    def dump(self, conn: Connection) -> dict[str, list[tuple[Any, ...]]]:
        """Which rows the index holds and how many hold each term."""
        rowids = conn.exec_driver_sql(f"SELECT rowid FROM {self.name} ORDER BY rowid").all()
        vocabulary = f"ss_vocab_{uuid.uuid4().hex[:10]}"
        conn.exec_driver_sql(f"CREATE VIRTUAL TABLE temp.{vocabulary} USING "
                             f"fts5vocab(main, {self.name}, 'row')")
        try:
            terms = conn.exec_driver_sql(f"SELECT term, doc FROM temp.{vocabulary} "
                                         "ORDER BY term").all()
        finally:
            conn.exec_driver_sql(f"DROP TABLE temp.{vocabulary}")
        return {"fts rows": [tuple(row) for row in rowids],
                "fts terms": [tuple(row) for row in terms]}

    def match(self, query: Any, terms: Sequence[Term]) -> Any:
        # detail=none has no positions: a phrase's words are asked for one by one (the
        # search rule then checks their order); a prefix is FTS5's own `"word"*`.
        asked = [f'"{word}"' for term in terms for word in term.words[:-1]]
        asked += [f'"{term.words[-1]}"' + ("*" if term.prefix else "") for term in terms]
        fts = sa.table(self.name, sa.column("rowid"))
        matched = " ".join(asked)
        return (query.join(fts, fts.c.rowid == self.table.c[self._key])
                .where(sa.text(f"{self.name} MATCH :match").bindparams(match=matched)))


class SQLiteScan:
    """A rebuild pass's reader: one plain sqlite3 connection on a thread of its own, so
    the event loop stays free for appends and no row costs a hop; closed with the pass."""

    _SELECT = f"SELECT {RECORD_LIST} FROM ss_events WHERE position > ? ORDER BY position LIMIT ?"

    def __init__(self, path: str) -> None:
        self._path = path
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="session-store-scan")
        self._conn: sqlite3.Connection | None = None

    def _read(self, after: int, limit: int) -> list[RecordedEvent]:
        if self._conn is None:
            self._conn = sqlite3.connect(self._path, check_same_thread=False)
        return decode_rows(self._conn.execute(self._SELECT, (after, limit)).fetchall(),
                           tolerant=True)

    async def read(self, after: int, limit: int) -> list[RecordedEvent]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._read, after, limit)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close)
        self._thread.shutdown(wait=False)
