"""The audit against an attacker with raw SQL (append-only triggers dropped): every
tampering is a problem naming the damage, with and without a `rebuild` before the
audit; what only an anchor can catch is caught with a digest or a key."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from session_store.audit import Digest
from session_store.domain.events import SessionKey
from session_store.errors import InvalidEvent
from session_store.storage.codec import anchor_hash, chain_hash
from session_store.storage.database import resolve_url
from session_store.storage.postgres import Postgres
from session_store.storage.sqlite import SQLite
from session_store.store import SessionStore, open_store

KEY = b"an anchor key kept outside the database"

_DROP = {
    "sqlite": ["DROP TRIGGER IF EXISTS ss_events_no_update",
               "DROP TRIGGER IF EXISTS ss_events_no_delete"],
    "postgresql": ["DROP TRIGGER IF EXISTS ss_events_no_change ON ss_events"],
}


async def _sql(url: str, backend: str, *statements: tuple[str, dict[str, Any]] | str
               ) -> list[Any]:
    """Run statements as the attacker: triggers dropped first; returns the last one's rows."""
    engine = create_async_engine(resolve_url(url))
    rows: list[Any] = []
    try:
        async with engine.begin() as conn:
            for drop in _DROP[backend]:
                await conn.exec_driver_sql(drop)
            for statement in statements:
                text, params = (statement, {}) if isinstance(statement, str) else statement
                result = await conn.execute(sa.text(text), params)
                rows = list(result.all()) if result.returns_rows else []
    finally:
        await engine.dispose()
    return rows


async def _fill(store: SessionStore) -> list[SessionKey]:
    keys = []
    for n in range(3):
        session = await store.create_session(app_name="app", user_id=f"u{n}", state={"n": n})
        for text in ("hello", "how are you?", "fine"):
            await store.add_message(session, "user", text)
        keys.append(session.key)
    return keys


@pytest.fixture
async def filled(store_url: str) -> AsyncIterator[tuple[str, list[SessionKey]]]:
    async with open_store(store_url) as store:
        keys = await _fill(store)
        assert (await store.verify()).ok
    yield store_url, keys


async def _audit(url: str, *, rebuild: bool, digest: Digest | None = None,
                 hash_key: bytes | None = None) -> list[str]:
    async with open_store(url, hash_key=hash_key) as store:
        if rebuild:
            await store.rebuild()
        report = await store.verify(digest=digest)
    assert not report.ok
    return report.problems


def _has(problems: list[str], *words: str) -> None:
    assert any(all(word in problem for word in words) for problem in problems), problems


async def _position_of(url: str, backend: str, key: SessionKey, version: int) -> int:
    rows = await _sql(url, backend, (
        "SELECT position FROM ss_events WHERE session_id = :s AND version = :v",
        {"s": key.session_id, "v": version}))
    return int(rows[0][0])


Tampering = Callable[[str, str, list[SessionKey]], Awaitable[tuple[str, ...]]]


async def _undecodable(url: str, backend: str, keys: list[SessionKey]) -> tuple[str, ...]:
    position = await _position_of(url, backend, keys[0], 2)
    await _sql(url, backend, ("UPDATE ss_events SET data = :d WHERE position = :p",
                              {"d": b"\xff not json", "p": position}))
    return (f"position {position}", "does not decode")


async def _wrong_shape(url: str, backend: str, keys: list[SessionKey]) -> tuple[str, ...]:
    position = await _position_of(url, backend, keys[0], 2)
    data = json.dumps({"type": "MessageAppended", "message": {"role": 7}}).encode()
    await _sql(url, backend, ("UPDATE ss_events SET data = :d WHERE position = :p",
                              {"d": data, "p": position}))
    return (f"position {position}", "does not decode")


async def _swapped_positions(url: str, backend: str, keys: list[SessionKey]
                             ) -> tuple[str, ...]:
    a = await _position_of(url, backend, keys[0], 2)
    b = await _position_of(url, backend, keys[1], 2)
    await _sql(url, backend,
               ("UPDATE ss_events SET position = -1 WHERE position = :a", {"a": a}),
               ("UPDATE ss_events SET position = :a WHERE position = :b", {"a": a, "b": b}),
               ("UPDATE ss_events SET position = :b WHERE position = -1", {"b": b}))
    return (f"position {a}", "anchor")


async def _deleted_tail_of_stream(url: str, backend: str, keys: list[SessionKey]
                                  ) -> tuple[str, ...]:
    await _sql(url, backend, ("DELETE FROM ss_events WHERE session_id = :s AND version = 4",
                              {"s": keys[0].session_id}))
    return (keys[0].session_id, "ss_streams records version 4", "version 3")


