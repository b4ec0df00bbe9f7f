"""Typed errors that say what to do, with nothing written: text no backend can store, ids
past the byte limit, read arguments of the wrong type, and a SQLite database that is
read-only, locked, or removed while the store has it open."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import sqlite3
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from session_store import Event, InvalidEvent, SessionKey, StoreUnavailable
from session_store.domain.events import SessionCreated
from session_store.domain.validation import MAX_ID_BYTES
from session_store.store import SessionStore, open_store
from tests.kit import unchanged

SURROGATE = "a\udc80b"
"""A lone surrogate: what bytes decoded with errors='surrogateescape' leave in a str."""
NUL = "a\x00b"


def wide(count: int, seed: int = 0) -> str:
    """`count` random 4-byte characters (random, so PostgreSQL cannot compress the index
    row they go into)."""
    pick = random.Random(seed)
    return "".join(chr(pick.randrange(0x10000, 0x110000)) for _ in range(count))


LIMIT = MAX_ID_BYTES // 4
"""4-byte characters that fill an id exactly."""

Call = Callable[[SessionStore], Awaitable[Any]]
S = SessionKey("app", "u", "s")


def _session(**ids: Any) -> Call:
    fields = {"app_name": "app", "user_id": "u", "session_id": "new", **ids}
    return lambda st: st.create_session(**fields)


BAD_TEXT: dict[str, Call] = {
    **{f"{where}: {label}": _session(**{where: value})
       for where in ("app_name", "user_id", "session_id")
       for label, value in (("surrogate", SURROGATE), ("NUL", NUL),
                            ("over the byte limit", wide(LIMIT + 1)),
                            ("256 4-byte characters", wide(256)))},
    **{f"tag: {label}": _session(tags=["ok", value])
       for label, value in (("surrogate", SURROGATE), ("NUL", NUL),
                            ("over the byte limit", wide(LIMIT + 1)))},
    "event id: surrogate": lambda st: st.append_event(S, Event(role="user", id=SURROGATE)),
    "event id: NUL": lambda st: st.append_event(S, Event(role="user", id=NUL)),
    "event id: over the byte limit": lambda st: st.append_event(
        S, Event(role="user", id=wide(LIMIT + 1))),
    "message text": lambda st: st.add_message(S, "user", SURROGATE),
    "message part": lambda st: st.add_message(S, "user", parts=[{"text": SURROGATE}]),
    "role": lambda st: st.add_message(S, SURROGATE, "x"),
    "invocation id": lambda st: st.add_message(S, "user", "x", invocation_id=SURROGATE),
    "state value": lambda st: st.update_state(S, {"k": SURROGATE}),
    "state key": lambda st: st.update_state(S, {SURROGATE: 1}),
    "shared state value": lambda st: st.update_state(S, {"user:k": [SURROGATE]}),
    "state delta of a message": lambda st: st.add_message(S, "user", "x",
                                                          state_delta={"k": SURROGATE}),
    "metadata": lambda st: st.update_session_metadata(S, {"m": {"n": SURROGATE}}),
    "created state": _session(state={"k": SURROGATE}),
    "retracted message id": lambda st: st.retract_message(S, NUL),
    "tag of a payload the log is handed": lambda st: st.log.append(
        SessionKey("app", "u", "raw"), [SessionCreated(tags=[NUL])]),
    "read: get_session": lambda st: st.get_session(app_name=SURROGATE, user_id="u",
                                                   session_id="s"),
    "read: list_sessions by tag": lambda st: st.list_sessions(app_name="app", tags=[NUL]),
    "read: user state": lambda st: st.get_user_state(app_name="app", user_id=SURROGATE),
    "read: history": lambda st: st.history.messages(app_name="app", user_id=SURROGATE,
                                                    session_id="s"),
    "read: users": lambda st: st.users.get(app_name=SURROGATE, user_id="u"),
    "read: user's sessions": lambda st: st.users.sessions(app_name="app", user_id=NUL),
    "read: analytics": lambda st: st.analytics.by_session("app", "u", SURROGATE),
    "read: analytics by day": lambda st: st.analytics.by_day(NUL),
}


async def test_text_no_backend_can_store_is_refused_and_nothing_written(
        store: SessionStore) -> None:
    """Lone surrogates anywhere, NUL in an id or a tag, ids past MAX_ID_BYTES: `InvalidEvent`
    (before: UnicodeEncodeError on SQLite, asyncpg's DataError, CharacterNotInRepertoireError
    or ProgramLimitExceededError on PostgreSQL, or a NUL tag stored on SQLite only)."""
    await store.create_session(app_name="app", user_id="u", session_id="s")
    failures = []
    for case, call in BAD_TEXT.items():
        before = await store.last_position()
        try:
            await call(store)
        except InvalidEvent:
            pass
        except Exception as other:  # noqa: BLE001 - reported with the case name
            failures.append(f"{case}: raised {other!r}")
        else:
            failures.append(f"{case}: accepted")
        if await store.last_position() != before:
            failures.append(f"{case}: wrote to the log")
    assert failures == []
    with pytest.raises(InvalidEvent, match="lone surrogate"):
        await store.add_message(S, "user", SURROGATE)
    with pytest.raises(InvalidEvent, match=f"the limit is {MAX_ID_BYTES} bytes"):
        await store.create_session(app_name=wide(LIMIT + 1), user_id="u")
    assert (await store.verify()).problems == []


async def test_ids_at_the_byte_limit_fit_every_index(store: SessionStore) -> None:
    """Four ids of MAX_ID_BYTES bytes each (a session's tag row holds four) are stored,
    folded by every read model and read back on both backends."""
    app, user, session, tag, event_id = (wide(LIMIT, seed) for seed in range(5))
    assert all(len(part.encode()) == MAX_ID_BYTES for part in (app, user, session, tag))
    await store.create_session(app_name=app, user_id=user, session_id=session, tags=[tag])
    key = SessionKey(app, user, session)
    await store.append_event(key, Event(role="user", text="hello", id=event_id,
                                        state_delta={"user:seen": 1}))
    await store.wait_for(await store.last_position(), 30)
    found = await store.get_session(app_name=app, user_id=user, session_id=session)
    assert found is not None and [m.id for m in found.messages] == [event_id]
    assert [s.id for s in (await store.list_sessions(app_name=app, tags=[tag])).sessions] == [
        session]
    assert await store.get_user_state(app_name=app, user_id=user) == {"seen": 1}
    assert [m.text for m in await store.history.search("hello", app_name=app)] == ["hello"]
    assert (await store.users.get(app_name=app, user_id=user)) is not None
    assert (await store.verify()).problems == []


async def _all(iterator: Any) -> list[Any]:
    return [item async for item in iterator]


BAD_READS: dict[str, tuple[str, Call]] = {
    "read_all limit text": ("limit", lambda st: _all(st.read_all(limit="x"))),
    "read_all limit bool": ("limit", lambda st: _all(st.read_all(limit=True))),
    "read_all limit negative": ("limit", lambda st: _all(st.read_all(limit=-1))),
    "read_all from_position text": ("from_position",
                                    lambda st: _all(st.read_all(from_position="0"))),
    "read_all from_position None": ("from_position",
                                    lambda st: _all(st.read_all(from_position=None))),
    "read_all from_position bool": ("from_position",
                                    lambda st: _all(st.read_all(from_position=True))),
    "read_all types a string": ("types", lambda st: _all(st.read_all(types="MessageAppended"))),
    "read_all unknown type": ("types", lambda st: _all(st.read_all(types=["message_appended"]))),
    "read_all app_name": ("app_name", lambda st: _all(st.read_all(app_name=SURROGATE))),
    "read_stream from_version": ("from_version",
                                 lambda st: _all(st.read_stream(S, from_version="1"))),
    "read_stream to_version": ("to_version", lambda st: _all(st.read_stream(S, to_version=-1))),
    "subscribe from_position": ("from_position",
                                lambda st: _all(st.subscribe(from_position="0"))),
    "subscribe poll_interval": ("poll_interval", lambda st: _all(st.subscribe(poll_interval=0))),
    "replay to_version text": ("to_version", lambda st: st.replay(S, to_version="x")),
    "replay to_version bool": ("to_version", lambda st: st.replay(S, to_version=True)),
    "history.search None": ("text", lambda st: st.history.search(None, app_name="app")),
    "history.search limit": ("limit", lambda st: st.history.search("x", app_name="app",
                                                                    limit=0)),
    "history.search roles": ("roles", lambda st: st.history.search("x", app_name="app",
                                                                    roles="user")),
    "history.messages limit": ("limit", lambda st: st.history.messages(
        app_name="app", user_id="u", session_id="s", limit=-1)),
    "users.list limit": ("limit", lambda st: st.users.list(app_name="app", limit=0)),
    "users.list after": ("after", lambda st: st.users.list(app_name="app", after=5)),
    "analytics.histogram by": ("by", lambda st: st.analytics.histogram("week", ["app"])),
    "analytics.histogram app_names": ("app_names",
                                      lambda st: st.analytics.histogram("app", "app")),
    "wait_for text": ("position", lambda st: st.wait_for("x")),
    "wait_for bool": ("position", lambda st: st.wait_for(True)),
    "wait_for negative": ("position", lambda st: st.wait_for(-1)),
    "wait_for timeout": ("timeout", lambda st: st.wait_for(0, timeout="x")),
}


async def test_read_arguments_of_the_wrong_type_are_refused(store: SessionStore) -> None:
    """`InvalidEvent` naming the argument (before: TypeError, AttributeError, asyncpg's
    DataError, or on SQLite `read_all(from_position="0")` answering as if it were 0)."""
    session = await store.create_session(app_name="app", user_id="u", session_id="s")
    await store.add_message(session, "user", "x")
    failures = []
    for case, (argument, call) in BAD_READS.items():
        try:  # (a `subscribe` that accepts its arguments never ends: the timeout fails it)
            await asyncio.wait_for(call(store), 10)
        except InvalidEvent as error:
            if argument not in str(error):
                failures.append(f"{case}: {error} does not name {argument}")
        except Exception as other:  # noqa: BLE001 - reported with the case name
            failures.append(f"{case}: raised {other!r}")
        else:
            failures.append(f"{case}: accepted")
    assert failures == []
    assert len(await _all(store.read_all(from_position=0, limit=1))) == 1  # still reads


# --- SQLite: the database itself fails ------------------------------------------------

@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """`path` (a file or a directory) read-only for this process, even as root: root
    ignores permission bits, not the immutable attribute (`chattr +i`)."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    if shutil.which("chattr") is None or subprocess.run(
            ["chattr", "+i", str(path)], capture_output=True, check=False).returncode != 0:
        pytest.skip("running as root where chattr +i is not available: nothing is read-only")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


