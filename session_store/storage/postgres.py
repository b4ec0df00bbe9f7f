"""Every statement of the PostgreSQL dialect, and the engine that carries them.

One asyncpg engine serves reads and the writer task. Appends serialise on a
transaction-level advisory lock; so do schema migrations and the creation of
projection tables, each on a lock of its own.

The speed tricks of this dialect, and what each buys:

- The append statements, the read models' keyed loads and upserts, and the point
  reads go to the asyncpg connection directly (through SQLAlchemy's greenlet
  bridge on sync connections): about a third of an append's CPU went to
  SQLAlchemy's per-execute machinery.
- Many rows travel as one array per column (`unnest`), one round trip for any
  number of rows.
- An append's write statement inserts its rows only when the log still ends where
  the batch was planned to follow it, and sends the wake-up (`pg_notify`) in the
  same round trip: the writer can trust its cache of stream heads without a
  separate check (`StaleHeads` otherwise).
- The writer task begins its transaction and takes the write lock in one round trip
  (`BEGIN_LOCKED`; `WRITE_LOCK_HELD` tells the batch it holds the lock already).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.util import await_only as await_

from session_store.domain.events import RecordedEvent, SessionKey
from session_store.domain.search import Term
from session_store.errors import StoreUnavailable
from session_store.storage.codec import RECORD_LIST, decode_row, decode_rows
from session_store.storage.dialect import (
    Follow,
    Key,
    Loaded,
    Lock,
    Optimized,
    Row,
    StaleHeads,
    StreamHead,
)
from session_store.storage.schema import PURGE_ALLOWED

if TYPE_CHECKING:
    from session_store.storage.database import Database

LOCKS: dict[Lock, int] = {"schema": 7415106, "writes": 7415107, "projections": 7415108}
"""The advisory lock key of each process-wide lock."""
BEGIN_LOCKED = f"BEGIN; SELECT pg_advisory_xact_lock({LOCKS['writes']})"
WRITE_LOCK_HELD = "session_store.write_lock_held"
"""`Connection.info` flag: the transaction already holds the log's write lock."""

_GUARD_BODY = f"""
        BEGIN
          IF TG_OP = 'UPDATE' AND ({PURGE_ALLOWED.format(empty="''::bytea")}) THEN
            RETURN NEW;
          END IF;
          RAISE EXCEPTION 'ss_events is append-only' USING ERRCODE = 'raise_exception';
        END """
_TRIGGER_DEFS = {
    "ss_events_no_change": "BEFORE DELETE OR UPDATE ON {table} FOR EACH ROW",
    "ss_events_no_truncate": "BEFORE TRUNCATE ON {table} FOR EACH STATEMENT",
}
_TRIGGERS = (
    "CREATE OR REPLACE FUNCTION ss_events_guard() RETURNS trigger LANGUAGE plpgsql AS "
    f"$${_GUARD_BODY}$$",
    *(statement for name, definition in _TRIGGER_DEFS.items() for statement in (
        f"DROP TRIGGER IF EXISTS {name} ON ss_events",
        f"CREATE TRIGGER {name} {definition.format(table='ss_events')} "
        "EXECUTE FUNCTION ss_events_guard()")),
)
_FOUND_TRIGGERS = (
    "SELECT t.tgname, t.tgenabled::text, pg_get_triggerdef(t.oid) FROM pg_trigger t "
    "WHERE t.tgrelid = 'ss_events'::regclass AND NOT t.tgisinternal"
)
_FOUND_GUARD = "SELECT prosrc FROM pg_proc WHERE proname = 'ss_events_guard'"


_ARRAY_TYPES: tuple[tuple[type[sa.types.TypeEngine[Any]], str], ...] = (
    (sa.SmallInteger, "smallint"), (sa.BigInteger, "bigint"), (sa.Integer, "int"),
    (sa.Boolean, "bool"), (sa.Float, "float8"), (sa.LargeBinary, "bytea"),
    (sa.String, "text"),
)
"""Column types to the element type of the array a column travels in (first match)."""


def numbered(query: str) -> str:
    """`?` placeholders as PostgreSQL's `$1, $2, ...`."""
    parts = query.split("?")
    return "".join(f"{part}${n}" for n, part in enumerate(parts[:-1], 1)) + parts[-1]


def _array_type(column: sa.Column[Any]) -> str:
    for kind, name in _ARRAY_TYPES:
        if isinstance(column.type, kind):
            return name
    raise TypeError(f"no array type for column {column.name} ({column.type})")


