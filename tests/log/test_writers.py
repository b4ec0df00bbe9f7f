"""Many writers at once: optimistic concurrency, several processes, a follower missing nothing."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import asyncpg
import pytest
import sqlalchemy as sa

from session_store.domain.events import SessionKey
from session_store.errors import ConcurrencyError, StoreUnavailable
from session_store.log import NO_STREAM
from session_store.log.eventlog import EventLog
from session_store.store import SessionStore
from tests.conftest import require_pg
from tests.kit import ALL_INLINE, KEY, opened_log, read_all, read_stream, state

ROOT = Path(__file__).resolve().parents[2]


async def test_fifty_tasks_one_winner_per_version(store_url: str) -> None:
    async with opened_log(store_url) as log:
        tasks, rounds = 50, 8
        for version in range(rounds):
            results = await asyncio.gather(
                *(log.append(KEY, [state(task=t, round=version)], expected_version=version)
                  for t in range(tasks)),
                return_exceptions=True)
            winners = [r for r in results if isinstance(r, list)]
            losers = [r for r in results if isinstance(r, ConcurrencyError)]
            assert len(winners) == 1 and len(losers) == tasks - 1, results
            assert winners[0][0].version == version + 1
            assert all(e.expected == version and e.actual == version + 1 for e in losers)
        records = await read_stream(log, KEY)
        assert [r.version for r in records] == list(range(1, rounds + 1))
        assert len({r.position for r in records}) == rounds


async def test_fifty_tasks_retrying_until_they_land(store_url: str) -> None:
    """Read-modify-append loops: every task lands once, versions have no gaps or duplicates."""
    async with opened_log(store_url) as log:
        conflicts = 0

        async def worker(task: int) -> None:
            nonlocal conflicts
            while True:
                version = await log.stream_version(KEY)
                try:
                    await log.append(KEY, [state(task=task)], expected_version=version)
                    return
                except ConcurrencyError:
                    conflicts += 1

        await asyncio.gather(*(worker(t) for t in range(50)))
        records = await read_stream(log, KEY)
        assert [r.version for r in records] == list(range(1, 51))
        assert sorted(r.data.delta["task"] for r in records) == list(range(50))  # type: ignore[union-attr]
        assert conflicts > 0


_PROCESS = textwrap.dedent("""
    import asyncio, sys
    from session_store.domain.events import SessionKey, StateChanged
    from tests.kit import opened_log

    async def main(url, worker, count):
        async with opened_log(url) as log:
            own = SessionKey("app", "user", f"own-{worker}")
            shared = SessionKey("app", "user", "shared")
            async def one(i):
                await log.append(shared, [StateChanged(delta={"w": worker, "i": i})])
                await log.append(own, [StateChanged(delta={"i": i})], event_ids=[f"{worker}-{i}"])
            for start in range(0, count, 10):
                await asyncio.gather(*(one(i) for i in range(start, min(start + 10, count))))

    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
