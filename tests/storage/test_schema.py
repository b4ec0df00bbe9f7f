"""The log tables: created once, versioned, and append-only by the database's own rules."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from session_store.domain.events import PayloadErased, ScopePurged, SessionKey
from session_store.errors import SchemaError
from session_store.storage.schema import SCHEMA_VERSION
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
