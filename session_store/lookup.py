"""Rows of a SQLite table by many composite keys in one statement, through its index.

`WHERE (a, b) IN (VALUES (?, ?), ...)` reads naturally but SQLite 3.40 answers it
with a scan of the whole table per statement, so a batch of appends (or a fold
of a chunk of the log) grew slower with every session in the store. Joining
the table to the keys as a CTE, keys first, makes each key one index search.
"""

from __future__ import annotations

from collections.abc import Sequence

CHUNK = 300
"""Keys per statement: SQLite allows 32,766 parameters; 300 x 4 stays far below."""


def keyed_select(table: str, columns: Sequence[str], key_columns: Sequence[str],
                 count: int) -> str:
    """SELECT `columns` of `table` for `count` keys given as flat `?` parameters, in
    `key_columns` order."""
    width = len(key_columns)
    names = ", ".join(f"k{i}" for i in range(width))
    row = "(" + ", ".join("?" * width) + ")"
    on = " AND ".join(f"t.{column} = k.k{i}" for i, column in enumerate(key_columns))
    return (f"WITH k({names}) AS (VALUES {', '.join([row] * count)}) "
            f"SELECT {', '.join(f't.{c}' for c in columns)} FROM k CROSS JOIN {table} AS t "
            f"ON {on}")