async def _deleted_session(url: str, backend: str, keys: list[SessionKey]) -> tuple[str, ...]:
    await _sql(url, backend, ("DELETE FROM ss_events WHERE session_id = :s",
                              {"s": keys[1].session_id}))
    return (keys[1].session_id, "holds no event of it")


async def _erased_unpurged(url: str, backend: str, keys: list[SessionKey]) -> tuple[str, ...]:
    position = await _position_of(url, backend, keys[2], 3)
    await _sql(url, backend, ("UPDATE ss_events SET data = :d WHERE position = :p",
                              {"d": b"", "p": position}))
    return (keys[2].session_id, f"positions {position}", "no purge")


async def _stream_version(url: str, backend: str, keys: list[SessionKey]) -> tuple[str, ...]:
    await _sql(url, backend, ("UPDATE ss_streams SET version = 9 WHERE session_id = :s",
                              {"s": keys[0].session_id}))
    return (keys[0].session_id, "ss_streams records version 9")


@pytest.mark.parametrize("rebuild", [False, True], ids=["audit", "rebuild-then-audit"])
@pytest.mark.parametrize("tamper", [_undecodable, _wrong_shape, _swapped_positions,
                                    _deleted_tail_of_stream, _deleted_session,
                                    _erased_unpurged, _stream_version],
                         ids=lambda f: f.__name__.strip("_"))
async def test_each_tampering_is_a_problem_naming_it(
        filled: tuple[str, list[SessionKey]], backend: str, tamper: Tampering,
        rebuild: bool) -> None:
    url, keys = filled
    words = await tamper(url, backend, keys)
    problems = await _audit(url, rebuild=rebuild)
    _has(problems, *words)


async def test_dropped_triggers_are_reported_and_put_back_at_open(
        filled: tuple[str, list[SessionKey]], backend: str) -> None:
    url, keys = filled
    await _sql(url, backend, "SELECT 1")  # drops them and changes nothing else
    problems = await _audit(url, rebuild=False)
    _has(problems, "when the store opened", "append-only trigger", "missing")
    engine = create_async_engine(resolve_url(url))
    try:
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            async with engine.begin() as conn:
                await conn.execute(sa.text("DELETE FROM ss_events"))
    finally:
        await engine.dispose()
    async with open_store(url) as store:  # put back: the next open finds nothing wrong
        assert (await store.verify()).ok


async def _rewrite(url: str, backend: str, key: SessionKey, *, anchors: bool,
                   anchor_key: bytes | None = None) -> None:
    """The attacker edits a message, recomputes the stream's chain (and the anchors) and
    puts the triggers back."""
    rows = await _sql(url, backend, "SELECT position, app_name, user_id, session_id, version, "
                                    "type, data, event_id, recorded_at, hash, anchor "
                                    "FROM ss_events ORDER BY position")
    statements: list[tuple[str, dict[str, Any]]] = []
    previous: dict[SessionKey, str] = {}
    anchor = ""
    for position, app, user, session, version, type_name, data, event_id, at, digest, _ in rows:
        stream = SessionKey(app, user, session)
        data = bytes(data)
        if stream == key and version == 2:
            data = data.replace(b"hello", b"I never said that")
        digest = chain_hash(previous.get(stream, ""), stream, version, type_name, event_id, at,
                            data)
        previous[stream] = digest
        anchor = anchor_hash(anchor, position, digest, anchor_key)
        statements.append(("UPDATE ss_events SET data = :d, hash = :h" +
                           (", anchor = :a" if anchors else "") + " WHERE position = :p",
                           {"d": data, "h": digest, "a": anchor, "p": position}))
        statements.append(("UPDATE ss_streams SET hash = :h WHERE app_name = :a1 AND "
                           "user_id = :u AND session_id = :s",
                           {"h": digest, "a1": app, "u": user, "s": session}))
    dialect = SQLite() if backend == "sqlite" else Postgres()
    await _sql(url, backend, *statements, *dialect.triggers)


@pytest.mark.parametrize("rebuild", [False, True], ids=["audit", "rebuild-then-audit"])
async def test_a_recomputed_chain_breaks_the_anchors(
        filled: tuple[str, list[SessionKey]], backend: str, rebuild: bool) -> None:
    url, keys = filled
    await _rewrite(url, backend, keys[0], anchors=False)
    _has(await _audit(url, rebuild=rebuild), keys[0].session_id, "anchor does not seal")


async def test_recomputed_anchors_are_caught_by_a_digest(
        filled: tuple[str, list[SessionKey]], backend: str) -> None:
    url, keys = filled
    async with open_store(url) as store:
        digest = await store.digest()
        report = await store.verify(digest=str(digest))
        assert report.ok and report.digest == digest
    await _rewrite(url, backend, keys[0], anchors=True)
    async with open_store(url) as store:
        await store.rebuild()  # the read models agree with the edit again
        assert (await store.verify()).ok  # unkeyed: recomputable, only the digest knows
    _has(await _audit(url, rebuild=False, digest=digest), "no longer extends digest")