async def _made(path: Path) -> int:
    """A store at `path` with one session; closed; returns how many events it holds."""
    async with open_store(str(path)) as store:
        await store.create_session(app_name="app", user_id="u", session_id="s")
        return await store.count_events()


async def _count(path: Path) -> int:
    async with open_store(str(path)) as store:
        return await store.count_events()


async def test_a_read_only_database_file_refuses_appends(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    events = await _made(path)
    with read_only(path):
        async with open_store(str(path)) as store:
            assert await store.get_session(app_name="app", user_id="u", session_id="s")
            with pytest.raises(StoreUnavailable, match="read-only.*make the file"):
                await store.add_message(S, "user", "x")
            await unchanged(store, lambda: store.add_message(S, "user", "x"), StoreUnavailable)
    assert await _count(path) == events


async def test_a_read_only_directory_refuses_to_open(tmp_path: Path) -> None:
    """SQLite cannot create the -wal and -shm files beside the database."""
    folder = tmp_path / "db"
    folder.mkdir()
    events = await _made(folder / "sessions.db")
    assert os.listdir(folder) == ["sessions.db"]
    with read_only(folder), pytest.raises(StoreUnavailable, match="cannot be opened"):
        await open_store(str(folder / "sessions.db"))
    assert await _count(folder / "sessions.db") == events


async def test_a_lock_held_past_the_busy_timeout(tmp_path: Path) -> None:
    """Another connection holds the write lock: `StoreUnavailable` saying the database is
    locked and what to do, at open and on append; nothing written; appends go on after."""
    path = tmp_path / "sessions.db"
    events = await _made(path)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StoreUnavailable, match="is locked.*busy timeout"):
            await open_store(str(path), busy_timeout=0.1)
        other.rollback()
        async with open_store(str(path), busy_timeout=0.1) as store:
            other.execute("BEGIN EXCLUSIVE")
            with pytest.raises(StoreUnavailable, match="is locked.*Retry later"):
                await asyncio.wait_for(store.add_message(S, "user", "x"), 30)
            other.rollback()
            assert await store.count_events() == events
            await store.add_message(S, "user", "after the lock")
            assert await store.count_events() == events + 1
    finally:
        other.close()


async def test_an_append_after_the_directory_was_removed_is_not_acknowledged(
        tmp_path: Path) -> None:
    """SQLite writes on to the open (unlinked) file: nothing could read it back, so the
    append, and every later one, raises `StoreUnavailable` instead of succeeding."""
    folder = tmp_path / "db"
    folder.mkdir()
    async with open_store(str(folder / "sessions.db")) as store:
        session = await store.create_session(app_name="app", user_id="u", session_id="s")
        shutil.rmtree(folder)
        with pytest.raises(StoreUnavailable, match="was removed while the store had it open"):
            await store.add_message(session, "user", "lost")
        with pytest.raises(StoreUnavailable, match="was removed"):
            await store.add_message(session, "user", "lost too")


async def test_an_append_after_the_file_was_replaced_is_not_acknowledged(
        tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    async with open_store(str(path)) as store:
        session = await store.create_session(app_name="app", user_id="u", session_id="s")
        shutil.copy(path, tmp_path / "copy.db")
        os.replace(tmp_path / "copy.db", path)
        with pytest.raises(StoreUnavailable, match="was replaced by another file"):
            await store.add_message(session, "user", "lost")
