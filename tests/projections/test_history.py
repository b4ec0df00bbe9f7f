"""History: visible messages, filters, search, retraction, clearing, erasure; inline, catch-up."""

from __future__ import annotations

from session_store.domain.events import (
    HistoryCleared,
    MessageRetracted,
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


async def test_history_filters_retraction_and_clearing(store_url: str,
                                                       modes: dict[str, str]) -> None:
    async with opened(store_url, modes) as (log, runtime):
        await append(log, S1, SessionCreated(), said("Hello there", timestamp=100.0),
                     said("General Kenobi", "assistant", timestamp=200.0),
                     said("oops", message_id="m-oops", timestamp=300.0),
                     said("café crème", "tool", timestamp=400.0))
        await append(log, S3, SessionCreated(), said("hello from bob"))
        last = await append(log, S1, MessageRetracted(message_id="m-oops"))
        await runtime.wait_for(last, timeout=10)
        history = read_models(runtime).history
        texts = [m.text for m in await history.messages(app_name="app", user_id="ann",
                                                        session_id="s1")]
        assert texts == ["Hello there", "General Kenobi", "café crème"]
        assistant = await history.messages(app_name="app", user_id="ann", session_id="s1",
                                           roles=["assistant"])
        assert [m.text for m in assistant] == ["General Kenobi"]
        window = await history.messages(app_name="app", user_id="ann", session_id="s1",
                                        since=150.0, until=450.0)
        assert [m.timestamp for m in window] == [200.0, 400.0]
        first = (await history.messages(app_name="app", user_id="ann", session_id="s1"))[0]
        assert (first.role, first.author, first.version) == ("user", "user", 2)

        found = await history.search("HELLO", app_name="app")
        assert {(m.user_id, m.text) for m in found} == {("ann", "Hello there"),
                                                        ("bob", "hello from bob")}
        assert [m.text for m in await history.search("hello", app_name="app",
                                                     user_id="bob")] == ["hello from bob"]
        assert [m.text for m in await history.search("cafe", app_name="app")] == ["café crème"]
        assert await history.search("oops", app_name="app") == []  # retracted
        assert await history.search("kenobi general", app_name="other") == []
        assert await history.search("  ", app_name="app") == []

        last = await append(log, S1, HistoryCleared(), said("fresh start"))
        await runtime.wait_for(last, timeout=10)
        texts = [m.text for m in await history.messages(app_name="app", user_id="ann",
                                                        session_id="s1")]
        assert texts == ["fresh start"]
        assert await history.search("kenobi", app_name="app") == []
        assert await history.count(app_name="app", user_id="bob", session_id="s1") == 1


async def test_deleted_and_purged_sessions_leave_history(store_url: str,
                                                         modes: dict[str, str]) -> None:
    async with opened(store_url, modes) as (log, runtime):
        await append(log, S1, SessionCreated(), said("secret one"))
        await append(log, S2, SessionCreated(), said("secret two"))
        await append(log, S1, SessionDeleted())
        last = await purge(log, S2, SessionPurged(reason="gdpr"))
        await runtime.wait_for(last, timeout=10)
        assert await read_models(runtime).history.search("secret", app_name="app") == []
        for key in (S1, S2):
            assert await read_models(runtime).history.messages(
                app_name=key.app_name, user_id=key.user_id, session_id=key.session_id) == []
        assert await runtime.verify() == []
