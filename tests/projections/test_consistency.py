"""Property: for any event sequence, inline model == catch-up model == full rebuild, row for row.

One database per example: the runtime folds the built-ins inline; a follower
folds copies of them (suffixed tables, own checkpoints) in small catch-up
batches while the appends run; then a full rebuild replaces the inline tables.
All three must hold the same rows, and `verify` must find nothing.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projections import tables
from projections.catchup import Follower
from session_store.domain.events import (
    HistoryCleared,
    InteractionTracked,
    MessageRetracted,
    MetadataChanged,
    Payload,
    SessionArchived,
    SessionCreated,
    SessionDeleted,
    SessionEnded,
    SessionExpired,
    SessionKey,
    SessionPurged,
    SessionReactivated,
    StateChanged,
)
from session_store.errors import SessionStoreError
from session_store.log.eventlog import EventLog
from tests.conftest import fresh_pg_database, require_pg
from tests.kit import ALL_INLINE, differences, dump, opened, said

KEYS = [SessionKey("a1", "u1", "s1"), SessionKey("a1", "u1", "s2"),
        SessionKey("a1", "u2", "s1"), SessionKey("a2", "u1", "s1")]
WORDS = ["alpha", "beta", "gamma", "délta", "hello", "world"]
IDS = ["m0", "m1", "m2"]

rt = st.one_of(st.none(), st.floats(min_value=0.0, max_value=120.0, allow_nan=False))
message = st.builds(
    lambda words, role, tokens, seconds, mid: said(
        " ".join(words), role, tokens=tokens, response_time=seconds, message_id=mid),
    st.lists(st.sampled_from(WORDS), max_size=4), st.sampled_from(["user", "assistant", "tool"]),
    st.one_of(st.none(), st.tuples(st.integers(0, 500), st.integers(0, 500))), rt,
    st.one_of(st.none(), st.sampled_from(IDS)))
closing = st.sampled_from([SessionEnded(), SessionDeleted(), SessionPurged()])
payload: st.SearchStrategy[Payload] = st.one_of(
    message, message, message, message,
    st.builds(SessionCreated, tags=st.lists(st.sampled_from(["x", "y"]), max_size=2)),
    st.builds(InteractionTracked, tokens_in=st.integers(0, 99), tokens_out=st.integers(0, 99),
              response_time=st.floats(min_value=0.0, max_value=60.0, allow_nan=False)),
    st.builds(MessageRetracted, message_id=st.sampled_from(IDS)),
    st.builds(StateChanged, delta=st.fixed_dictionaries({"k": st.integers(0, 3)})),
    st.builds(MetadataChanged, patch=st.fixed_dictionaries({"m": st.integers(0, 3)})),
    st.sampled_from([HistoryCleared(), SessionArchived(), SessionReactivated(),
                     SessionExpired()]),
    closing,
)
append = st.tuples(st.integers(0, len(KEYS) - 1), st.lists(payload, min_size=1, max_size=4))
CREATE_ALL = [[(k, [SessionCreated()]) for k in range(len(KEYS))]]
waves = st.lists(st.lists(append, min_size=1, max_size=4), min_size=4, max_size=16).map(
    lambda plan: CREATE_ALL + plan)


@asynccontextmanager
async def fresh_url(backend: str) -> AsyncIterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            yield str(Path(directory) / "sessions.db")
    else:
        async with fresh_pg_database() as url:
            yield url


async def _append(log: EventLog, key: SessionKey, payloads: list[Payload]) -> None:
    try:
        if any(isinstance(p, SessionPurged) for p in payloads):
            await log.commit([log.prepare_append(key, payloads, erase=True)])
        else:
            await log.append(key, payloads)
    except SessionStoreError:
        pass  # refused by the heads invariants: nothing was written


async def scenario(backend: str, plan: list[list[tuple[int, list[Payload]]]]) -> None:
    async with fresh_url(backend) as url, opened(url, ALL_INLINE) as (log, runtime):
        built_ins = [runtime.projections[n] for n in ("history", "users", "analytics")]
        copies = [p.for_rebuild("_cu") for p in built_ins]

        def create(conn: Any) -> None:
            for copy in copies:
                tables.create(conn, copy)

        await log.run_schema(create)
        follower = Follower(log, copies, checkpoints=[f"{p.name}_cu" for p in copies],
                            batch_size=5, poll_interval=0.05)
        await follower.start()
        try:
            for wave in plan:
                await asyncio.gather(*(_append(log, KEYS[k], ps) for k, ps in wave))
            last = await log.last_position()
            await asyncio.wait_for(follower.wait_for(last), 20)
        finally:
            await follower.stop()
        inline = await dump(log, runtime.all)
        caught_up = await dump(log, copies)
        assert differences(built_ins, inline, caught_up) == []
        assert await runtime.verify() == []
        await runtime.rebuild()
        rebuilt = await dump(log, runtime.all)
        assert differences(runtime.all, inline, rebuilt) == []
        for name in ("history", "users", "analytics"):  # exact, not just close
            assert inline[name] == rebuilt[name] == caught_up[name]


Plan = list[list[tuple[int, list[Payload]]]]
SETTINGS: dict[str, Any] = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}


@settings(max_examples=30, **SETTINGS)
@given(plan=waves)
def test_inline_catchup_and_rebuild_agree_sqlite(plan: Plan) -> None:
    asyncio.run(scenario("sqlite", plan))


@settings(max_examples=12, **SETTINGS)
@given(plan=waves)
def test_inline_catchup_and_rebuild_agree_postgresql(plan: Plan) -> None:
    require_pg()
    asyncio.run(scenario("postgresql", plan))
