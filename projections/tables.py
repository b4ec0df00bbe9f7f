"""Table plumbing shared by the runtime: create, drop, swap and dump a projection's tables
(with what its optional hooks add: `install`, `extra_tables`, `dump_extras`).

Table and index names carry the projection's suffix, so a rebuild's fresh
copies never collide with the live ones (PostgreSQL and SQLite index names are
schema-wide). After a swap the live tables keep the suffixed index names.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateTable

from projections.protocol import Projection, Rows
from session_store.storage.database import dialect_of


def table_names(projection: Projection, conn: Connection) -> list[str]:
    return [*(table.name for table in projection.tables()),
            *projection.extra_tables(dialect_of(conn))]


def create(conn: Connection, projection: Projection, *, indexes: bool = True) -> bool:
    """Create the projection's tables when missing; True when they were created now."""
    inspector = sa.inspect(conn)
    created = False
    for table in projection.tables():
        if inspector.has_table(table.name):
            continue
        conn.execute(CreateTable(table))
        if indexes:
            for index in table.indexes:
                index.create(conn)
        created = True
    if created:
        projection.install(conn)
    return created


def create_indexes(conn: Connection, projection: Projection) -> None:
    """Create the indexes `create(..., indexes=False)` left out (cheaper after a bulk fill)."""
    for table in projection.tables():
        for index in table.indexes:
            index.create(conn, checkfirst=True)


def drop(conn: Connection, projection: Projection) -> None:
    for name in reversed(table_names(projection, conn)):
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")


def swap(conn: Connection, live: Projection, fresh: Projection) -> None:
    """Replace the live tables with the fresh ones, in the caller's transaction."""
    for old, new in zip(table_names(live, conn), table_names(fresh, conn), strict=True):
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {old}")
        conn.exec_driver_sql(f"ALTER TABLE {new} RENAME TO {old}")


def dump(conn: Connection, projection: Projection) -> dict[str, Rows]:
    """Every row of every table the projection owns, keyed by its unsuffixed role, sorted."""
    result: dict[str, Rows] = {}
    for index, table in enumerate(projection.tables()):
        order = list(table.primary_key.columns) or list(table.columns)
        rows = conn.execute(sa.select(*table.columns).order_by(*order)).all()
        result[f"table{index}"] = [tuple(row) for row in rows]
    result.update(projection.dump_extras(conn))
    return result


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)
    if isinstance(a, memoryview | bytearray):
        a = bytes(a)
    if isinstance(b, memoryview | bytearray):
        b = bytes(b)
    return bool(a == b)


def compare(name: str, tables: Sequence[sa.Table], live: dict[str, Rows], fresh: dict[str, Rows],
            *, limit: int = 20) -> list[str]:
    """Human-readable differences between the live rows and a fresh fold's rows."""
    differences: list[str] = []
    for role in sorted(set(live) | set(fresh)):
        index = int(role[5:]) if role.startswith("table") and role[5:].isdigit() else None
        label = tables[index].name if index is not None else role
        key_width = len(tables[index].primary_key.columns) if index is not None else 1
        have = {row[:key_width]: row for row in live.get(role, [])}
        want = {row[:key_width]: row for row in fresh.get(role, [])}
        found: list[str] = []
        for key in sorted(set(have) | set(want), key=repr):
            if key not in have:
                found.append(f"{name}: {label} is missing row {key} (the log says {want[key]})")
            elif key not in want:
                found.append(f"{name}: {label} has row {key} that the log does not produce")
            elif not all(_same(a, b) for a, b in zip(have[key], want[key], strict=True)):
                found.append(f"{name}: {label} row {key} is {have[key]}, the log says "
                             f"{want[key]}")
        if len(found) > limit:
            found = [*found[:limit], f"{name}: {label}: ... {len(found) - limit} more"]
        differences.extend(found)
    return differences
