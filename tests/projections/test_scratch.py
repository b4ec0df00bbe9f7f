"""A killed rebuild leaves its scratch tables; the next pass drops them (and keeps those of
a pass still running in another process)."""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import sys
import time

import sqlalchemy as sa

from projections import scratch
from session_store.domain.events import Event as Message
from session_store.domain.events import InteractionTracked, MessageAppended, SessionKey
from session_store.store import SessionStore, open_store

_CHILD = "import sys; from session_store.cli.main import main; sys.exit(main(sys.argv[1:]))"


async def _fill(store: SessionStore, sessions: int = 100, events: int = 200) -> None:
    async def one(n: int) -> None:
        key = SessionKey("app", f"u{n % 7}", f"s{n}")
        await store.create_session(app_name=key.app_name, user_id=key.user_id,
                                   session_id=key.session_id)
        for start in range(0, events, 50):
            payloads = [MessageAppended(message=Message(role="user", text=f"turn {i} of {n}"))
                        if i % 2 else InteractionTracked(tokens_in=i, tokens_out=1)
                        for i in range(start, start + 50)]
            await store.log.commit([store.log.prepare_append(key, payloads)])

    await asyncio.gather(*(one(n) for n in range(sessions)))


async def _suffixes(store: SessionStore) -> tuple[set[str], set[str]]:
    """The suffixes of scratch tables present, and those registered in ss_scratch."""
    def look(conn: sa.Connection) -> tuple[set[str], set[str]]:
        found = {match[0] for name in sa.inspect(conn).get_table_names()
                 if (match := scratch.SUFFIX.search(name))}
        registered = set()
        if sa.inspect(conn).has_table("ss_scratch"):
            registered = {row[0] for row in conn.execute(sa.select(scratch.scratch.c.suffix))}
        return found, registered
    result: tuple[set[str], set[str]] = await store.log.run_schema(look)
    return result


async def _rebuild_until_killed(store: SessionStore, url: str) -> str:
    """Start `session-store rebuild` in a child, SIGKILL it mid-pass; returns its suffix."""
    before, _ = await _suffixes(store)
    child = subprocess.Popen([sys.executable, "-c", _CHILD, "rebuild", "--db", url],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and child.poll() is None:
            found, registered = await _suffixes(store)
            fresh = (found & registered) - before
            if fresh:
                # A pass still running elsewhere keeps its tables through our sweep.
                await store.log.run_schema(scratch.sweep)
                assert fresh <= (await _suffixes(store))[0]
                await asyncio.sleep(random.uniform(0.0, 0.05))
                child.send_signal(signal.SIGKILL)
                return fresh.pop()
            await asyncio.sleep(0.02)
        raise AssertionError("the child's rebuild never registered its scratch tables")
    finally:
        child.kill()
        child.wait()


async def test_a_sigkill_loop_of_rebuild_leaves_no_scratch_table_after_the_next_run(
        store_url: str) -> None:
    async with open_store(store_url) as store:
        await _fill(store)
        await store.wait_for(await store.last_position(), 60)
        killed = {await _rebuild_until_killed(store, store_url) for _ in range(4)}
        found, registered = await _suffixes(store)
        assert found & killed, "the kills left nothing behind: the test proves nothing"
        report = await store.rebuild()
        assert report.events >= 20_000
        assert await _suffixes(store) == (set(), set())
        assert (await store.verify()).ok
        assert await _suffixes(store) == (set(), set())
