"""Analytics: tallies per session, user, app and day, inline and catch-up."""

from __future__ import annotations

import pytest

from session_store.domain.events import (
    InteractionTracked,
    Payload,
    SessionCreated,
    SessionDeleted,
    SessionPurged,
)
from tests.kit import (
    S1,
    S2,
    S3,
    append,
    opened,
    purge,
    read_models,
    said,
)


async def test_analytics(store_url: str, modes: dict[str, str]) -> None:
    async with opened(store_url, modes) as (log, runtime):
        times = [0.1 * (i + 1) for i in range(100)]  # 0.1 .. 10.0 seconds
        payloads: list[Payload] = [SessionCreated()]
        for index, seconds in enumerate(times):
            payloads.append(said(f"q{index}"))
            payloads.append(said(f"a{index}", "assistant", tokens=(3, 7),
                                 response_time=seconds))
        await append(log, S1, *payloads)
        await append(log, S2, SessionCreated(), said("plain"),
                     InteractionTracked(tokens_in=1, tokens_out=1),
                     InteractionTracked(tokens_in=2, tokens_out=2, response_time=20.0),
                     said("timed", "assistant", response_time=0.5))
        last = await append(log, S3, SessionCreated(), said("bob", tokens=(100, 0)))
        await runtime.wait_for(last, timeout=10)
        analytics = read_models(runtime).analytics

        one = await analytics.by_session("app", "ann", "s1")
        assert one is not None
        assert (one.interactions, one.messages, one.tokens_in, one.tokens_out) == (
            100, 200, 300, 700)
        assert one.messages_by_role == {"assistant": 100, "user": 100}
        rt = one.response_time
        assert rt.count == 100 and rt.min == pytest.approx(0.1) and rt.max == pytest.approx(10.0)
        assert rt.total == pytest.approx(sum(times)) and rt.mean == pytest.approx(5.05)
        for value, want in ((rt.p50, 5.0), (rt.p95, 9.5), (rt.p99, 9.9)):
            assert value is not None and abs(value - want) / want < 0.03

        two = await analytics.by_session("app", "ann", "s2")
        assert two is not None
        assert (two.interactions, two.messages, two.tokens_in, two.tokens_out) == (3, 2, 3, 3)
        assert (two.response_time.count, two.response_time.max) == (2, 20.0)

        users = {s.user_id: s for s in await analytics.by_user("app")}
        assert set(users) == {"ann", "bob"}
        assert users["ann"].interactions == 103 and users["ann"].response_time.count == 102
        assert users["ann"].response_time.max == 20.0
        apps = await analytics.by_app()
        assert [(a.app_name, a.messages, a.tokens_in) for a in apps] == [("app", 203, 403)]
        days = await analytics.by_day("app")
        assert len(days) == 1 and days[0].messages == 203 and days[0].day is not None
        assert await analytics.by_day("app", since="2999-01-01") == []
        assert len(await analytics.sessions("app")) == 3

        await append(log, S2, SessionDeleted())
        last = await purge(log, S3, SessionPurged())
        await runtime.wait_for(last, timeout=10)
        assert await analytics.by_session("app", "ann", "s2") is None  # hidden
        users = {s.user_id: s for s in await analytics.by_user("app")}
        assert set(users) == {"ann"} and users["ann"].interactions == 103  # kept in rollups
        apps = await analytics.by_app()
        assert [(a.messages, a.tokens_in) for a in apps] == [(202, 303)]  # bob forgotten
        assert (await analytics.by_day("app"))[0].response_time.max == 20.0
        assert await runtime.verify() == []
