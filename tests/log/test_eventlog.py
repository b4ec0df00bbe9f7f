"""Appending to and reading from the log, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import math
import tracemalloc
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from session_store.domain.events import (
    Event,
    InteractionTracked,
    MessageAppended,
    MetadataChanged,
    RecordedEvent,
    SessionCreated,
    SessionKey,
    StateChanged,
    Usage,
)
from session_store.domain.validation import MAX_ID_BYTES
from session_store.errors import ConcurrencyError, InvalidEvent, StoreUnavailable
from session_store.log import ANY, NO_STREAM
from session_store.log.eventlog import READ_BATCH, EventLog
from session_store.storage.codec import chain_hash, encode_payload
from session_store.storage.database import connect
from tests.kit import KEY, count_rows, message, opened_log, read_all, read_stream, state


@pytest.fixture
async def log(store_url: str) -> AsyncIterator[EventLog]:
    async with opened_log(store_url) as opened:
        yield opened


# --- append and read ---------------------------------------------------------------


async def test_append_and_read_round_trip(log: EventLog) -> None:
    created = SessionCreated(state={"a": 1}, metadata={"m": "x"}, tags=["t"], timeout=30.0)
    said = MessageAppended(message=Event(role="user", text="héllo ✓", usage=Usage(tokens_in=2)))
    recorded = await log.append(KEY, [created, said])
    assert [r.version for r in recorded] == [1, 2]
    assert [r.type for r in recorded] == ["SessionCreated", "MessageAppended"]
    assert recorded[0].position < recorded[1].position
    assert recorded[0].key == KEY and all(r.hash and r.event_id for r in recorded)
    assert await read_stream(log, KEY) == recorded
    assert await read_all(log) == recorded
    assert await log.stream_version(KEY) == 2
    assert await log.last_position() == recorded[-1].position


async def test_streams_are_scoped_by_app_user_and_session(log: EventLog) -> None:
    keys = [SessionKey("app", "u1", "s"), SessionKey("app", "u2", "s"),
            SessionKey("other", "u1", "s")]
    for index, key in enumerate(keys):
        await log.append(key, [state(i=index)] * (index + 1))
    for index, key in enumerate(keys):
        records = await read_stream(log, key)
        assert [r.version for r in records] == list(range(1, index + 2))
        assert all(r.key == key for r in records)
    assert await log.stream_version(SessionKey("app", "u3", "s")) == 0


async def test_read_stream_version_range(log: EventLog) -> None:
    await log.append(KEY, [state(i=i) for i in range(10)])
    got = await read_stream(log, KEY, from_version=3, to_version=5)
    assert [r.version for r in got] == [3, 4, 5]
    assert [r.data.delta["i"] for r in got] == [2, 3, 4]  # type: ignore[union-attr]


async def test_read_all_from_position_limit_and_filters(log: EventLog) -> None:
    other = SessionKey("app2", "u", "s")
    for i in range(6):
        await log.append(KEY if i % 2 else other, [state(i=i)])
    everything = await read_all(log)
    assert [r.position for r in everything] == sorted(r.position for r in everything)
    middle = everything[2].position
    assert await read_all(log, from_position=middle) == everything[2:]
    assert await read_all(log, from_position=middle, limit=2) == everything[2:4]
    assert await read_all(log, app_name="app2") == [r for r in everything if r.key == other]
    assert await read_all(log, types=["MetadataChanged"]) == []
    assert await read_all(log, from_position=everything[-1].position + 1) == []


# --- expected_version --------------------------------------------------------------


async def test_expected_version_no_stream(log: EventLog) -> None:
    await log.append(KEY, [state(a=1)], expected_version=NO_STREAM)
    with pytest.raises(ConcurrencyError):
        await log.append(KEY, [state(a=2)], expected_version=NO_STREAM)
    assert await log.stream_version(KEY) == 1


async def test_expected_version_exact(log: EventLog) -> None:
    await log.append(KEY, [state(a=1), state(a=2)])
    recorded = await log.append(KEY, [state(a=3)], expected_version=2)
    assert recorded[0].version == 3
    with pytest.raises(ConcurrencyError):
        await log.append(KEY, [state(a=4)], expected_version=2)
    with pytest.raises(ConcurrencyError):
        await log.append(KEY, [state(a=4)], expected_version=7)  # ahead of the stream
    assert await log.stream_version(KEY) == 3


async def test_expected_version_any(log: EventLog) -> None:
    for i in range(3):
        await log.append(KEY, [state(i=i)], expected_version=ANY)
    assert await log.stream_version(KEY) == 3


async def test_concurrency_error_names_expected_and_actual(log: EventLog) -> None:
    await log.append(KEY, [state(i=i) for i in range(5)])
    with pytest.raises(ConcurrencyError) as caught:
        await log.append(KEY, [state(x=1)], expected_version=3)
    message_text = str(caught.value)
    assert "expected version 3" in message_text and "at 5" in message_text
    assert "s1" in message_text
    assert caught.value.expected == 3 and caught.value.actual == 5
    assert await count_rows(log) == 5


@pytest.mark.parametrize("bad", [-1, 1.0, "1", True])
async def test_expected_version_must_be_a_non_negative_int(log: EventLog, bad: Any) -> None:
    with pytest.raises(InvalidEvent, match="expected_version"):
        await log.append(KEY, [state(a=1)], expected_version=bad)


# --- idempotency -------------------------------------------------------------------


async def test_resending_stored_event_ids_returns_the_stored_records(log: EventLog) -> None:
    first = await log.append(KEY, [state(a=1), state(a=2)], event_ids=["e-1", "e-2"],
                             expected_version=NO_STREAM)
    await log.append(KEY, [state(a=3)])
    rows, last = await count_rows(log), await log.last_position()
    # The retry of a request whose response was lost: same ids, now-stale expected version.
    again = await log.append(KEY, [state(a=1), state(a=2)], event_ids=["e-1", "e-2"],
                             expected_version=NO_STREAM)
    assert again == first
    assert await count_rows(log) == rows and await log.last_position() == last
    assert await log.stream_version(KEY) == 3


async def test_partial_resend_is_refused_and_writes_nothing(log: EventLog) -> None:
    await log.append(KEY, [state(a=1)], event_ids=["e-1"])
    with pytest.raises(InvalidEvent, match="idempotent only as a whole"):
        await log.append(KEY, [state(a=1), state(a=2)], event_ids=["e-1", "e-new"])
    assert await count_rows(log) == 1
    assert await read_all(log, from_position=0) == await read_stream(log, KEY)


async def test_event_id_stored_in_another_session_is_refused(log: EventLog) -> None:
    await log.append(KEY, [state(a=1)], event_ids=["e-1"])
    with pytest.raises(InvalidEvent, match="another session"):
        await log.append(SessionKey("app", "user", "s2"), [state(a=1)], event_ids=["e-1"])
    assert await count_rows(log) == 1


async def test_duplicate_ids_within_one_append_are_refused(log: EventLog) -> None:
    with pytest.raises(InvalidEvent, match="twice"):
        await log.append(KEY, [state(a=1), state(a=2)], event_ids=["e", "e"])
    assert await count_rows(log) == 0


async def test_idempotent_resend_inside_one_group_commit(log: EventLog) -> None:
    """Two concurrent sends of the same ids: one writes, the other gets the same records."""
    sends = [log.append(KEY, [state(a=1)], event_ids=["same"]) for _ in range(5)]
    results = await asyncio.gather(*sends)
    assert all(r == results[0] for r in results)
    assert await count_rows(log) == 1


# --- versions, positions, hash chain -----------------------------------------------


async def test_versions_are_gap_free_and_positions_increase(log: EventLog) -> None:
    keys = [SessionKey("app", "user", f"s{i}") for i in range(4)]
    await asyncio.gather(*(log.append(keys[i % 4], [state(i=i)] * (1 + i % 3))
                           for i in range(40)))
    for key in keys:
        versions = [r.version for r in await read_stream(log, key)]
        assert versions == list(range(1, len(versions) + 1))
    positions = [r.position for r in await read_all(log)]
    assert positions == sorted(set(positions))


async def test_hash_chain_recomputes_from_stored_bytes(log: EventLog) -> None:
    await log.append(KEY, [state(a=1), message("one")])
    await log.append(KEY, [message("two")])
    await log.append(SessionKey("app", "user", "other"), [state(b=2)])
    async with log.db.engine.connect() as conn:
        rows = (await conn.execute(sa.text(
            "SELECT version, type, event_id, recorded_at, data, hash FROM ss_events "
            "WHERE app_name = 'app' AND user_id = 'user' AND session_id = 's1' "
            "ORDER BY version"))).all()
        head = (await conn.execute(sa.text(
            "SELECT version, hash FROM ss_streams WHERE session_id = 's1'"))).one()
    previous = ""
    for version, type_name, event_id, recorded_at, data, digest in rows:
        assert digest == chain_hash(previous, KEY, version, type_name, event_id, recorded_at,
                                    bytes(data))
        previous = digest
    assert tuple(head) == (3, previous)
    records = await read_stream(log, KEY)
    assert [r.hash for r in records] == [row[-1] for row in rows]
    # Tampering with any byte breaks the chain.
    version, type_name, event_id, recorded_at, data, digest = rows[1]
    assert chain_hash(rows[0][-1], KEY, version, type_name, event_id, recorded_at,
                      bytes(data).replace(b"one", b"0ne")) != digest


# --- invalid input: refused, nothing written --------------------------------------


class Opaque:
    pass


NOT_JSON: list[tuple[str, Any]] = [
    ("bytes", {"blob": b"\x00\x01"}),
    ("set", {"tags": {1, 2}}),
    ("object", {"thing": Opaque()}),
    ("nan", {"score": math.nan}),
    ("inf", {"score": math.inf}),
    ("negative inf", {"deep": [{"x": -math.inf}]}),
    ("non-str key", {1: "one"}),
    ("nested non-str key", {"a": {("t", 1): 2}}),
    ("lone surrogate", {"text": "\ud800"}),
    ("too deep", {"d": __import__("functools").reduce(lambda acc, _: [acc], range(80), 0)}),
]


@pytest.mark.parametrize(("what", "delta"), NOT_JSON, ids=[w for w, _ in NOT_JSON])
async def test_values_that_are_not_json_are_refused(log: EventLog, what: str, delta: Any) -> None:
    with pytest.raises(InvalidEvent):
        await log.append(KEY, [state(ok=1), StateChanged(delta=delta)])
    assert await count_rows(log) == 0


@pytest.mark.parametrize("native", [b"raw", {"t": {1, 2}}, math.nan, Opaque()],
                         ids=["bytes", "set", "nan", "object"])
async def test_not_json_inside_a_message_is_refused(log: EventLog, native: Any) -> None:
    with pytest.raises(InvalidEvent):
        await log.append(KEY, [MessageAppended(message=Event(role="user", native=native))])
    assert await count_rows(log) == 0


WRONG_TYPES: list[tuple[str, Any]] = [
    ("delta not a dict", StateChanged(delta=[1, 2])),  # type: ignore[arg-type]
    ("delta None", StateChanged(delta=None)),  # type: ignore[arg-type]
    ("tokens as str", InteractionTracked(tokens_in="5")),  # type: ignore[arg-type]
    ("merge as int", MetadataChanged(patch={}, merge=3)),  # type: ignore[arg-type]
    ("role as int", MessageAppended(message=Event(role=5))),  # type: ignore[arg-type]
    ("message as dict", MessageAppended(message={"role": "user"})),  # type: ignore[arg-type]
    ("usage tokens float", MessageAppended(
        message=Event(role="user", usage=Usage(tokens_in=1.5)))),  # type: ignore[arg-type]
    ("tags as str", SessionCreated(tags="abc")),  # type: ignore[arg-type]
    ("tags of ints", SessionCreated(tags=[1, 2])),  # type: ignore[list-item]
    ("timeout as str", SessionCreated(timeout="soon")),  # type: ignore[arg-type]
    ("not a payload", Event(role="user")),
    ("a plain dict", {"type": "StateChanged", "delta": {}}),
]


@pytest.mark.parametrize(("what", "payload"), WRONG_TYPES, ids=[w for w, _ in WRONG_TYPES])
async def test_wrong_field_types_are_refused(log: EventLog, what: str, payload: Any) -> None:
    with pytest.raises(InvalidEvent):
        await log.append(KEY, [state(ok=1), payload])
    assert await count_rows(log) == 0


class Unregistered(StateChanged):
    """A payload type outside the vocabulary: it could be written but never decoded."""


async def test_payload_types_outside_the_vocabulary_are_refused(log: EventLog) -> None:
    with pytest.raises(InvalidEvent, match="vocabulary"):
        await log.append(KEY, [Unregistered(delta={})])
    assert await count_rows(log) == 0


async def test_tuples_are_stored_as_lists(log: EventLog) -> None:
    await log.append(KEY, [SessionCreated(tags=("a", "b"), state={"pair": (1, 2)})])  # type: ignore[arg-type]
    (record,) = await read_stream(log, KEY)
    assert record.data == SessionCreated(tags=["a", "b"], state={"pair": [1, 2]})


@pytest.mark.parametrize("where", ["app_name", "user_id", "session_id", "event_id"])
async def test_over_long_ids_are_refused(log: EventLog, where: str) -> None:
    long_id = "x" * (MAX_ID_BYTES + 1)
    parts = {"app_name": "app", "user_id": "user", "session_id": "s"}
    ids: list[str | None] | None = None
    if where == "event_id":
        ids = [long_id]
    else:
        parts[where] = long_id
    with pytest.raises(InvalidEvent, match=str(MAX_ID_BYTES)):
        await log.append(SessionKey(**parts), [state(a=1)], event_ids=ids)
    assert await count_rows(log) == 0
    # The limit itself is fine.
    ok = "y" * MAX_ID_BYTES
    await log.append(SessionKey(ok, ok, ok), [state(a=1)], event_ids=[ok])


@pytest.mark.parametrize(("key", "ids"), [
    (SessionKey("", "user", "s"), None),
    (KEY, [""]),
    (SessionKey("app", "user\n", "s"), None),
    (SessionKey("app", 5, "s"), None),  # type: ignore[arg-type]
    (KEY, [7]),
], ids=["empty app", "empty event id", "control char", "int user", "int event id"])
async def test_empty_or_malformed_ids_are_refused(log: EventLog, key: SessionKey,
                                                  ids: Any) -> None:
    with pytest.raises(InvalidEvent):
        await log.append(key, [state(a=1)], event_ids=ids)
    assert await count_rows(log) == 0


async def test_an_append_needs_events(log: EventLog) -> None:
    with pytest.raises(InvalidEvent):
        await log.append(KEY, [])
    with pytest.raises(InvalidEvent, match="one id per event"):
        await log.append(KEY, [state(a=1)], event_ids=["a", "b"])


async def test_payload_over_max_event_bytes_is_refused(store_url: str) -> None:
    async with opened_log(store_url, max_event_bytes=10_000) as log:
        await log.append(KEY, [state(text="x" * 9_000)])
        with pytest.raises(InvalidEvent, match="max_event_bytes"):
            await log.append(KEY, [state(a=1), state(text="x" * 10_000)])
        assert await count_rows(log) == 1


async def test_default_limit_is_one_mebibyte(log: EventLog) -> None:
    with pytest.raises(InvalidEvent, match="1,048,576"):
        await log.append(KEY, [message("x" * (1024 * 1024))])
    assert await count_rows(log) == 0


# --- group commit ------------------------------------------------------------------


async def test_bad_commits_do_not_fail_their_neighbours(log: EventLog) -> None:
    await log.append(KEY, [state(a=1)], event_ids=["taken"])
    keys = [SessionKey("app", "user", f"n{i}") for i in range(30)]

    async def good(key: SessionKey) -> list[RecordedEvent]:
        return await log.append(key, [state(k=key.session_id)], expected_version=NO_STREAM)

    bad = [
        log.append(KEY, [state(b=1)], expected_version=0),  # stale
        log.append(KEY, [state(b=2), state(b=3)], event_ids=["taken", "fresh"]),  # partial
        log.append(SessionKey("app", "user", "n0"), [state(b=4)], event_ids=["taken"]),
    ]
    results = await asyncio.gather(*(good(k) for k in keys[:15]), *bad,
                                   *(good(k) for k in keys[15:]), return_exceptions=True)
    goods = results[:15] + results[18:]
    assert all(isinstance(r, list) and r[0].version == 1 for r in goods)
    assert isinstance(results[15], ConcurrencyError)
    assert isinstance(results[16], InvalidEvent) and isinstance(results[17], InvalidEvent)
    assert await count_rows(log) == 31
    assert await log.stream_version(KEY) == 1


async def test_a_failing_commit_is_isolated_by_its_savepoint(store_url: str) -> None:
    """A database error in one commit (here from an inline projection) is retried commit by
    commit: only that commit fails, its neighbours land, nothing of it is visible."""

    def inline(conn: Connection, records: Sequence[RecordedEvent]) -> None:
        if any(r.session_id == "poison" for r in records):
            conn.exec_driver_sql("SELECT * FROM no_such_table")

    async with opened_log(store_url, inline=[inline]) as log:
        keys = [SessionKey("app", "user", f"n{i}") for i in range(10)]
        poison = SessionKey("app", "user", "poison")
        sends = [log.append(k, [state(a=1)]) for k in keys[:5]]
        sends.append(log.append(poison, [state(a=1)]))
        sends += [log.append(k, [state(a=1)]) for k in keys[5:]]
        results = await asyncio.gather(*sends, return_exceptions=True)
        assert isinstance(results[5], sa.exc.DBAPIError)
        assert all(isinstance(r, list) for i, r in enumerate(results) if i != 5)
        assert await count_rows(log) == 10
        assert await log.stream_version(poison) == 0
        assert await read_stream(log, poison) == []
        # The writer is still healthy.
        assert (await log.append(KEY, [state(a=1)]))[0].version == 1


async def test_two_logs_on_one_database_see_each_others_appends(store_url: str) -> None:
    """Each writer keeps what it last wrote (stream heads, last position) to skip reloading
    it; appends by another writer in between must still be seen, never overwritten."""
    async with opened_log(store_url) as first, opened_log(store_url) as second:
        await first.append(KEY, [message("m0")])
        await first.append(KEY, [message("m1")])  # `first` now knows KEY at version 2
        await second.append(KEY, [message("m2")])  # ...which is no longer true
        third = await first.append(KEY, [message("m3")])
        assert third[0].version == 4
        # An expected version that is right for the database, though not for what the
        # writer last saw, is accepted; a stale one is refused with the real version.
        await first.append(KEY, [message("m4")])  # `first` knows version 5 again
        await second.append(KEY, [message("m5")])
        assert (await first.append(KEY, [message("m6")], expected_version=6))[0].version == 7
        await second.append(KEY, [message("m7")])  # `second` knows version 8
        await first.append(KEY, [message("m8")])
        with pytest.raises(ConcurrencyError) as raised:
            await second.append(KEY, [message("m9")], expected_version=8)
        assert raised.value.actual == 9
        # A re-sent id is answered from the log even when the writer did not load it.
        resent = await second.append(KEY, [message("m7")], event_ids=[third[0].event_id])
        assert resent == third
        recorded = await read_stream(first, KEY)
        assert [r.version for r in recorded] == list(range(1, 10))
        positions = [r.position for r in await read_all(first)]
        assert positions == sorted(positions) and len(set(positions)) == len(positions)
        previous = ""
        for record in recorded:  # one unbroken chain across both writers
            previous = chain_hash(previous, record.key, record.version, record.type,
                                  record.event_id, record.recorded_at,
                                  encode_payload(record.data))
            assert record.hash == previous


async def test_commit_spanning_streams_is_atomic(log: EventLog) -> None:
    other = SessionKey("app", "user", "s2")
    await log.append(other, [state(a=1)])
    good = log.prepare_append(KEY, [state(a=1)])
    stale = log.prepare_append(other, [state(a=2)], expected_version=NO_STREAM)
    with pytest.raises(ConcurrencyError):
        await log.commit([good, stale])
    assert await log.stream_version(KEY) == 0 and await count_rows(log) == 1
    both = await log.commit([log.prepare_append(KEY, [state(a=1)]),
                             log.prepare_append(other, [state(a=2)], expected_version=1)])
    assert [(r.session_id, r.version) for r in both] == [("s1", 1), ("s2", 2)]


# --- streaming reads ---------------------------------------------------------------


async def test_reads_stream_in_batches_with_bounded_memory(log: EventLog) -> None:
    """Peak memory while reading does not grow with the length of the log."""
    blob = "z" * 1_000

    async def grow_to(total: int) -> None:
        have = await log.stream_version(KEY)
        for start in range(have, total, 1_000):
            await log.append(KEY, [state(i=i, blob=blob) for i in range(start, start + 1_000)])

    async def peak(records: AsyncIterator[RecordedEvent], total: int) -> int:
        tracemalloc.start()
        try:
            count = 0
            async for record in records:
                assert record.data.delta["i"] == count  # type: ignore[union-attr]
                count += 1
            assert count == total
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = 2 * READ_BATCH, 6 * READ_BATCH
    await grow_to(small)
    small_all, small_stream = await peak(log.read_all(), small), await peak(
        log.read_stream(KEY), small)
    await grow_to(large)
    large_all, large_stream = await peak(log.read_all(), large), await peak(
        log.read_stream(KEY), large)
    assert large_all < 1.5 * small_all, (small_all, large_all)
    assert large_stream < 1.5 * small_stream, (small_stream, large_stream)
    assert large_all < large * len(blob)


async def test_reads_upcast_old_rows_among_current_ones(log: EventLog) -> None:
    """A batch mixing rows of an older payload schema with current ones decodes each right."""
    from session_store.storage import codec as vocabulary

    await log.append(KEY, [InteractionTracked(tokens_in=1)])
    async with log.db.engine.begin() as conn:  # a row as an older release wrote it
        await conn.execute(sa.text(
            "INSERT INTO ss_events (position, app_name, user_id, session_id, version, type, "
            "schema, data, event_id, recorded_at, hash, anchor) VALUES (100, 'app', 'user', "
            "'legacy', 1, 'InteractionTracked', 1, :data, 'old-1', 1.0, 'x', '')"),
            {"data": b'{"type":"InteractionTracked","prompt_tokens":7}'})
    await log.append(KEY, [InteractionTracked(tokens_in=3)])
    saved = dict(vocabulary._upcasters)
    original = InteractionTracked.schema
    try:
        InteractionTracked.schema = 2  # type: ignore[misc]
        vocabulary.register_upcaster("InteractionTracked", 1, lambda raw: {
            "tokens_in": raw.get("prompt_tokens", raw.get("tokens_in", 0))})
        # The current rows (schema 1 stored, now "old") and the legacy one all upcast.
        got = [r.data for r in await read_all(log)]
    finally:
        InteractionTracked.schema = original  # type: ignore[misc]
        vocabulary._upcasters.clear()
        vocabulary._upcasters.update(saved)
    assert [p.tokens_in for p in got] == [1, 7, 3]  # type: ignore[union-attr]
    # Back on the current schema, the legacy row simply lacks the renamed field.
    assert [r.data for r in await read_all(log)][1] == InteractionTracked(tokens_in=0)


async def test_appends_racing_close_fail_cleanly_instead_of_hanging(store_url: str) -> None:
    db = connect(store_url)
    event_log = EventLog(db)
    await event_log.prepare()
    key = SessionKey("app", "user", "closing")
    await event_log.append(key, [StateChanged(delta={"n": 0})])
    racing = [asyncio.ensure_future(event_log.append(key, [StateChanged(delta={"n": i})]))
              for i in range(1, 20)]
    await asyncio.sleep(0)  # the appends are submitted (gathered), not yet written
    await event_log.close()
    outcomes = await asyncio.wait_for(asyncio.gather(*racing, return_exceptions=True), 10)
    written = [o for o in outcomes if isinstance(o, list)]
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert all(isinstance(o, StoreUnavailable) for o in refused)
    with pytest.raises(StoreUnavailable, match="closed"):
        await event_log.append(key, [StateChanged(delta={"late": True})])
    reopened = EventLog(db)
    assert await reopened.stream_version(key) == 1 + len(written)
    await db.dispose()