async def test_a_removed_tail_is_caught_by_a_digest(
        filled: tuple[str, list[SessionKey]], backend: str) -> None:
    url, keys = filled
    async with open_store(url) as store:
        digest = await store.digest()
    last = keys[2]
    await _sql(url, backend, ("DELETE FROM ss_events WHERE session_id = :s",
                              {"s": last.session_id}),
               ("DELETE FROM ss_streams WHERE session_id = :s", {"s": last.session_id}))
    async with open_store(url) as store:
        await store.rebuild()
    _has(await _audit(url, rebuild=False, digest=digest), "before digest",
         "removed from its end")


async def test_a_keyed_log_cannot_be_re_anchored_without_the_key(
        store_url: str, backend: str) -> None:
    async with open_store(store_url, hash_key=KEY) as store:
        keys = await _fill(store)
        assert (await store.verify()).ok
    await _rewrite(store_url, backend, keys[0], anchors=True)  # anchors recomputed, no key
    _has(await _audit(store_url, rebuild=True, hash_key=KEY), "anchor does not seal")


async def test_an_undecodable_event_is_set_aside_and_the_read_models_go_on(
        filled: tuple[str, list[SessionKey]], backend: str) -> None:
    url, keys = filled
    words = await _undecodable(url, backend, keys)
    position = int(words[0].split()[1])
    async with open_store(url) as store:
        report = await store.rebuild()
        assert {q.position for q in report.quarantined} == {position}
        health = await store.health()
        assert {(q.projection, q.position) for q in health.quarantined} >= {
            ("history", position), ("heads", position)}
        other = await store.create_session(app_name="other", user_id="u")
        await store.add_message(other, "user", "still folded")
        await store.wait_for(await store.last_position(), 30)
        found = await store.history.search("folded", app_name="other")
        assert [m.text for m in found] == ["still folded"]
        problems = (await store.verify()).problems
        _has(problems, f"position {position}", "does not decode")
        _has(problems, "quarantined", str(position))


_WEAKENED = {
    "sqlite": ["DROP TRIGGER ss_events_no_delete",
               "CREATE TRIGGER ss_events_no_delete BEFORE DELETE ON ss_events "
               "WHEN 0 BEGIN SELECT RAISE(ABORT, 'ss_events is append-only'); END",
               "CREATE TRIGGER ss_events_spy AFTER INSERT ON ss_events BEGIN SELECT 1; END"],
    "postgresql": ["ALTER TABLE ss_events DISABLE TRIGGER ss_events_no_change",
                   "CREATE FUNCTION ss_spy() RETURNS trigger LANGUAGE plpgsql AS "
                   "$$ BEGIN RETURN NEW; END $$",
                   "CREATE TRIGGER ss_events_spy AFTER INSERT ON ss_events "
                   "FOR EACH ROW EXECUTE FUNCTION ss_spy()"],
}


async def test_weakened_triggers_and_a_foreign_one_are_found_and_put_right(
        filled: tuple[str, list[SessionKey]], backend: str) -> None:
    url, _ = filled
    engine = create_async_engine(resolve_url(url))
    try:
        async with engine.begin() as conn:
            for statement in _WEAKENED[backend]:
                await conn.exec_driver_sql(statement)
    finally:
        await engine.dispose()
    problems = await _audit(url, rebuild=False)
    weakened = "ss_events_no_delete was altered" if backend == "sqlite" else \
        "ss_events_no_change is disabled"
    _has(problems, "when the store opened", weakened)
    _has(problems, "unexpected trigger ss_events_spy")
    async with open_store(url) as store:  # its own triggers whole again, the foreign one kept
        problems = (await store.verify()).problems
    assert problems == ["unexpected trigger ss_events_spy on ss_events"], problems


async def test_a_digest_round_trips_from_an_empty_log_on_and_bad_ones_are_refused(
        store_url: str) -> None:
    async with open_store(store_url) as store:
        empty = await store.digest()
        assert str(empty) == "0:" and Digest.parse(str(empty)) == empty
        assert (await store.verify(digest=str(empty))).ok
        await _fill(store)
        assert (await store.verify(digest=str(empty))).ok  # the log extends the empty one
        digest = await store.digest()
        assert Digest.parse(f"  {digest}\n") == digest
        for bad in ("0:" + "a" * 64, f"{digest.position}:", "12:abc", f"-1:{'a' * 64}",
                    f"{digest.position}:{digest.anchor.upper()}", "", 7):
            with pytest.raises(InvalidEvent, match="not a log digest"):
                await store.verify(digest=bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidEvent, match="whole log"):
            await store.verify((await store.list_sessions(app_name="app")).sessions[0],
                               digest=digest)
