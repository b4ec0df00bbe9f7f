"""The user index: sessions by status, totals, forgetting purged sessions, inline and catch-up."""

from __future__ import annotations

from session_store.domain.events import (
    InteractionTracked,
    SessionArchived,
    SessionCreated,
    SessionDeleted,
    SessionExpired,
    SessionKey,
    SessionPurged,
    StateChanged,
)
from tests.kit import (
    OTHER,
    S1,
    S2,
    S3,
    append,
    opened,
    purge,
    read_models,
    said,
)


async def test_user_index(store_url: str, modes: dict[str, str]) -> None:
    async with opened(store_url, modes) as (log, runtime):
        first = await append(log, S1, SessionCreated(), said("hi", tokens=(10, 0)),
                             said("yo", "assistant", tokens=(0, 20)))
        await append(log, S2, SessionCreated(), InteractionTracked(tokens_in=5, tokens_out=6))
        await append(log, S3, SessionCreated())
        await append(log, OTHER, SessionCreated(), said("elsewhere"))
        await append(log, SessionKey("app", "ann", "s3"), SessionCreated(), said("x"))
        await append(log, SessionKey("app", "ann", "s3"), SessionDeleted())
        await append(log, S2, SessionArchived())
        last = await append(log, S1, SessionExpired(), StateChanged(delta={"k": 1}))
        await runtime.wait_for(last, timeout=10)
        ann = await read_models(runtime).users.get(app_name="app", user_id="ann")
        assert ann is not None
        assert ann.sessions == {"active": 1, "archived": 1, "ended": 0, "expired": 0}
        assert ann.session_count == 2
        assert (ann.messages, ann.tokens_in, ann.tokens_out) == (3, 15, 26)  # deleted s3 too
        assert ann.first_seen <= ann.last_active
        assert first > 0
        listed = await read_models(runtime).users.list(app_name="app")
        assert [u.user_id for u in listed] == ["ann", "bob"]
        after = await read_models(runtime).users.list(app_name="app", after="ann")
        assert [u.user_id for u in after] == ["bob"]
        sessions = await read_models(runtime).users.sessions(app_name="app", user_id="ann")
        assert {(s.session_id, s.status) for s in sessions} == {("s1", "active"),
                                                                ("s2", "archived")}
        archived = await read_models(runtime).users.sessions(app_name="app", user_id="ann",
                                                status="archived")
        assert [(s.session_id, s.tokens_in, s.tokens_out) for s in archived] == [("s2", 5, 6)]
        assert await read_models(runtime).users.get(app_name="app", user_id="nobody") is None

        await purge(log, S1, SessionPurged())
        last = await purge(log, S2, SessionPurged())
        await runtime.wait_for(last, timeout=10)
        ann = await read_models(runtime).users.get(app_name="app", user_id="ann")
        assert ann is not None and ann.session_count == 0 and ann.messages == 1  # s3 remains
        last = await purge(log, S3, SessionPurged())
        await runtime.wait_for(last, timeout=10)
        forgotten = await read_models(runtime).users.get(app_name="app", user_id="bob")
        assert forgotten is None
        assert await runtime.verify() == []
