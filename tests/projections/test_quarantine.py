"""No event can stop a read model: an event a projection cannot fold (written by a version
without the number limits) is quarantined for that projection, and the read models go on;
`health()`, `verify()` and `audit` name it, a rebuild keeps it quarantined, a database
error is retried (and shown), never quarantined. Every wait is bounded: where the
follower used to fail forever, these tests fail with a timeout instead of hanging."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from projections.health import Health
from projections.protocol import Projection
from projections.quarantine import is_systemic
from session_store import Event, SyncSessionStore, Usage
from session_store.domain.events import (
    InteractionTracked,
    MessageAppended,
    Payload,
    RecordedEvent,
    SessionKey,
)
from session_store.domain.ids import new_id
from session_store.log.batching import Append
from session_store.log.eventlog import EventLog
from session_store.storage.codec import encode_payload
from session_store.storage.database import resolve_url
from session_store.store import SessionStore, open_store
from tests.kit import cli, ok_json

T = TypeVar("T")
WAIT = 30.0
TOO_MANY_TOKENS = InteractionTracked(tokens_in=2**63, model="old")
TOO_SLOW = MessageAppended(message=Event(role="assistant", text="slow", response_time=1e13))


async def bounded(awaitable: Awaitable[T]) -> T:
    """What used to hang forever fails the test with a timeout instead."""
    return await asyncio.wait_for(awaitable, WAIT)


async def as_an_old_version(log: EventLog, key: SessionKey, payload: Payload) -> int:
    """Append `payload` the way a version without the number limits did: encoded as is,
    past the log's checks; returns its position."""
    append = Append(key=key, payloads=(payload,), encoded=(encode_payload(payload),),
                    event_ids=(new_id(),))
    return (await log.commit([append]))[-1].position


async def until(check: Callable[[Health], bool], store: SessionStore) -> Health:
    async def poll() -> Health:
        while not check(health := await store.health()):
            await asyncio.sleep(0.05)
        return health

    return await bounded(poll())


async def poisoned_store(store: SessionStore) -> tuple[SessionKey, int, int, SessionKey]:
    """Two poison events in app 'a', then ordinary events in apps 'a' and 'b'."""
    a = await store.create_session(app_name="a", user_id="ann", session_id="s")
    tokens = await as_an_old_version(store.log, a.key, TOO_MANY_TOKENS)
    slow = await as_an_old_version(store.log, a.key, TOO_SLOW)
    await store.add_message(a, "user", "after the poison", usage=Usage(tokens_in=5))
    b = await store.create_session(app_name="b", user_id="bob", session_id="t")
    await store.add_message(b, "user", "another app", usage=Usage(tokens_in=7))
    return a.key, tokens, slow, b.key


async def test_a_poison_event_is_quarantined_and_the_read_models_go_on(store: SessionStore
                                                                      ) -> None:
    a, tokens, slow, b = await poisoned_store(store)
    last = await store.last_position()
    await bounded(store.wait_for(last))
    # Every read model answers, for the other app and for the poisoned session's app.
    bob = await bounded(store.users.get(app_name="b", user_id="bob"))
    assert bob is not None and bob.messages == 1 and bob.tokens_in == 7
    ann = await bounded(store.users.get(app_name="a", user_id="ann"))
    assert ann is not None and ann.messages == 2 and ann.tokens_in == 5  # poison left out
    texts = [m.text for m in await bounded(store.history.messages(
        app_name="a", user_id="ann", session_id="s"))]
    assert texts == ["slow", "after the poison"]  # history can fold the slow message
    stats = await bounded(store.analytics.by_session("b", "bob", "t"))
    assert stats is not None and stats.tokens_in == 7

    health = await store.health()
    assert health.last_position == last and health.error is None and not health.ok
    for name in ("heads", "history", "users", "analytics"):
        assert health.projections[name].checkpoint == last
        assert health.projections[name].lag == 0
    found = {(q.projection, q.position, q.type) for q in health.quarantined}
    assert found == {("users", tokens, "InteractionTracked"),
                     ("analytics", tokens, "InteractionTracked"),
                     ("analytics", slow, "MessageAppended")}
    assert all("range" in q.error or "too large" in q.error for q in health.quarantined)

    report = await bounded(store.verify())
    assert len(report.problems) == 3, report.problems  # one per quarantined event, no other
    assert any(p.startswith(f"users: the event at position {tokens} ") for p in report.problems)
    # The log keeps the event untouched.
    kept = [r async for r in store.read_all(from_position=tokens, limit=1)]
    assert isinstance(kept[0].data, InteractionTracked) and kept[0].data.tokens_in == 2**63


