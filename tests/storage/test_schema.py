"""The log tables: created once, versioned, and append-only by the database's own rules."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from session_store.domain.events import PayloadErased, ScopePurged, SessionKey
from session_store.errors import InvalidEvent, SchemaError, StoreUnavailable
from session_store.log.eventlog import EventLog
from session_store.storage.codec import anchor_hash
from session_store.storage.schema import SCHEMA_VERSION
from session_store.store import open_store
from tests.kit import KEY, count_rows, message, opened_log, read_all, state


async def test_prepare_creates_tables_and_records_the_schema_version(store_url: str) -> None:
    async with opened_log(store_url) as log:
        async with log.db.engine.connect() as conn:
            stored = (await conn.execute(sa.text(
                "SELECT value FROM ss_meta WHERE key = 'schema_version'"))).scalar_one()
        assert int(stored) == SCHEMA_VERSION
        assert await count_rows(log) == 0 and await count_rows(log, "ss_streams") == 0


async def test_prepare_is_idempotent_and_keeps_the_data(store_url: str) -> None:
    async with opened_log(store_url) as log:
        await log.append(KEY, [state(a=1)])
        await log.prepare()
    async with opened_log(store_url) as log:
        assert len(await read_all(log)) == 1


async def test_newer_schema_is_refused(store_url: str) -> None:
    async with opened_log(store_url) as log:
        await log.append(KEY, [state(a=1)])
        async with log.db.engine.begin() as conn:
            await conn.execute(sa.text(
                "UPDATE ss_meta SET value = :v WHERE key = 'schema_version'"),
                {"v": str(SCHEMA_VERSION + 1)})
    with pytest.raises(SchemaError, match=f"schema {SCHEMA_VERSION + 1}, newer"):
        async with opened_log(store_url):
            pass


async def test_meta_without_a_version_is_refused(store_url: str) -> None:
    async with opened_log(store_url) as log, log.db.engine.begin() as conn:
        await conn.execute(sa.text("DELETE FROM ss_meta"))
    with pytest.raises(SchemaError, match="no schema_version"):
        async with opened_log(store_url):
            pass


@pytest.mark.parametrize("statement", [
    "UPDATE ss_events SET type = 'SessionDeleted'",
    "UPDATE ss_events SET data = data",
    "UPDATE ss_events SET version = version + 10",
    "DELETE FROM ss_events",
    "DELETE FROM ss_events WHERE version = 2",
])
async def test_the_database_refuses_to_change_the_log(store_url: str, statement: str) -> None:
    async with opened_log(store_url) as log:
        await log.append(KEY, [state(a=1), message("hi")])
        before = await read_all(log)
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            async with log.db.engine.begin() as conn:
                await conn.execute(sa.text(statement))
        assert await read_all(log) == before


async def test_erasing_payloads_needs_a_purge_record(store_url: str) -> None:
    """Even the purge path's shape (data set to empty) is refused without a SessionPurged."""
    async with opened_log(store_url) as log:
        await log.append(KEY, [state(a=1)])
        empty = "x''" if log.db.dialect.name == "sqlite" else "''::bytea"
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            async with log.db.engine.begin() as conn:
                await conn.execute(sa.text(f"UPDATE ss_events SET data = {empty}"))
        assert (await read_all(log))[0].data == state(a=1)


async def test_a_scope_stream_is_erased_only_once_it_records_a_scope_purge(
        store_url: str) -> None:
    """On an app or user stream the purge fact is a ScopePurged, and the audited path erases
    exactly the events it names (the fact itself stays readable)."""
    async with opened_log(store_url) as log:
        scope = SessionKey("app", "u", "")
        kept, erased = await log.append(scope, [state(**{"user:a": 1}), state(**{"user:b": 2})])
        empty = "x''" if log.db.dialect.name == "sqlite" else "''::bytea"
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            async with log.db.engine.begin() as conn:
                await conn.execute(sa.text(f"UPDATE ss_events SET data = {empty}"))
        fact = ScopePurged(event_ids=[erased.event_id], session_id="s")
        await log.commit([log.prepare_append(scope, [fact], erase=True)])
        assert [r.data for r in await read_all(log)] == [
            state(**{"user:a": 1}), PayloadErased(original_type="StateChanged"), fact]
        assert kept.version == 1


async def test_postgres_refuses_truncate(pg_url: str) -> None:
    async with opened_log(pg_url) as log:
        await log.append(KEY, [state(a=1)])
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            async with log.db.engine.begin() as conn:
                await conn.execute(sa.text("TRUNCATE ss_events"))
        assert await count_rows(log) == 1


