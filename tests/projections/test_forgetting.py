"""`purge_user`: no byte of what the user wrote is left in any table (the log, every read
model, the full-text index), the read models forget the user, the log still verifies and
other users are untouched; inline and catch-up."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from session_store import Event, Usage
from session_store.purging import PurgeReport
from session_store.store import SessionStore, open_store

ANN, BOB = "ann", "bob"


def mark(user: str) -> str:
    """What every value `user` writes holds (and no id does): a scan for it finds what is
    left of the user. Ids are kept by a purge."""
    return f"zqx{user}"


async def _converse(store: SessionStore, user: str, session_id: str) -> None:
    m = mark(user) + session_id
    session = await store.create_session(
        app_name="app", user_id=user, session_id=session_id, tags=[f"{m}tag"],
        state={"own": f"{m}own", f"user:{m}": f"{m}user", "temp:t": f"{m}temp"},
        metadata={"email": f"{m}@mail"})
    await store.append_events(session, [
        Event(role="user", text=f"hello {m}msg", parts=[{"text": f"{m}part"}],
              state_delta={f"app:{m}": f"{m}app", "user:shared": f"{m}shared"}),
        Event(role="assistant", text=f"answer {m}reply", response_time=0.5,
              usage=Usage(tokens_in=10, tokens_out=5, model=f"{m}model"))])
    await store.update_state(session, {"app:shared": f"{m}appshared"})
    await store.update_session_metadata(session, {"note": f"{m}note"})
    await store.track_interaction(session, tokens_in=1, tokens_out=2, response_time=0.1,
                                  model=f"{m}tracked")


async def _leftovers(store: SessionStore, marker: str) -> list[str]:
    """`table: row` for each row of any table (the full-text index's own tables included)
    that still holds `marker`, case-insensitively."""
    db = store.db
    if db.dialect.name == "sqlite":
        listing = "SELECT name FROM sqlite_master WHERE type = 'table'"
    else:
        listing = ("SELECT table_name FROM information_schema.tables "
                   "WHERE table_schema = current_schema()")
    names = [row[0] for row in await db.dialect.fetch(db, listing, ())]
    assert "ss_events" in names and "ss_history" in names
    found: list[str] = []
    needle = marker.encode()
    for name in names:
        for row in await db.dialect.fetch(db, f'SELECT * FROM "{name}"', ()):
            for value in tuple(row):
                raw = bytes(value) if isinstance(value, bytes | memoryview) else (
                    str(value).encode())
                if needle in raw.lower():
                    found.append(f"{name}: {tuple(row)!r}"[:300])
    return found


async def test_purge_user_leaves_no_byte_of_the_user(store_url: str, modes: dict[str, str]
                                                     ) -> None:
    async with open_store(store_url, projections=modes) as store:
        for user, sessions in ((ANN, ("s1", "s2", "s3")), (BOB, ("s1",))):
            for session_id in sessions:
                await _converse(store, user, session_id)
        await store.delete_session(app_name="app", user_id=ANN, session_id="s2")
        await store.delete_session(app_name="app", user_id=ANN, session_id="s3", purge=True)
        await store.wait_for(await store.last_position())
        assert await _leftovers(store, mark(ANN))
        bob_before = await store.get_session(app_name="app", user_id=BOB, session_id="s1")
        bob_stats = await store.analytics.by_session("app", BOB, "s1")

        report = await store.purge_user(app_name="app", user_id=ANN)

        assert report.sessions == 2 and report.scope_events > 0
        await store.wait_for(await store.last_position())
        assert await _leftovers(store, mark(ANN)) == []
        assert await _leftovers(store, mark(BOB))  # the scan does find what is there
        # The read models forget her...
        assert await store.get_user_state(app_name="app", user_id=ANN) == {}
        assert await store.users.get(app_name="app", user_id=ANN) is None
        assert (await store.list_sessions(app_name="app", user_id=ANN)).sessions == []
        assert await store.history.search("hello", app_name="app", user_id=ANN) == []
        assert [s.user_id for s in await store.analytics.by_user("app")] == [BOB]
        fresh = await store.create_session(app_name="app", user_id=ANN, session_id="new")
        assert not any(mark(ANN) in repr(item) for item in fresh.state.items())
        # ...and nobody else: bob's session, state and figures are as they were.
        bob = await store.get_session(app_name="app", user_id=BOB, session_id="s1")
        assert bob is not None and bob_before is not None
        assert dict(bob.state) == {k: v for k, v in bob_before.state.items() if mark(ANN) not in k}
        assert bob.messages == bob_before.messages
        assert await store.analytics.by_session("app", BOB, "s1") == bob_stats
        assert [m.user_id for m in await store.history.search("hello", app_name="app")] == [
            BOB]
        report_ok = await store.verify()
        assert report_ok.ok, report_ok.problems
        # Idempotent: purging again (or an unknown user) changes nothing.
        position = await store.last_position()
        assert await store.purge_user(app_name="app", user_id=ANN) == PurgeReport(sessions=1)
        assert await store.last_position() > position  # the session made after the purge
        position = await store.last_position()
        assert await store.purge_user(app_name="app", user_id=ANN) == PurgeReport()
        assert await store.purge_user(app_name="app", user_id="nobody") == PurgeReport()
        assert await store.last_position() == position
        await store.rebuild()
        assert await _leftovers(store, mark(ANN)) == []
        assert (await store.verify()).ok
    if store.db.dialect.name == "sqlite":
        _assert_file_forgets(Path(store_url), mark(ANN))


def _assert_file_forgets(path: Path, marker: str) -> None:
    """Once the file is compacted (WAL checkpointed, free pages dropped), its bytes hold
    nothing of the purged user either."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    data: Any = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    assert marker.encode() not in data.lower()
    assert mark(BOB).encode() in data.lower()