def _unnest(columns: Sequence[sa.Column[Any]], first: int = 1) -> str:
    return ", ".join(f"${first + i}::{_array_type(c)}[]" for i, c in enumerate(columns))


def _keys(pk: Sequence[sa.Column[Any]]) -> str:
    """The keys of a keyed statement as a relation `k(k0, k1, ...)` of arrays $1, $2, ..."""
    return f"unnest({_unnest(pk)}) AS k({', '.join(f'k{i}' for i in range(len(pk)))})"


def _matching(pk: Sequence[sa.Column[Any]]) -> str:
    return " AND ".join(f"t.{c.name} = k.k{i}" for i, c in enumerate(pk))


def _columns_of(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * width


def _driver(conn: Connection) -> Any:
    return conn.connection.driver_connection


class Postgres:
    """The PostgreSQL dialect (`session_store.storage.dialect.Dialect`)."""

    name = "postgresql"
    single_writer = False
    loop_bound = True
    triggers: Sequence[str] = _TRIGGERS

    _TAIL = "SELECT position, anchor FROM ss_events ORDER BY position DESC LIMIT 1"
    _LOAD = (
        "SELECT 0 AS kind, NULL AS app_name, NULL AS user_id, NULL AS session_id, "
        "NULL::int AS version, t.anchor AS hash, t.position AS position "
        f"FROM ({_TAIL}) AS t "
        "UNION ALL "
        "SELECT 1, s.app_name, s.user_id, s.session_id, s.version, s.hash, NULL FROM ss_streams s "
        "JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(a, u, s) "
        "ON s.app_name = k.a AND s.user_id = k.u AND s.session_id = k.s"
    )
    _STORED = f"SELECT {RECORD_LIST} FROM ss_events WHERE event_id = ANY($1::text[])"
    _WRITE = (
        f"WITH inserted AS (INSERT INTO ss_events ({RECORD_LIST}, anchor) SELECT * FROM unnest("
        "$1::bigint[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[], "
        "$7::smallint[], $8::bytea[], $9::text[], $10::float8[], $11::text[], $12::text[]) "
        "WHERE (SELECT coalesce(max(position), 0) FROM ss_events) = $19::bigint RETURNING 1), "
        "heads AS (INSERT INTO ss_streams (app_name, user_id, session_id, version, hash) "
        "SELECT * FROM unnest($13::text[], $14::text[], $15::text[], $16::int[], $17::text[]) "
        "ON CONFLICT (app_name, user_id, session_id) "
        "DO UPDATE SET version = excluded.version, hash = excluded.hash) "
        "SELECT pg_notify('ss_events', $18::text), (SELECT count(*) FROM inserted)"
    )

    def __init__(self) -> None:
        self._statements: dict[tuple[str, ...], str] = {}

    # --- inside a write transaction --------------------------------------------------

    def lock(self, conn: Connection, what: Lock) -> None:
        if what == "writes" and conn.info.get(WRITE_LOCK_HELD):
            return
        conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({LOCKS[what]})"))

    def trigger_problems(self, conn: Connection) -> list[str]:
        problems: list[str] = []
        guard = conn.exec_driver_sql(_FOUND_GUARD).scalar()
        if guard is None:
            problems.append("the append-only guard function ss_events_guard is missing")
        elif " ".join(guard.split()) != " ".join(_GUARD_BODY.split()):
            problems.append("the append-only guard function ss_events_guard was altered")
        found = {name: (enabled, definition)
                 for name, enabled, definition in conn.exec_driver_sql(_FOUND_TRIGGERS)}
        for name, definition in _TRIGGER_DEFS.items():
            wanted = (f"CREATE TRIGGER {name} {definition.format(table='ss_events')} "
                      "EXECUTE FUNCTION ss_events_guard()")
            if name not in found:
                problems.append(f"append-only trigger {name} is missing")
            elif found[name][0] == "D":
                problems.append(f"append-only trigger {name} is disabled")
            elif re.sub(r" ON \S*ss_events ", " ON ss_events ", found[name][1]) != wanted:
                problems.append(f"append-only trigger {name} was altered")
        problems.extend(f"unexpected trigger {name} on ss_events" for name in found
                        if name not in _TRIGGER_DEFS)
        return problems

    def still_at(self, conn: Connection, position: int) -> bool:
        return True  # checked by `write_records` in the same round trip

    def tail(self, conn: Connection) -> tuple[int, str]:
        row = conn.exec_driver_sql(self._TAIL).first()
        return (row[0], row[1]) if row is not None else (0, "")

    def load_streams(self, conn: Connection, keys: set[SessionKey], event_ids: list[str]
                     ) -> Loaded:
        driver = _driver(conn)
        apps, users, sessions = (list(part) for part in zip(*keys, strict=True))
        heads: dict[SessionKey, tuple[int, str]] = {}
        tail = (0, "")
        for kind, app, user, session, version, digest, last in await_(
                driver.fetch(self._LOAD, apps, users, sessions)):
            if kind == 0:
                tail = (last, digest)
            else:
                heads[SessionKey(app, user, session)] = (version, digest)
        stored: dict[str, RecordedEvent] = {}
        if event_ids:
            for row in await_(driver.fetch(self._STORED, event_ids)):
                record = decode_row(row)
                stored[record.event_id] = record
        return heads, tail, stored

    def write_records(self, conn: Connection, rows: list[Row], heads: list[StreamHead],
                      position: int) -> None:
        (_, inserted), = await_(_driver(conn).fetch(
            self._WRITE, *_columns_of(rows, 12), *_columns_of(heads, 5), str(position),
            rows[0][0] - 1))
        if inserted != len(rows):
            raise StaleHeads("the log moved on since this batch was planned")

    def _statement(self, key: tuple[str, ...], build: Callable[[], str]) -> str:
        statement = self._statements.get(key)
        if statement is None:
            statement = self._statements[key] = build()
        return statement

    def select_keyed(self, conn: Connection, table: sa.Table, columns: Sequence[str],
                     keys: Sequence[Key]) -> list[tuple[Any, ...]]:
        if not keys:
            return []
        pk = list(table.primary_key.columns)

        def build() -> str:
            return (f"SELECT {', '.join(f't.{c}' for c in columns)} FROM {table.name} t "
                    f"JOIN {_keys(pk)} ON {_matching(pk)}")

        statement = self._statement(("select", table.name, *columns), build)
        return [tuple(row) for row in await_(_driver(conn).fetch(
            statement, *_columns_of(keys, len(pk))))]

    def upsert(self, conn: Connection, table: sa.Table, rows: Sequence[tuple[Any, ...]]
               ) -> None:
        if not rows:
            return
        columns = list(table.columns)

        def build() -> str:
            keys = [c.name for c in table.primary_key.columns]
            updates = ", ".join(f"{c.name} = excluded.{c.name}" for c in columns
                                if c.name not in keys)
            action = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"  # all keys
            return (f"INSERT INTO {table.name} ({', '.join(c.name for c in columns)}) "
                    f"SELECT * FROM unnest({_unnest(columns)}) "
                    f"ON CONFLICT ({', '.join(keys)}) {action}")

        statement = self._statement(("upsert", table.name), build)
        await_(_driver(conn).execute(statement, *_columns_of(rows, len(columns))))

    def delete_keyed(self, conn: Connection, table: sa.Table, keys: Sequence[Key],
                     by: Sequence[str] | None = None) -> None:
        if not keys:
            return
        pk = [table.c[name] for name in by] if by else list(table.primary_key.columns)

        def build() -> str:
            return f"DELETE FROM {table.name} t USING {_keys(pk)} WHERE {_matching(pk)}"

        statement = self._statement(("delete", table.name, *(c.name for c in pk)), build)
        await_(_driver(conn).execute(statement, *_columns_of(keys, len(pk))))

    def text_index(self, table: sa.Table, name: str) -> PostgresTextIndex:
        return PostgresTextIndex(table, name)

    # --- reads on their own connection --------------------------------------------

    async def fetch(self, db: Database, query: str, params: Sequence[Any]) -> Sequence[Any]:
        async with db.engine.connect() as conn:
            raw: Any = (await conn.get_raw_connection()).driver_connection
            rows: Sequence[Any] = await raw.fetch(self._numbered(query), *params)
            return rows

    async def fetch_then(self, db: Database, query: str, params: Sequence[Any],
                         follow: Follow) -> tuple[Sequence[Any], Sequence[Any]]:
        async with db.engine.connect() as conn:
            raw: Any = (await conn.get_raw_connection()).driver_connection
            rows: Sequence[Any] = await raw.fetch(self._numbered(query), *params)
            then = follow(rows)
            if then is None:
                return rows, ()
            return rows, await raw.fetch(self._numbered(then[0]), *then[1])

    def _numbered(self, query: str) -> str:
        return self._statement(("numbered", query), lambda: numbered(query))

    def scan(self, db: Database) -> PostgresScan:
        return PostgresScan(self, db)

    async def optimize(self, db: Database, tables: Sequence[str], text_tables: Sequence[str],
                       busy_timeout: float) -> Optimized:
        """`VACUUM ANALYZE` of each table, in autocommit (VACUUM refuses a transaction);
        the full-text index is a GIN index of its table, vacuumed with it."""
        size = "SELECT pg_database_size(current_database())"
        async with db.engine.connect() as conn:
            raw: Any = (await conn.get_raw_connection()).driver_connection
            await raw.execute(f"SET lock_timeout = {int(busy_timeout * 1000)}")
            before = int(await raw.fetchval(size))
            steps = []
            for table in tables:
                await raw.execute(f"VACUUM ANALYZE {table}")
                steps.append(f"VACUUM ANALYZE {table}")
            await raw.execute("RESET lock_timeout")
            return steps, before, int(await raw.fetchval(size))


class PostgresTextIndex:
    """A `tsvector` column of the indexed table with a GIN index, `simple` configuration
    (no stemming), over the text folded by the caller (accents removed) and cut to
    `TSV_CHARS` characters (a tsvector holds at most 1 MB)."""

    TEXT = "text"
    TSV_CHARS = 200_000
    MAX_WORD_BYTES = 2047

    def __init__(self, table: sa.Table, name: str) -> None:
        self.table, self.name = table, name
        self._names = [c.name for c in table.columns]
        self._text = self._names.index(self.TEXT)
        self._insert = sa.text(
            f"INSERT INTO {table.name} ({', '.join(self._names)}, tsv) VALUES "
            f"({', '.join(':' + c for c in self._names)}, to_tsvector('simple', :folded))")

    def tables(self) -> list[str]:
        return []

    def install(self, conn: Connection) -> None:
        name = self.table.name
        conn.exec_driver_sql(f"ALTER TABLE {name} ADD COLUMN IF NOT EXISTS tsv tsvector")
        conn.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {name}_tsv ON {name} USING gin "
                             "(tsv)")

    def insert(self, conn: Connection, rows: Sequence[tuple[Any, ...]],
               fold: Callable[[str], str], *, bulk: bool) -> None:
        conn.execute(self._insert, [
            {**dict(zip(self._names, row, strict=True)),
             "folded": fold(row[self._text][:self.TSV_CHARS])}
            for row in rows])

    def finish_bulk(self, conn: Connection) -> None:
        pass  # rows are indexed as they are inserted

    def delete(self, conn: Connection, where: str, params: dict[str, Any], *,
               bulk: bool) -> None:
        conn.execute(sa.text(f"DELETE FROM {self.table.name} WHERE {where}"), params)

    def forget(self, conn: Connection) -> None:
        pass  # the tsv column goes with its row

    def dump(self, conn: Connection) -> dict[str, list[tuple[Any, ...]]]:
        return {}  # the tsv column is part of the table's rows

    def match(self, query: Any, terms: Sequence[Term]) -> Any:
        # Words are letters and digits only (`search.words`): quoting them is enough. A
        # tsvector holds no word over 2,047 bytes, so a term with one cannot narrow.
        asked = " & ".join(
            "(" + " <-> ".join(f"'{word}'" for word in term.words)
            + (":*" if term.prefix else "") + ")" for term in terms
            if all(len(word.encode()) < self.MAX_WORD_BYTES for word in term.words))
        if not asked:
            return query
        tsquery = sa.func.to_tsquery(sa.literal_column("'simple'"), asked)
        tsv: Any = sa.literal_column(f"{self.table.name}.tsv")
        return query.where(tsv.op("@@")(tsquery))


class PostgresScan:
    """A rebuild pass's reader: pages of the log through the engine's pool."""

    _SELECT = f"SELECT {RECORD_LIST} FROM ss_events WHERE position > ? ORDER BY position LIMIT ?"

    def __init__(self, dialect: Postgres, db: Database) -> None:
        self._dialect, self._db = dialect, db

    async def read(self, after: int, limit: int) -> list[RecordedEvent]:
        return decode_rows(await self._dialect.fetch(self._db, self._SELECT, (after, limit)),
                           tolerant=True)

    async def close(self) -> None:
        pass


def engine(url: sa.URL, pool_size: int) -> AsyncEngine:
    try:
        return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size)
    except ImportError as error:
        raise StoreUnavailable(
            f"PostgreSQL needs asyncpg: pip install 'session-store[postgres]' ({error})"
        ) from None