async def test_a_read_connection_returned_uncommitted_holds_no_transaction(
        store_url: str) -> None:
    """Read connections go back to the pool without a reset rollback (SQLite): whatever a
    caller left uncommitted must still be rolled back, and appends must not wait on it."""
    async with opened_log(store_url) as log:
        await log.append(KEY, [message("kept")])
        async with log.db.engine.connect() as conn:
            await conn.execute(sa.text(
                "INSERT INTO ss_meta (key, value) VALUES ('left-open', 'x')"))
        await asyncio.wait_for(log.append(KEY, [message("after")]), timeout=5)
        async with log.db.engine.connect() as conn:
            left = (await conn.execute(sa.text(
                "SELECT count(*) FROM ss_meta WHERE key = 'left-open'"))).scalar()
        assert left == 0
        assert await count_rows(log) == 2


async def _as_schema_1(log: EventLog) -> None:
    """Turn the store back into what schema 1 wrote: no anchor column, version 1."""
    drops = ([f"DROP TRIGGER IF EXISTS {name}" for name in ("ss_events_no_update",
                                                           "ss_events_no_delete")]
             if log.db.dialect.name == "sqlite" else
             ["DROP TRIGGER IF EXISTS ss_events_no_change ON ss_events"])
    async with log.db.engine.begin() as conn:
        for statement in [*drops, "ALTER TABLE ss_events DROP COLUMN anchor",
                          "UPDATE ss_meta SET value = '1' WHERE key = 'schema_version'"]:
            await conn.execute(sa.text(statement))


@pytest.mark.parametrize("hash_key", [None, b"a key of at least sixteen bytes"])
async def test_a_schema_1_store_upgrades_in_place_and_anchors_its_events_forward(
        store_url: str, hash_key: bytes | None) -> None:
    async with open_store(store_url) as store:
        for n in range(5):
            session = await store.create_session(app_name="app", user_id="u", state={"n": n})
            await store.add_message(session, "user", f"message {n}")
        before = await read_all(store.log)
        expected, previous = [], ""
        for record in before:
            previous = anchor_hash(previous, record.position, record.hash, hash_key)
            expected.append(previous)
        await _as_schema_1(store.log)
    async with open_store(store_url, hash_key=hash_key) as store:
        assert await read_all(store.log) == before
        async with store.db.engine.connect() as conn:
            anchors = [row[0] for row in await conn.execute(sa.text(
                "SELECT anchor FROM ss_events ORDER BY position"))]
            version = (await conn.execute(sa.text(
                "SELECT value FROM ss_meta WHERE key = 'schema_version'"))).scalar_one()
        assert anchors == expected and int(version) == SCHEMA_VERSION
        assert store.log.prepared.keyed_from == (1 if hash_key else None)
        report = await store.verify()
        assert report.ok, report.problems
        assert report.digest == await store.digest() == (len(before), expected[-1])
        await store.add_message(await store.create_session(app_name="app", user_id="u"),
                                "user", "after the upgrade")
        assert (await store.verify()).ok


async def test_a_keyed_store_refuses_to_open_without_its_key_or_with_another(
        store_url: str) -> None:
    async with open_store(store_url, hash_key="the key the store was made with"):
        pass
    with pytest.raises(StoreUnavailable, match="SESSION_STORE_HASH_KEY"):
        async with open_store(store_url):
            pass
    with pytest.raises(StoreUnavailable, match="does not match"):
        async with open_store(store_url, hash_key="another key, also long enough"):
            pass
    for wrong in ("short", 12345678901234567890, ["a list of", "sixteen bytes"]):
        with pytest.raises(InvalidEvent, match="at least 16 bytes"):
            async with open_store(store_url, hash_key=wrong):
                pass
    with pytest.raises(InvalidEvent, match="lone surrogate"):
        async with open_store(store_url, hash_key="sixteen chars or more \ud800"):
            pass


async def test_keying_an_unkeyed_store_starts_at_its_next_position(store_url: str) -> None:
    async with open_store(store_url) as store:
        session = await store.create_session(app_name="app", user_id="u")
        await store.add_message(session, "user", "before the key")
        last = await store.last_position()
    async with open_store(store_url, hash_key=b"now keyed from here on, 16+") as store:
        assert store.log.prepared.keyed_from == last + 1
        await store.add_message(session, "user", "after the key")
        assert (await store.verify()).ok


async def test_the_hash_key_comes_from_the_environment_when_not_given(
        store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_STORE_HASH_KEY", "kept in the environment, not the db")
    async with open_store(store_url) as store:
        assert store.log.prepared.keyed_from == 1
        await store.create_session(app_name="app", user_id="u")
    monkeypatch.delenv("SESSION_STORE_HASH_KEY")
    with pytest.raises(StoreUnavailable, match="SESSION_STORE_HASH_KEY"):
        async with open_store(store_url):
            pass
    async with open_store(store_url, hash_key="kept in the environment, not the db") as store:
        assert (await store.verify()).ok