async def test_audit_exits_1_naming_it_and_rebuild_keeps_it_quarantined(store_url: str
                                                                       ) -> None:
    async with open_store(store_url) as store:
        _, tokens, slow, _ = await poisoned_store(store)
        await bounded(store.wait_for(await store.last_position()))
    audit = cli("audit", "--json", db=store_url)
    assert audit.returncode == 1, (audit.stdout, audit.stderr)
    problems = " ".join(json.loads(audit.stdout)["problems"])
    assert f"users: the event at position {tokens} (InteractionTracked) is quarantined" in problems
    assert f"analytics: the event at position {slow} (MessageAppended)" in problems
    rebuilt = ok_json("rebuild", db=store_url)
    assert len(rebuilt["quarantined"]) == 3, rebuilt
    assert cli("audit", db=store_url).returncode == 1
    async with open_store(store_url) as store:
        health = await store.health()
        assert {(q.projection, q.position) for q in health.quarantined} == {
            ("users", tokens), ("analytics", tokens), ("analytics", slow)}
        retried = await bounded(store.retry_quarantined())
        assert retried is not None and set(retried.names) == {"users", "analytics"}
        assert len(retried.quarantined) == 3  # nothing was fixed: still set aside


async def test_after_a_restart_the_follower_is_not_stuck(store_url: str) -> None:
    async with open_store(store_url) as store:
        assert store.projections.follower is not None
        await store.projections.follower.stop()  # an old version wrote while nobody folded
        _, tokens, _, b = await poisoned_store(store)
    for turn in range(2):
        async with open_store(store_url) as store:
            await store.add_message(b, "user", f"after restart {turn}")
            await bounded(store.wait_for(await store.last_position()))
            bob = await bounded(store.users.get(app_name="b", user_id="bob"))
            assert bob is not None and bob.messages == 2 + turn
            health = await store.health()
            assert health.error is None
            assert {q.position for q in health.projections["users"].quarantined} == {tokens}
            assert all(p.lag == 0 for p in health.projections.values())


async def test_a_store_opened_in_either_mode_folds_past_an_old_poison_event(
        store_url: str, modes: dict[str, str]) -> None:
    async with open_store(store_url) as store:  # catch-up, the follower stopped
        assert store.projections.follower is not None
        await store.projections.follower.stop()
        _, tokens, _, _ = await poisoned_store(store)
    async with open_store(store_url, projections=modes) as store:
        b = ("b", "bob", "t")
        await store.add_message(b, "user", "later")
        bob = await bounded(store.users.get(app_name="b", user_id="bob"))
        assert bob is not None and bob.messages == 2
        health = await store.health()
        assert {q.position for q in health.projections["users"].quarantined} == {tokens}
        assert health.projections["users"].mode == modes["users"]
        report = await bounded(store.verify())
        assert len(report.problems) == 3, report.problems


