"""The helpers every test shares: open a log (with or without projections), make payloads,
read and count, dump read models, and run the real console script.

Fixtures (`store_url`, `store`, `pg_url`, ...) are in tests/conftest.py.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from projections import tables
from projections.analytics import Analytics
from projections.history import History
from projections.protocol import Projection
from projections.runtime import ProjectionRuntime
from projections.users import Users
from session_store.domain.events import (
    Event,
    MessageAppended,
    Payload,
    SessionKey,
    StateChanged,
    Usage,
)
from session_store.log.batching import InlineApply
from session_store.log.eventlog import EventLog
from session_store.storage.database import connect
from session_store.store import SessionStore

# --- the log ---------------------------------------------------------------------------

KEY = SessionKey("app", "user", "s1")


@asynccontextmanager
async def opened_log(url: str, *, inline: Sequence[InlineApply] = (),
                     **settings: Any) -> AsyncIterator[EventLog]:
    """An `EventLog` on `url` with its schema prepared; closed and disposed on exit."""
    db = connect(url)
    log = EventLog(db, inline=inline, **settings)
    try:
        await log.prepare()
        yield log
    finally:
        await log.close()
        await db.dispose()


def message(text: str = "hello", role: str = "user") -> MessageAppended:
    return MessageAppended(message=Event(role=role, text=text))


def state(**delta: Any) -> Payload:
    return StateChanged(delta=delta)


async def count_rows(log: EventLog, table: str = "ss_events") -> int:
    async with log.db.engine.connect() as conn:
        return int((await conn.execute(sa.text(f"SELECT count(*) FROM {table}"))).scalar_one())


async def read_stream(log: EventLog, key: SessionKey, **kwargs: Any) -> list[Any]:
    return [record async for record in log.read_stream(key, **kwargs)]


async def read_all(log: EventLog, **kwargs: Any) -> list[Any]:
    return [record async for record in log.read_all(**kwargs)]


# --- projections -----------------------------------------------------------------------

S1 = SessionKey("app", "ann", "s1")
S2 = SessionKey("app", "ann", "s2")
S3 = SessionKey("app", "bob", "s1")  # same session id, another user
OTHER = SessionKey("other", "ann", "s1")

ALL_INLINE = {"history": "inline", "users": "inline", "analytics": "inline"}
ALL_CATCHUP = {"history": "catchup", "users": "catchup", "analytics": "catchup"}


@asynccontextmanager
async def opened(url: str, modes: Mapping[str, str] | None = None
                 ) -> AsyncIterator[tuple[EventLog, ProjectionRuntime]]:
    """A prepared log with a started runtime; closed and disposed on exit."""
    db = connect(url)
    log = EventLog(db)
    runtime = ProjectionRuntime(log, modes=modes)
    try:
        await log.prepare()
        await runtime.start()
        yield log, runtime
    finally:
        await runtime.close()
        await log.close()
        await db.dispose()


@dataclass(frozen=True)
class ReadModels:
    history: History
    users: Users
    analytics: Analytics


def read_models(runtime: ProjectionRuntime) -> ReadModels:
    """The query objects of a runtime's built-in read models (no read-your-writes wait)."""
    db, found = runtime.log.db, runtime.projections
    return ReadModels(History(db, found["history"]), Users(db, found["users"]),  # type: ignore[arg-type]
                      Analytics(db, found["analytics"]))  # type: ignore[arg-type]


async def dump(log: EventLog, projections: Sequence[Projection]) -> dict[str, Any]:
    """Every row of the projections' tables, keyed by projection name."""

    def run(conn: Any) -> dict[str, Any]:
        return {p.name: tables.dump(conn, p) for p in projections}

    result: dict[str, Any] = await log.run_schema(run)
    return result


def differences(projections: Sequence[Projection], a: dict[str, Any], b: dict[str, Any]
                ) -> list[str]:
    found: list[str] = []
    for projection in projections:
        found.extend(tables.compare(projection.name, projection.tables(), a[projection.name],
                                    b[projection.name]))
    return found


