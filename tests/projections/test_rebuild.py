"""Rebuilds: swapped in atomically while appends continue; stale and new projections rebuilt
on start; mode changes carried over."""

from __future__ import annotations

import asyncio
import random

import pytest
import sqlalchemy as sa

from projections.runtime import ProjectionRuntime
from session_store.domain.events import SessionCreated, SessionKey
from session_store.log.eventlog import EventLog
from tests.kit import ALL_CATCHUP, ALL_INLINE, append, dump, opened, said


async def totals(log: EventLog) -> tuple[int, int, int]:
    """What a reader sees: history rows, user-index messages, analytics messages."""
    async with log.db.engine.connect() as conn:
        history = (await conn.execute(sa.text("SELECT count(*) FROM ss_history"))).scalar()
        users = (await conn.execute(sa.text("SELECT sum(messages) FROM ss_users"))).scalar()
        apps = (await conn.execute(sa.text("SELECT sum(messages) FROM ss_analytics_apps"))
                ).scalar()
    return int(history or 0), int(users or 0), int(apps or 0)


async def fill(log: EventLog, sessions: int, messages: int, first: int = 0) -> int:
    for n in range(first, first + sessions):
        await append(log, SessionKey("app", f"u{n % 7}", f"s{n}"), SessionCreated(),
                     *[said(f"m{i}", tokens=(1, 1)) for i in range(messages)])
    return sessions * messages


@pytest.mark.parametrize("modes", [None, ALL_INLINE], ids=["default-modes", "all-inline"])
async def test_rebuild_while_appending(store_url: str, modes: dict[str, str] | None) -> None:
    async with opened(store_url, modes) as (log, runtime):
        written = await fill(log, 60, 40)
        stop = asyncio.Event()
        seen: list[tuple[int, int, int]] = []

        async def appender() -> None:
            nonlocal written
            rng = random.Random(7)
            while not stop.is_set():
                n = rng.randrange(60)
                await append(log, SessionKey("app", f"u{n % 7}", f"s{n}"),
                             said("more", tokens=(1, 1)), said("and more"))
                written += 2
                await asyncio.sleep(0)

        async def reader() -> None:
            while not stop.is_set():
                now = await totals(log)
                if seen:  # a partly built model would show fewer rows than before
                    assert all(a >= b for a, b in zip(now, seen[-1], strict=True)), (now, seen)
                seen.append(now)
                await asyncio.sleep(0.005)

        progress: list[tuple[int, int]] = []
        tasks = [asyncio.create_task(appender()), asyncio.create_task(reader())]
        await asyncio.sleep(0.05)
        report = await runtime.rebuild(progress=lambda done, total: progress.append(
            (done, total)), chunk=500)
        await asyncio.sleep(0.05)
        stop.set()
        await asyncio.gather(*tasks)

        assert report.names == ("heads", "history", "users", "analytics")
        assert report.events >= 60 * 41 and report.events_per_second > 0
        assert len(progress) >= 4 and progress[-1][0] <= report.events
        assert len(seen) > 5
        last = await log.last_position()
        assert report.position <= last
        await runtime.wait_for(last, timeout=20)
        assert await totals(log) == (written, written, written)  # nothing missed
        assert await runtime.verify() == []


async def test_stale_and_new_projections_are_rebuilt_on_start(store_url: str) -> None:
    async with opened(store_url, ALL_INLINE) as (log, runtime):
        await fill(log, 5, 4)
        before = await dump(log, runtime.all)

    def tamper(conn: sa.Connection) -> None:
        conn.execute(sa.text("UPDATE ss_projections SET version = 0 WHERE name = 'users'"))
        conn.execute(sa.text("DELETE FROM ss_users"))  # what an old version would not have
        conn.execute(sa.text("DELETE FROM ss_projections WHERE name = 'analytics'"))
        for table in ("ss_analytics_sessions", "ss_analytics_users", "ss_analytics_apps",
                      "ss_analytics_days"):
            conn.execute(sa.text(f"DROP TABLE {table}"))

    async with opened(store_url, ALL_INLINE) as (log, runtime):
        await log.run_schema(tamper)
    async with opened(store_url, ALL_INLINE) as (log, runtime):
        after = await dump(log, runtime.all)
        assert after == before
        assert await runtime.verify() == []


async def test_mode_changes_carry_over(store_url: str) -> None:
    async with opened(store_url, ALL_CATCHUP) as (log, runtime):
        await runtime.close()  # the follower stops: a backlog builds up
        written = await fill(log, 4, 5)
    async with opened(store_url, ALL_INLINE) as (log, runtime):
        assert await totals(log) == (written, written, written)  # the backlog was folded
        written += await fill(log, 2, 3, first=10)  # now inline
        assert await totals(log) == (written, written, written)
    async with opened(store_url, ALL_CATCHUP) as (log, runtime):
        last = await append(log, SessionKey("app", "u0", "s0"), said("late"))
        await runtime.wait_for(last, timeout=10)
        assert await totals(log) == (written + 1,) * 3
        assert await runtime.verify() == []


async def test_rebuild_a_subset_and_refuse_unknown_names(store_url: str) -> None:
    async with opened(store_url) as (log, runtime):
        await fill(log, 3, 3)
        report = await runtime.rebuild(["users", "users"])
        assert report.names == ("users",)
        with pytest.raises(ValueError, match="unknown projections"):
            await runtime.rebuild(["nope"])
        assert await runtime.verify(["users", "heads"]) == []


async def test_verify_reports_tampering(store_url: str) -> None:
    async with opened(store_url, ALL_INLINE) as (log, runtime):
        await fill(log, 2, 2)

        def tamper(conn: sa.Connection) -> None:
            conn.execute(sa.text("UPDATE ss_users SET tokens_in = 99 WHERE user_id = 'u1'"))
            conn.execute(sa.text("DELETE FROM ss_history WHERE version = 2"))

        await log.run_schema(tamper)
        problems = await runtime.verify()
        assert any("ss_users row ('app', 'u1')" in p and "99" in p for p in problems)
        assert sum("ss_history is missing row" in p for p in problems) == 2


def test_runtime_lists_its_projections() -> None:
    from session_store.storage.database import connect

    db = connect("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    runtime = ProjectionRuntime(EventLog(db), modes={"history": "inline"})
    assert [p.name for p in runtime.inline] == ["heads", "history"]
    assert [p.name for p in runtime.catchup] == ["users", "analytics"]
    defaults = ProjectionRuntime(EventLog(connect("x.db"))).modes
    assert defaults == {"heads": "inline", "history": "catchup", "users": "catchup",
                        "analytics": "catchup"}