class Picky(Projection):
    """A read model of the test's own that cannot fold a message saying 'poison' until it
    is fixed: what an operator's new code or upcaster does."""

    name = "picky"
    version = 1
    fixed = False

    def __init__(self, suffix: str = "") -> None:
        self.table = sa.Table(f"test_picky{suffix}", sa.MetaData(),
                              sa.Column("position", sa.BigInteger, primary_key=True))

    def tables(self) -> Sequence[sa.Table]:
        return (self.table,)

    def for_rebuild(self, suffix: str) -> Picky:
        return Picky(suffix)

    def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        for event in events:
            if isinstance(event.data, MessageAppended):
                if event.data.message.text == "poison" and not Picky.fixed:
                    raise ValueError("cannot fold a poison message")
                conn.execute(self.table.insert().values(position=event.position))


async def test_after_a_fix_retry_quarantined_folds_the_event_in_its_place(store_url: str
                                                                         ) -> None:
    Picky.fixed = False
    try:
        async with open_store(store_url, extra_projections=[Picky()]) as store:
            session = await store.create_session(app_name="a", user_id="ann")
            first = (await store.add_message(session, "user", "fine")).position
            poison = (await store.add_message(session, "user", "poison")).position
            after = (await store.add_message(session, "user", "fine again")).position
            await bounded(store.wait_for(after))
            health = await store.health()
            assert [(q.projection, q.position) for q in health.quarantined] == [
                ("picky", poison)]
            assert "ValueError: cannot fold a poison message" in health.quarantined[0].error
            assert await folded(store) == [first, after]
            Picky.fixed = True
            report = await bounded(store.retry_quarantined())
            assert report is not None and report.names == ("picky",)
            assert report.quarantined == ()
            assert await folded(store) == [first, poison, after]
            assert (await store.health()).ok
            assert (await bounded(store.verify())).ok
            assert await store.retry_quarantined() is None
    finally:
        Picky.fixed = False


async def folded(store: SessionStore) -> list[int]:
    async with store.db.engine.connect() as conn:
        return list((await conn.execute(sa.text(
            "SELECT position FROM test_picky ORDER BY position"))).scalars())


async def _execute(url: str, statement: str) -> None:
    engine = create_async_engine(resolve_url(url))
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(statement))
    finally:
        await engine.dispose()


async def test_a_database_error_is_retried_shown_by_health_and_quarantines_nothing(
        store_url: str) -> None:
    async with open_store(store_url) as store:
        session = await store.create_session(app_name="a", user_id="ann")
        await bounded(store.wait_for(await store.last_position()))
        await _execute(store_url, "ALTER TABLE ss_user_sessions RENAME TO ss_away")
        await store.add_message(session, "user", "while the table is away")
        failing = await until(lambda h: h.error is not None and h.failures >= 2, store)
        assert "ss_user_sessions" in (failing.error or "")
        assert failing.error_at is not None and failing.projections["users"].lag > 0
        assert failing.quarantined == []
        await _execute(store_url, "ALTER TABLE ss_away RENAME TO ss_user_sessions")
        healed = await until(lambda h: h.error is None and h.projections["users"].lag == 0,
                             store)
        assert healed.ok and healed.failures == 0
        user = await bounded(store.users.get(app_name="a", user_id="ann"))
        assert user is not None and user.messages == 1


@pytest.mark.parametrize(("error", "systemic"), [
    (OverflowError("Python int too large to convert to SQLite INTEGER"), False),
    (ValueError("cannot fold"), False),
    (ConnectionResetError("connection reset"), True),
    (TimeoutError(), True),
    (sa.exc.OperationalError("SELECT 1", {}, Exception("database is locked")), True),
])
def test_what_counts_as_the_database_s_fault(error: BaseException, systemic: bool) -> None:
    assert is_systemic(error) is systemic


def test_the_blocking_store_passes_health_and_retry_through(sqlite_url: str) -> None:
    with SyncSessionStore(sqlite_url) as store:
        session = store.create_session(app_name="a", user_id="ann")
        store.add_message(session, "user", "hi")
        health = store.health()
        assert health.ok and health.last_position == 2
        assert set(health.projections) == {"heads", "history", "users", "analytics",
                                          "retention"}
        assert store.retry_quarantined() is None