def said(text: str, role: str = "user", *, tokens: tuple[int, int] | None = None,
         response_time: float | None = None, message_id: str | None = None,
         timestamp: float | None = None) -> MessageAppended:
    fields: dict[str, Any] = {"role": role, "text": text}
    if tokens is not None:
        fields["usage"] = Usage(tokens_in=tokens[0], tokens_out=tokens[1], model="mock")
    if response_time is not None:
        fields["response_time"] = response_time
    if message_id is not None:
        fields["id"] = message_id
    if timestamp is not None:
        fields["timestamp"] = timestamp
    return MessageAppended(message=Event(**fields))


async def append(log: EventLog, key: SessionKey, *payloads: Payload) -> int:
    """Append and return the last position."""
    return (await log.append(key, list(payloads)))[-1].position


async def purge(log: EventLog, key: SessionKey, payload: Payload) -> int:
    """Append `payload` (a SessionPurged) the audited way: erasing the stream's payloads."""
    return (await log.commit([log.prepare_append(key, [payload], erase=True)]))[-1].position


# --- the facade ------------------------------------------------------------------------

async def unchanged(store: SessionStore, action: Callable[[], Awaitable[Any]],
                    error: type[BaseException]) -> None:
    """`action` raises `error` and the log's last position does not move."""
    before = await store.last_position()
    with pytest.raises(error):
        await action()
    assert await store.last_position() == before


# --- the console script ------------------------------------------------------------------

_SCRIPT = Path(sys.executable).with_name("session-store")
COMMAND = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "session_store.cli"]
SMALL_DEMO = ("demo", "--users", "3", "--sessions", "7", "--turns", "3", "--latency-ms", "0.5")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SESSION_STORE_URL"}
    env.update(COLUMNS="200", NO_COLOR="1", PYTHONWARNINGS="ignore")
    return env


def _argv(args: tuple[str, ...], db: str | None) -> list[str]:
    return [*COMMAND, *(["--db", db] if db is not None else []), *args]


def cli(*args: str, db: str | None = None, cwd: Path | None = None,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_argv(args, db), capture_output=True, text=True, env=_env(),
                          cwd=cwd, input=stdin, timeout=120, check=False)


def terminal_stderr(*args: str, db: str | None = None) -> str:
    """What the command writes to stderr when stderr is a terminal (progress bars show)."""
    return on_terminal(*args, db=db, stream="stderr")


def on_terminal(*args: str, db: str | None = None, stream: str = "stdout",
                columns: int | None = None) -> str:
    """What the command writes to `stream` when that stream is a pseudo-terminal (with
    `columns`, that many columns and colour on: no NO_COLOR)."""
    env = _env()
    if columns is not None:
        env.pop("NO_COLOR")
        env.update(COLUMNS=str(columns), TERM="xterm-256color")
    parent, child = pty.openpty()
    streams = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, stream: child}
    try:
        process = subprocess.Popen(_argv(args, db), stdin=subprocess.DEVNULL,
                                   stdout=streams["stdout"], stderr=streams["stderr"], env=env)
        os.close(child)
        chunks = []
        while True:
            try:
                chunk = os.read(parent, 65536)
            except OSError:  # EIO: the command closed its end
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(timeout=120) == 0, b"".join(chunks).decode(errors="replace")
    finally:
        os.close(parent)
    return b"".join(chunks).decode(errors="replace")


def ok(*args: str, db: str | None = None, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = cli(*args, db=db, **kwargs)
    assert result.returncode == 0, (result.returncode, result.stdout[-3000:], result.stderr)
    return result


def ok_json(*args: str, db: str | None = None) -> Any:
    return json.loads(ok(*args, "--json", db=db).stdout)


def in_process(*args: str, db: str | None = None, width: int = 200) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `session-store ARGS` run in this process, its tables
    `width` columns wide and stdout not a terminal: for what a subprocess proves nothing
    more about (the console script itself is run by `cli`)."""
    import contextlib
    import io

    from session_store.cli import render
    from session_store.cli.main import main as run_main

    stdout, stderr = io.StringIO(), io.StringIO()
    saved = render.out
    render.out = render.new_console(width=width)
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                code = run_main(_argv(args, db)[len(COMMAND):])
            except SystemExit as stop:  # argparse: usage errors, --help, --version
                code = stop.code if isinstance(stop.code, int) else 1
    finally:
        render.out = saved
    return code, stdout.getvalue(), stderr.getvalue()
