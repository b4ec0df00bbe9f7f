"""Usage per model and provider: part of the analytics read model.

One row per session, UTC day, model and provider (`""` when the usage names
none) of every message that carries usage and every tracked interaction: how
many messages (a tracked interaction is not a message), interactions, tokens in
and out. Exact integer sums, so a period's totals per model are exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from session_store.storage.database import dialect_of

Key = tuple[str, str, str, str, str, str]
"""app_name, user_id, session_id, day, model, provider."""
_VALUES = ("messages", "interactions", "tokens_in", "tokens_out")


def make_table(metadata: sa.MetaData, suffix: str = "") -> sa.Table:
    def key(name: str) -> sa.Column[Any]:
        return sa.Column(name, sa.String, primary_key=True)

    return sa.Table(
        f"ss_analytics_models{suffix}", metadata, key("app_name"), key("user_id"),
        key("session_id"), key("day"), key("model"), key("provider"),
        *(sa.Column(name, sa.BigInteger, nullable=False) for name in _VALUES),
        sa.Index(f"ss_analytics_models{suffix}_day", "app_name", "day"),
    )


def count(deltas: dict[Key, list[int]], key: tuple[str, str, str, str],
          model: str | None, provider: str | None, *, message: bool, tokens_in: int,
          tokens_out: int, interaction: bool = True) -> None:
    """Add one message with usage (`message`) or one tracked interaction (`interaction`
    False: the tokens of a turn a message already counted)."""
    full = (*key, model or "", provider or "")
    found = deltas.get(full)
    if found is None:
        found = deltas[full] = [0, 0, 0, 0]
    found[0] += message
    found[1] += interaction
    found[2] += tokens_in
    found[3] += tokens_out


def flush(conn: Connection, table: sa.Table, deltas: dict[Key, list[int]]) -> None:
    """Each changed row's stored sums plus its change, in one keyed load and one upsert."""
    if not deltas:
        return
    dialect = dialect_of(conn)
    columns = [c.name for c in table.columns]
    stored = {tuple(row[:6]): row[6:] for row in
              dialect.select_keyed(conn, table, columns, list(deltas))}
    rows = []
    for key, change in sorted(deltas.items()):
        before = stored.get(key, (0, 0, 0, 0))
        rows.append((*key, *(int(a) + b for a, b in zip(before, change, strict=True))))
    dialect.upsert(conn, table, rows)


def forget(conn: Connection, table: sa.Table, app_name: str, user_id: str,
           session_id: str, *, day: str | None = None) -> None:
    """A purged session's rows go (with `day`, only that day's: it is folded again)."""
    where = [table.c.app_name == app_name, table.c.user_id == user_id,
             table.c.session_id == session_id]
    if day is not None:
        where.append(table.c.day == day)
    conn.execute(table.delete().where(*where))


def usage_query(table: sa.Table, by: str, where: Sequence[Any]) -> Any:
    """Sums per `by` ('model' or 'provider') of the rows `where` selects, named ones only."""
    column = table.c[by]
    return (sa.select(column, *(sa.func.sum(table.c[name]).label(name) for name in _VALUES))
            .where(*where, column != "").group_by(column).order_by(column))