""")


async def test_several_processes_append_to_one_sqlite_file(sqlite_url: str) -> None:
    async with opened_log(sqlite_url):
        pass  # schema first, so the processes race on appends, not on DDL
    workers, count = 4, 150
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", _PROCESS, sqlite_url, str(w), str(count)],
                              env=env, cwd=ROOT, stderr=subprocess.PIPE)
             for w in range(workers)]
    for proc in procs:
        _, err = await asyncio.to_thread(proc.communicate, timeout=120)
        assert proc.returncode == 0, err.decode()
    async with opened_log(sqlite_url) as log:
        records = await read_all(log)
        assert len(records) == 2 * workers * count
        positions = [r.position for r in records]
        assert positions == sorted(set(positions))
        shared = await read_stream(log, SessionKey("app", "user", "shared"))
        assert [r.version for r in shared] == list(range(1, workers * count + 1))
        got = {(r.data.delta["w"], r.data.delta["i"]) for r in shared}  # type: ignore[union-attr]
        assert got == {(w, i) for w in range(workers) for i in range(count)}
        for w in range(workers):
            own = await read_stream(log, SessionKey("app", "user", f"own-{w}"))
            assert [r.event_id for r in own] == [f"{w}-{i}" for i in range(count)]


async def _writers_and_follower(url: str, *, writers: int, total: int, batch: int) -> None:
    """`writers` independent logs (own engine, own writer) append `total` events while a
    follower reads `read_all` from its last position + 1; it must see each event once."""
    per_writer = total // writers
    async with opened_log(url):
        pass
    logs: list[EventLog] = []
    contexts = [opened_log(url) for _ in range(writers)]
    for context in contexts:
        logs.append(await context.__aenter__())
    done = asyncio.Event()
    seen: list[tuple[int, str]] = []

    async def write(index: int, log: EventLog) -> None:
        async def one_session(s: int, count: int) -> None:
            key = SessionKey("app", f"w{index}", f"s{s}")
            version = 0
            for start in range(0, count, batch):
                size = min(batch, count - start)
                ids = [f"{index}-{s}-{start + i}" for i in range(size)]
                await log.append(key, [state(i=start + i) for i in range(size)],
                                 event_ids=ids, expected_version=version or NO_STREAM)
                version += size

        sessions = 4  # concurrent appends per writer, so each writer group-commits too
        await asyncio.gather(*(one_session(s, per_writer // sessions) for s in range(sessions)))

    async def follow(log: EventLog) -> None:
        position = 0
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            finished = done.is_set()
            async for record in log.read_all(from_position=position + 1):
                seen.append((record.position, record.event_id))
                position = record.position
            if finished:
                return
            await asyncio.sleep(0.001)

    follower = asyncio.create_task(follow(logs[0]))
    try:
        await asyncio.gather(*(write(i, log) for i, log in enumerate(logs)))
        done.set()
        await asyncio.wait_for(follower, 300)
    finally:
        follower.cancel()
        for context in contexts:
            await context.__aexit__(None, None, None)
    expected = writers * (per_writer // 4) * 4
    positions = [p for p, _ in seen]
    assert positions == sorted(set(positions)), "follower saw an event twice or out of order"
    ids = [i for _, i in seen]
    assert len(ids) == len(set(ids)) == expected, (len(ids), len(set(ids)), expected)


async def test_concurrent_writers_and_a_follower_sqlite(sqlite_url: str) -> None:
    await _writers_and_follower(sqlite_url, writers=4, total=8_000, batch=10)


async def test_concurrent_writers_and_a_follower_postgres_100k(pg_url: str) -> None:
    await _writers_and_follower(pg_url, writers=16, total=100_000, batch=10)


async def test_postgres_writer_survives_a_dropped_connection(pg_url: str) -> None:
    async with opened_log(pg_url) as log:
        await log.append(KEY, [state(a=1)])
        async with log.db.engine.connect() as conn:  # kill every other backend: the writer's
            await conn.execute(sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
        with contextlib.suppress(Exception):
            await log.append(KEY, [state(a=2)])
        await log.append(KEY, [state(a=3)])
        records = await read_stream(log, KEY)
        assert [r.version for r in records] == list(range(1, len(records) + 1))
        assert records[-1].data == state(a=3)


# --- a writer never leaves its callers waiting ---------------------------------------------

def test_the_sqlite_writer_outlives_the_event_loops_of_its_callers(sqlite_url: str) -> None:
    """Each call on a fresh event loop, closed afterwards (`asyncio.run` per call, as OpenAI
    Agents' `Runner.run_sync` does): a caller whose loop closed before the writer answered
    it must not stop the writer (before: its thread died, and every later append waited
    forever)."""
    store = asyncio.run(SessionStore.open(sqlite_url, projections=ALL_INLINE))
    session = asyncio.run(store.create_session(app_name="app", user_id="u", session_id="s"))
    gate = threading.Event()

    async def hold() -> None:  # keeps the writer thread busy until the gate opens
        await store.log.run_schema(lambda conn: gate.wait(30))

    async def abandon() -> None:  # hands an append and a job over, then its loop closes
        pending = [asyncio.ensure_future(store.add_message(session, "user", "abandoned")),
                   asyncio.ensure_future(store.log.run_schema(lambda conn: None))]
        await asyncio.sleep(0.2)
        assert not any(task.done() for task in pending)

    holder = threading.Thread(target=asyncio.run, args=(hold(),))
    holder.start()
    time.sleep(0.2)
    asyncio.run(abandon())  # cancels what it left and closes its loop
    gate.set()
    holder.join(timeout=30)

    def caller(worker: int) -> None:
        for index in range(5):
            asyncio.run(asyncio.wait_for(store.add_message(session, "user", f"{worker}-{index}"),
                                         30))

    callers = [threading.Thread(target=caller, args=(w,)) for w in range(4)]
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in [holder, *callers])
    found = asyncio.run(store.get_session(app_name="app", user_id="u", session_id="s"))
    assert found is not None
    texts = [m.text for m in found.messages]
    assert sorted(t for t in texts if t != "abandoned") == sorted(
        f"{w}-{i}" for w in range(4) for i in range(5))
    asyncio.run(store.close())


async def test_a_sqlite_writer_that_dies_fails_pending_and_later_appends(tmp_path: Path) -> None:
    """The writer thread cannot even connect (the database's directory went away before the
    first append): the appends waiting for it and every later one raise `StoreUnavailable`
    (before: they waited forever)."""
    folder = tmp_path / "db"
    folder.mkdir()
    async with opened_log(str(folder / "sessions.db")) as log:
        assert log.db.write_engine is not None
        log.db.write_engine.dispose()  # no pooled connection left for the writer to reuse
        shutil.rmtree(folder)
        pending = await asyncio.wait_for(asyncio.gather(
            *(log.append(SessionKey("app", "u", f"s{i}"), [state(i=i)]) for i in range(3)),
            return_exceptions=True), 30)
        assert [type(r) for r in pending] == [StoreUnavailable] * 3, pending
        assert all("writer thread stopped" in str(r) for r in pending)
        for _ in range(2):
            with pytest.raises(StoreUnavailable, match="writer thread stopped"):
                await asyncio.wait_for(log.append(KEY, [state(a=1)]), 30)
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(log.run_schema(lambda conn: None), 30)


async def test_postgres_writer_that_cannot_reconnect_fails_appends_and_recovers(
        pg_url: str) -> None:
    """Every backend killed and the database refusing connections: appends raise
    `StoreUnavailable` (before: the writer task died on the failed connect and this and every
    later append waited forever), and they land again once the server accepts them."""
    async with opened_log(pg_url) as log:
        await log.append(KEY, [state(a=1)])
        name = log.db.url.database
        admin = await asyncpg.connect(require_pg() + "/postgres")
        try:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = $1", name)
            for _ in range(3):
                with pytest.raises(StoreUnavailable, match="PostgreSQL"):
                    await asyncio.wait_for(log.append(KEY, [state(a=2)]), 30)
        finally:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            await admin.close()
        await asyncio.wait_for(log.append(KEY, [state(a=3)]), 30)
        assert [r.data for r in await read_stream(log, KEY)] == [state(a=1), state(a=3)]


@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")  # connections of dead loops
def test_a_postgres_store_used_from_another_event_loop_refuses_appends(pg_url: str) -> None:
    """A PostgreSQL store's writer task (and connections) belong to one event loop: from
    another one, after that loop closed, an append raises `StoreUnavailable` saying so
    (before: it waited forever for a task that no longer ran)."""
    async def opened_and_used() -> SessionStore:
        store = await SessionStore.open(pg_url, projections=ALL_INLINE)
        await store.create_session(app_name="app", user_id="u", session_id="s")
        return store

    store = asyncio.run(opened_and_used())  # its writer task ends with that loop
    try:
        with pytest.raises(StoreUnavailable, match="event loop"):
            asyncio.run(asyncio.wait_for(store.add_message(("app", "u", "s"), "user", "x"), 30))
    finally:
        asyncio.run(store.close())
