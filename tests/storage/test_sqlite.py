"""Looking rows up by many composite keys: one index search per key, never a table scan."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from session_store.storage.sqlite import keyed_select
from session_store.store import open_store


def test_keyed_select_finds_exactly_the_keyed_rows_through_the_index() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (a TEXT, b TEXT, v INTEGER, PRIMARY KEY (a, b))")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?)",
                     [(f"a{i % 7}", f"b{i}", i) for i in range(2_000)])
    keys = [("a3", "b3"), ("a0", "b7"), ("a1", "b1"), ("missing", "b1")]
    query = keyed_select("t", ("a", "b", "v"), ("a", "b"), len(keys))
    found = conn.execute(query, [part for key in keys for part in key]).fetchall()
    assert sorted(found) == [("a0", "b7", 7), ("a1", "b1", 1), ("a3", "b3", 3)]
    plan = " | ".join(row[-1] for row in conn.execute(
        "EXPLAIN QUERY PLAN " + query, [part for key in keys for part in key]))
    assert "SEARCH t USING" in plan and "SCAN t" not in plan, plan


SESSION = ("app_name", "user_id", "session_id")


@pytest.mark.parametrize("table, keys", [
    ("ss_streams", SESSION),  # the writer's load of a batch's stream heads
    ("ss_heads", SESSION),  # the heads projection
    ("ss_users", ("app_name", "user_id")),  # the user index
    ("ss_user_sessions", SESSION),
    ("ss_analytics_sessions", (*SESSION, "day")),  # the analytics rollups
    ("ss_analytics_users", ("app_name", "user_id")),
    ("ss_analytics_days", ("app_name", "day")),
])
async def test_the_stores_multi_key_lookups_search_the_index(tmp_path: Path, table: str,
                                                             keys: tuple[str, ...]) -> None:
    path = tmp_path / "s.db"
    async with open_store(str(path)) as store:
        await store.create_session(app_name="app", user_id="u")
    conn = sqlite3.connect(path)
    query = keyed_select(table, keys, keys, 3)
    plan = " | ".join(row[-1] for row in conn.execute(
        "EXPLAIN QUERY PLAN " + query, ["x"] * len(keys) * 3))
    assert "SEARCH t USING" in plan and "SCAN t" not in plan, plan
