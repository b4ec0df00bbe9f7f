"""Retention: policies as events, enforcement against a fake clock, cleanup, maintenance.

Every case runs on SQLite and PostgreSQL. Which sessions are due is computed here from
the sessions' own `last_update_time` and the clock handed to `enforce_retention`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import Any

import pytest
import structlog

from session_store import (
    Event,
    InvalidEvent,
    RetentionPolicy,
    SessionKey,
    open_store,
    retention,
)
from session_store.domain.events import HistoryTrimmed, RetentionSet
from session_store.maintenance import Maintenance
from session_store.store import SessionStore

APP = "ret"
DAY = 86_400.0


async def _sessions(store: SessionStore, count: int, app: str = APP) -> list[SessionKey]:
    keys = []
    for i in range(count):
        session = await store.create_session(app_name=app, user_id=f"u{i % 2}",
                                             session_id=f"s{i}")
        await store.add_message(session, "user", f"hello {i}")
        keys.append(session.key)
    return keys


async def _last_update(store: SessionStore, key: SessionKey) -> float:
    session = await store.get_session(app_name=key.app_name, user_id=key.user_id,
                                      session_id=key.session_id)
    assert session is not None
    return session.last_update_time


async def _read(store: SessionStore, key: SessionKey) -> list[Any]:
    return [record async for record in store.read_stream(key)]


async def _status(store: SessionStore, key: SessionKey) -> str | None:
    session = await store.get_session(app_name=key.app_name, user_id=key.user_id,
                                      session_id=key.session_id)
    return None if session is None else session.status


async def test_a_policy_is_an_event_of_the_app_scope_stream(store: SessionStore) -> None:
    assert await store.get_retention(app_name=APP) is None
    policy = RetentionPolicy(archive_after=timedelta(days=30), delete_after=90 * DAY,
                             max_messages=1000)
    await store.set_retention(app_name=APP, policy=policy)
    assert await store.get_retention(app_name=APP) == policy
    assert policy.archive_after == 30 * DAY  # a timedelta reads back as seconds
    assert await store.get_retention(app_name="other") is None

    await store.set_retention(app_name=APP, policy=RetentionPolicy(purge_after=1.5))
    assert await store.get_retention(app_name=APP) == RetentionPolicy(purge_after=1.5)
    await store.set_retention(app_name=APP, policy=None)  # no policy any more
    assert await store.get_retention(app_name=APP) is None

    recorded = [r.data async for r in store.read_all(app_name=APP, types=["RetentionSet"])]
    assert recorded == [policy.payload(), RetentionSet(purge_after=1.5), RetentionSet()]
    assert (await store.verify()).ok  # the retention index matches a fresh fold
    await store.rebuild(["retention"])
    assert await store.get_retention(app_name=APP) is None


@pytest.mark.parametrize("bad", [
    {"archive_after": 0}, {"delete_after": -1.0}, {"purge_after": float("nan")},
    {"archive_after": "30d"}, {"delete_after": True}, {"purge_after": 1e12},
    {"max_messages": 0}, {"max_messages": 1.5}, {"max_messages": True},
    {"max_messages": 2**63},
])
def test_a_policy_refuses_what_it_cannot_mean(bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidEvent):
        RetentionPolicy(**bad)


async def test_retention_commands_refuse_wrong_input(store: SessionStore) -> None:
    with pytest.raises(InvalidEvent):
        await store.set_retention(app_name=APP, policy={"archive_after": 1})  # type: ignore
    for app in ("", "a\x00b", 7):
        with pytest.raises(InvalidEvent):
            await store.set_retention(app_name=app, policy=None)  # type: ignore[arg-type]
        with pytest.raises(InvalidEvent):
            await store.get_retention(app_name=app)  # type: ignore[arg-type]
    for now in ("soon", -1, float("inf"), True):
        with pytest.raises(InvalidEvent):
            await store.enforce_retention(now=now)  # type: ignore[arg-type]
    with pytest.raises(InvalidEvent):
        await store.cleanup(inactive_for=0)
    assert await store.count_events() == 0  # nothing half-written


async def test_enforce_retention_archives_deletes_and_purges_by_the_clock(
        store: SessionStore) -> None:
    keys = await _sessions(store, 4)
    ended = keys[3]
    await store.end_session(ended)
    untouched = (await _sessions(store, 1, app="no-policy"))[0]
    policy = RetentionPolicy(archive_after=10 * DAY, delete_after=100 * DAY,
                             purge_after=200 * DAY)
    await store.set_retention(app_name=APP, policy=policy)
    updates = [await _last_update(store, key) for key in keys]

    # Halfway between the last activity of s1 and s2: s0 and s1 are idle ten days.
    cut = (updates[1] + updates[2]) / 2
    report = await store.enforce_retention(now=cut + 10 * DAY)
    assert set(report.archived) == {keys[0], keys[1]}
    assert report.counts == {"archived": 2, "deleted": 0, "purged": 0, "trimmed": 0}
    assert [await _status(store, key) for key in keys] == [
        "archived", "archived", "active", "ended"]
    again = await store.enforce_retention(now=cut + 10 * DAY)
    assert again.total == 0  # idempotent

    # A hundred days after all of them: every session is deleted, ended ones too.
    later = max(updates) + 100 * DAY + 1
    report = await store.enforce_retention(app_name=APP, now=later)
    assert set(report.deleted) == set(keys)
    assert report.archived == () and report.purged == ()  # deleted 100 days "ago" only
    assert [await _status(store, key) for key in keys] == [None] * 4
    assert (await store.enforce_retention(now=later)).total == 0

    # Purged 200 days after the delete (the delete happened now, on the real clock).
    deleted_at = time.time()
    assert (await store.enforce_retention(now=deleted_at + 199 * DAY)).purged == ()
    report = await store.enforce_retention(now=deleted_at + 201 * DAY)
    assert set(report.purged) == set(keys)
    for key in keys:
        assert (await _read(store, key))[-1].type == "SessionPurged"
    assert (await store.enforce_retention(now=deleted_at + 201 * DAY)).total == 0

    assert await _status(store, untouched) == "active"  # its app has no policy
    audit = await store.verify()
    assert audit.ok, audit.problems


async def test_activity_after_the_index_saw_a_session_keeps_it(store: SessionStore) -> None:
    keys = await _sessions(store, 2)
    await store.set_retention(app_name=APP, policy=RetentionPolicy(archive_after=DAY))
    await store.add_message(keys[0], "user", "still here")  # s0 is now the most recent
    cut = (await _last_update(store, keys[1]) + await _last_update(store, keys[0])) / 2
    report = await store.enforce_retention(now=time.time() + DAY / 2)
    assert report.total == 0
    now = cut + DAY
    report = await store.enforce_retention(now=now)
    assert report.archived == (keys[1],)
    # Appending to an archived session keeps it archived; reactivating makes it active.
    await store.reactivate_session(keys[1])
    assert (await store.enforce_retention(now=now)).total == 0  # active again just now


async def test_max_messages_hides_the_oldest_and_the_log_keeps_them(
        store: SessionStore) -> None:
    session = await store.create_session(app_name=APP, user_id="u", session_id="long")
    short = await store.create_session(app_name=APP, user_id="u", session_id="short")
    for i in range(6):
        await store.append_event(session, Event(role="user", text=f"m{i}", id=f"m{i}"))
    await store.retract_message(session, "m5")
    for i in range(3):
        await store.add_message(short, "user", f"s{i}")
    await store.set_retention(app_name=APP, policy=RetentionPolicy(max_messages=3))

    report = await store.enforce_retention()
    assert report.trimmed == (session.key,)
    assert (await store.enforce_retention()).total == 0  # idempotent

    async def visible() -> list[str | None]:
        found = await store.get_session(app_name=APP, user_id="u", session_id="long")
        assert found is not None
        return [m.text for m in found.messages]

    assert await visible() == ["m2", "m3", "m4"]
    history = await store.history.messages(app_name=APP, user_id="u", session_id="long")
    assert [m.text for m in history] == ["m2", "m3", "m4"]
    assert [m.text for m in (await store.replay(session)).messages] == ["m2", "m3", "m4"]
    trims = [r.data for r in await _read(store, session.key) if r.type == "HistoryTrimmed"]
    assert trims == [HistoryTrimmed(through_version=3, kept=3)]  # m0 and m1 at versions 2, 3
    assert len([r for r in await _read(store, session.key)
                if r.type == "MessageAppended"]) == 6  # the log keeps them
    found = await store.get_session(app_name=APP, user_id="u", session_id="short")
    assert found is not None and len(found.messages) == 3

    await store.add_message(session, "assistant", "m6")
    assert (await store.enforce_retention()).trimmed == (session.key,)
    assert await visible() == ["m3", "m4", "m6"]
    stats = await store.analytics.by_session(APP, "u", "long")
    # trimmed messages happened: analytics keep them (the retracted one no longer counts)
    assert stats is not None and stats.messages == 6
    report_ = await store.verify()
    assert report_.ok, report_.problems
    await store.rebuild()
    assert await visible() == ["m3", "m4", "m6"]
    assert (await store.enforce_retention()).total == 0


async def test_cleanup_maps_the_langswarm_helpers(store: SessionStore) -> None:
    keys = await _sessions(store, 3)
    await store.archive_session(keys[0])
    last = max([await _last_update(store, key) for key in keys])
    await store.set_retention(app_name=APP, policy=RetentionPolicy(archive_after=1.0))

    # cleanup_archived_sessions(days=90): archived ones idle 90 days are deleted.
    report = await store.cleanup(archived_for=timedelta(days=90), now=last + 91 * DAY)
    assert report.deleted == (keys[0],) and report.archived == ()
    # cleanup_inactive_sessions(days=30): the others are archived, whatever the policy.
    report = await store.cleanup(app_name=APP, inactive_for=30 * DAY, now=last + 31 * DAY)
    assert set(report.archived) == {keys[1], keys[2]}
    # cleanup_deleted_sessions(days=365): purged a year after their delete.
    report = await store.cleanup(deleted_for=365 * DAY, now=time.time() + 366 * DAY)
    assert report.purged == (keys[0],)
    assert (await store.cleanup(inactive_for=1, archived_for=1, deleted_for=1,
                                now=last)).total == 0
    assert (await store.cleanup()).total == 0  # no rule: nothing to do


async def test_the_background_task_enforces_and_stops_on_close(store_url: str) -> None:
    async with open_store(store_url, maintenance_interval=0.05) as store:
        assert store.maintenance is not None
        await store.set_retention(app_name=APP, policy=RetentionPolicy(archive_after=0.01))
        key = (await _sessions(store, 1))[0]
        for _ in range(1200):  # up to a minute on a loaded machine
            # (a run counts once enforce_retention returns, a moment after its archive)
            if await _status(store, key) == "archived" and store.maintenance.runs >= 1:
                break
            await asyncio.sleep(0.05)
        assert await _status(store, key) == "archived"
        assert store.maintenance.runs >= 1 and store.maintenance.failures == 0
        task = store.maintenance
    assert task._task is None  # stopped by close
    with pytest.raises(InvalidEvent):
        await open_store(store_url, maintenance_interval=0)


async def test_a_failing_maintenance_run_is_logged_not_raised(
        caplog: pytest.LogCaptureFixture) -> None:
    calls = 0

    async def broken() -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("disk on fire")

    structlog.reset_defaults()  # an in-process CLI test may have configured it: logging then
    maintenance = Maintenance(broken, 0.01)
    with caplog.at_level(logging.ERROR, logger="session_store"):
        maintenance.start()
        for _ in range(6000):  # up to a minute on a loaded machine
            if maintenance.failures >= 2:
                break
            await asyncio.sleep(0.01)
        await maintenance.stop()
    assert maintenance.failures >= 2 and maintenance.runs == 0 and calls >= 2
    assert isinstance(maintenance.last_error, RuntimeError)
    assert "maintenance.failed" in caplog.text and "disk on fire" in caplog.text


async def test_candidates_are_read_a_batch_at_a_time(store: SessionStore,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retention, "BATCH", 2)  # five sessions: three rounds each
    keys = await _sessions(store, 5)
    for key in keys:
        await store.add_message(key, "assistant", "one more")
    await store.set_retention(app_name=APP, policy=RetentionPolicy(archive_after=DAY,
                                                                  max_messages=1))
    report = await store.enforce_retention(now=time.time() + 2 * DAY)
    assert sorted(report.archived) == sorted(keys) and sorted(report.trimmed) == sorted(keys)
    for key in keys:
        found = await store.get_session(app_name=APP, user_id=key.user_id,
                                        session_id=key.session_id)
        assert found is not None and [m.text for m in found.messages] == ["one more"]
    assert (await store.enforce_retention(now=time.time() + 2 * DAY)).total == 0
