"""A catch-up follower killed mid-run resumes to exactly the rows a full rebuild gives."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import sqlalchemy as sa

from projections.checkpoints import checkpoints
from session_store.domain.events import (
    InteractionTracked,
    SessionArchived,
    SessionCreated,
    SessionDeleted,
    SessionKey,
    SessionPurged,
)
from session_store.storage.database import connect
from tests.kit import ALL_CATCHUP, append, dump, opened, purge, said
from tests.projections.crash_child import CRASHED

ROOT = Path(__file__).resolve().parents[2]
NAMES = ("history", "users", "analytics")


async def fill(url: str) -> int:
    """Create the catch-up tables (checkpoints at 0) and append a few hundred events."""
    async with opened(url, ALL_CATCHUP) as (log, runtime):
        await runtime.close()  # no follower here: the child does the folding
        for n in range(24):
            key = SessionKey("app", f"user{n % 5}", f"s{n}")
            await append(log, key, SessionCreated(), *[
                said(f"turn {i} of {n}", "assistant" if i % 2 else "user",
                     tokens=(i, 2 * i) if i % 2 else None,
                     response_time=0.1 * (i + n) if i % 2 else None) for i in range(20)])
            await append(log, key, InteractionTracked(tokens_in=n, response_time=0.5))
            if n % 7 == 3:
                await append(log, key, SessionArchived())
            if n % 8 == 5:
                await append(log, key, SessionDeleted())
            if n % 9 == 4:
                await purge(log, key, SessionPurged())
        return await log.last_position()


async def stored_checkpoints(url: str) -> dict[str, int]:
    db = connect(url)
    try:
        async with db.engine.connect() as conn:
            rows = (await conn.execute(sa.select(checkpoints.c.name,
                                                 checkpoints.c.position))).all()
    finally:
        await db.dispose()
    return {name: position for name, position in rows if name in NAMES}


async def run_child(url: str, crash_at: int, batch_size: int) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.projections.crash_child", url, str(crash_at),
        str(batch_size), cwd=ROOT, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})


async def resumed_equals_rebuild(url: str, last: int) -> None:
    async with opened(url, ALL_CATCHUP) as (log, runtime):
        await runtime.wait_for(last, timeout=30)
        resumed = await dump(log, runtime.all)
        assert await runtime.verify() == []
        await runtime.rebuild()
        rebuilt = await dump(log, runtime.all)
        for name in NAMES:
            assert resumed[name] == rebuilt[name], name


async def test_crash_inside_a_batch_transaction_then_resume(store_url: str) -> None:
    last = await fill(store_url)
    child = await run_child(store_url, crash_at=9, batch_size=40)
    _, errors = await asyncio.wait_for(child.communicate(), 60)
    assert child.returncode == CRASHED, errors.decode()
    found = await stored_checkpoints(store_url)
    # Eight batches committed whole; the ninth left no trace, in any projection.
    assert len(set(found.values())) == 1, found
    assert 0 < found["history"] < last
    await resumed_equals_rebuild(store_url, last)


async def test_killed_follower_resumes(store_url: str) -> None:
    last = await fill(store_url)
    child = await run_child(store_url, crash_at=0, batch_size=7)
    for _ in range(1000):  # kill it as soon as it has made some progress
        found = await stored_checkpoints(store_url)
        if min(found.values()) > 0:
            break
        await asyncio.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    await child.wait()
    assert child.returncode == -signal.SIGKILL
    assert 0 < min(found.values()) < last  # it died mid-run
    await resumed_equals_rebuild(store_url, last)
