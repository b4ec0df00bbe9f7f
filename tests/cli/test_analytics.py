"""`analytics` shows the analytics read model: its --json rows are what the store's own
`store.analytics` queries return, with the read model's semantics for deleted and purged
sessions, and a histogram that counts every response time the rows count."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from session_store import SessionKey, SessionStore, Usage, open_store
from tests.kit import ok, ok_json

GROUPINGS = ["session", "user", "app", "day"]


async def queried(url: str, by: str, app: str | None = None) -> list[dict[str, Any]]:
    """The rows the store's analytics queries give for `by` (one app, or every app)."""
    async with open_store(url) as store:
        await store.wait_for(await store.log.last_position(), 60)
        model = store.analytics
        apps = [s for s in await model.by_app() if app in (None, s.app_name)]
        rows = list(apps)
        if by != "app":
            query = {"session": model.sessions, "user": model.by_user, "day": model.by_day}[by]
            rows = [row for a in apps for row in await query(a.app_name)]
    found: list[dict[str, Any]] = msgspec.to_builtins(rows)
    return found


def timed(rows: list[dict[str, Any]]) -> int:
    return sum(row["response_time"]["count"] for row in rows)


@pytest.mark.parametrize("by", GROUPINGS)
async def test_analytics_json_is_the_read_model(demo_url: str, by: str) -> None:
    figures = ok_json("analytics", "--by", by, db=demo_url)
    assert figures["by"] == by
    assert figures["rows"] == await queried(demo_url, by)
    assert figures["rows"], "the demo wrote usage"
    assert sum(b["count"] for b in figures["histogram"]) == timed(figures["rows"]) > 0
    app = figures["rows"][-1]["app_name"]
    one = ok_json("analytics", "--by", by, "--app", app, db=demo_url)
    assert one["rows"] == await queried(demo_url, by, app)
    assert {row["app_name"] for row in one["rows"]} == {app}
    assert sum(b["count"] for b in one["histogram"]) == timed(one["rows"])
    text = ok("analytics", "--by", by, db=demo_url).stdout
    assert f"Analytics by {by}" in text and "Response time distribution" in text
    assert "█" in text


async def _converse(store: SessionStore, user: str, session: str, times: list[float]) -> None:
    await store.create_session(app_name="shop", user_id=user, session_id=session)
    key = SessionKey("shop", user, session)
    await store.add_message(key, "user", "hello")
    for seconds in times:
        await store.add_message(key, "assistant", "hi", response_time=seconds,
                                usage=Usage(tokens_in=10, tokens_out=1))


async def test_deleted_sessions_stay_in_rollups_and_purged_ones_vanish(store_url: str) -> None:
    async with open_store(store_url) as store:
        await _converse(store, "u1", "kept", [0.003, 0.004])
        await _converse(store, "u1", "deleted", [0.5])
        await _converse(store, "u2", "purged", [7.0, 8.0, 9.0])
        await store.delete_session(app_name="shop", user_id="u1", session_id="deleted")
        await store.delete_session(app_name="shop", user_id="u2", session_id="purged",
                                   purge=True)
    sessions = ok_json("analytics", "--by", "session", db=store_url)
    assert [r["session_id"] for r in sessions["rows"]] == ["kept"]
    assert [b["count"] for b in sessions["histogram"]] == [2]  # both in 2 ms–5 ms
    for by in ("user", "app", "day"):
        figures = ok_json("analytics", "--by", by, db=store_url)
        assert figures["rows"] == await queried(store_url, by)
        (row,) = figures["rows"]  # u2's only session was purged: no row of u2 is left
        assert row["app_name"] == "shop" and row["user_id"] in (None, "u1")
        assert (row["messages"], row["tokens_in"], row["response_time"]["count"]) == (5, 30, 3)
        assert row["response_time"]["max"] == 0.5
        assert sum(b["count"] for b in figures["histogram"]) == 3


async def test_a_fresh_process_sees_what_another_one_wrote(store_url: str) -> None:
    """The writer stops folding its catch-up analytics before it writes: the command has to
    let its own followers fold the log before it reads."""
    async with open_store(store_url, projections={"analytics": "catchup"}) as store:
        follower = store.projections.follower
        assert follower is not None
        await follower.stop()
        for n in range(20):
            await _converse(store, f"u{n % 3}", f"s{n}", [0.01 * (n + 1)])
    figures = ok_json("analytics", "--by", "app", db=store_url)
    (row,) = figures["rows"]
    assert (row["messages"], row["response_time"]["count"]) == (40, 20)
    assert figures["rows"] == await queried(store_url, "app")
    assert len(ok_json("analytics", "--by", "session", db=store_url)["rows"]) == 20


def test_nothing_to_analyse(demo_url: str) -> None:
    empty = ok_json("analytics", "--app", "no-such-app", db=demo_url)
    assert (empty["rows"], empty["histogram"]) == ([], [])
    assert "No sessions to analyse" in ok("analytics", "--app", "no-such-app", db=demo_url).stdout
