"""What the compat modules rely on natively: `InteractionTracked(turn=...)` completes a
measured turn without counting a second interaction (every fold agrees), and a bare session
id is looked up through an index of the heads, not a scan."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa

from session_store import Event, InvalidEvent, Usage
from session_store.domain.events import InteractionTracked
from session_store.store import SessionStore


async def test_a_tracked_completion_is_not_a_second_interaction(store: SessionStore) -> None:
    session = await store.create_session(app_name="app", user_id="ann", session_id="s")
    reply = await store.append_event(session, Event(
        role="assistant", text="hi", usage=Usage(tokens_in=3, tokens_out=4), response_time=0.5))
    await store.append_payloads(session.key, [InteractionTracked(
        tokens_in=10, tokens_out=20, response_time=0.0, turn=reply.data.message.id)])  # type: ignore[union-attr]
    await store.track_interaction(session.key, tokens_in=1, tokens_out=2, response_time=0.25)
    found = await store.get_session(app_name="app", user_id="ann", session_id="s")
    assert found is not None
    stats = found.statistics()
    # one measured message + one interaction of its own; the completion adds tokens only
    assert (stats.interactions, stats.tokens_in, stats.tokens_out) == (2, 14, 26)
    assert stats.mean_response_time == pytest.approx((0.5 + 0.25) / 2)
    by_session = await store.analytics.by_session("app", "ann", "s")
    assert by_session is not None
    assert (by_session.interactions, by_session.tokens_in, by_session.tokens_out) == (2, 14, 26)
    assert by_session.response_time.count == 2
    user = await store.users.get(app_name="app", user_id="ann")
    assert user is not None and (user.tokens_in, user.tokens_out) == (14, 26)
    report = await store.verify()
    assert report.ok, report.problems
    with pytest.raises(InvalidEvent):
        await store.append_payloads(session.key, [InteractionTracked(turn="")])


def _captured(store: SessionStore) -> list[tuple[str, Any]]:
    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                many: bool) -> None:
        if "ss_heads" in statement and "session_id =" in statement:
            statements.append((statement, parameters))

    sa.event.listen(store.db.engine.sync_engine, "before_cursor_execute", capture)
    return statements


async def test_a_bare_id_is_found_through_an_index(store: SessionStore, backend: str) -> None:
    for user in range(30):
        await store.create_session(app_name=f"app{user % 3}", user_id=f"u{user}",
                                   session_id=f"s{user}")
    statements = _captured(store)
    found = await store.find_sessions("s7", app_name="app1")
    assert [tuple(k) for k in found] == [("app1", "u7", "s7")]
    ((statement, parameters),) = statements
    if backend == "sqlite":
        import sqlite3

        with sqlite3.connect(store.db.engine.url.database or "") as conn:
            plan = " ".join(row[3] for row in conn.execute(
                "EXPLAIN QUERY PLAN " + statement, parameters))
        assert "ss_heads_session" in plan and "SCAN" not in plan, plan
    else:
        url = store.db.engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False)
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("ANALYZE ss_heads")
            await conn.execute("SET enable_seqscan = off")  # a 30-row table is scanned anyway
            rows = await conn.fetch("EXPLAIN " + statement, *parameters)
        finally:
            await conn.close()
        plan = " ".join(row[0] for row in rows)
        assert "ss_heads_session" in plan, plan


async def test_a_session_read_looks_its_heads_up_by_key(sqlite_url: str) -> None:
    """`get_session` (every compat read) finds the head and scope rows by primary key, not
    by searching the app's sessions."""
    import sqlite3

    from session_store import open_store, reads

    async with open_store(sqlite_url) as store:
        for user in range(40):
            await store.create_session(app_name="app", user_id=f"u{user}", session_id="s")
    with sqlite3.connect(sqlite_url) as conn:
        conn.execute("ANALYZE")
        plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + reads._HEADS_SQL,
                                               ["app", "u7", "s", "app"])]
    searches = [step for step in plan if step.startswith("SEARCH")]
    assert searches and all(all(f"{column}=?" in step for column in
                                ("app_name", "user_id", "session_id"))
                            for step in searches), plan  # the whole key, either index
