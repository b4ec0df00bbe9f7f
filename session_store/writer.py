"""The write path: group commit of appends into the log, one transaction per batch.

Callers hand `Commit`s to a writer and await their results. The writer drains
whatever is pending into one transaction: it takes the log's write lock, loads
each stream's version and last hash, checks every commit on its own (expected
version, idempotent event ids) and inserts the accepted ones together, with
the inline projections applied in the same transaction. One bad commit gets its
own error and never fails its neighbours; an unexpected database error in a
batch is retried commit by commit, each in a savepoint.

Positions are assigned as `max(position) + 1` while the write lock is held
(SQLite's `BEGIN IMMEDIATE`, PostgreSQL's transaction-level advisory lock), so
they become visible in commit order and a follower of `read_all` can never
skip an event committed late by a slower writer.
"""

from __future__ import annotations

import asyncio
import hashlib
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from session_store.errors import ConcurrencyError, InvalidEvent, SessionStoreError
from session_store.events import Payload, RecordedEvent, SessionKey
from session_store.records import RECORD_COLUMNS, decode_row
from session_store.schema import events, streams, upsert

log = structlog.get_logger(__name__)

InlineApply = Callable[[Connection, Sequence[RecordedEvent]], None]
"""An inline projection: folds freshly appended events into its tables, in the append's transaction."""

POSTGRES_WRITE_LOCK = 7415107
MAX_BATCH_COMMITS = 512


@dataclass(frozen=True, slots=True)
class Append:
    """Events for one session stream, already validated and encoded."""

    key: SessionKey
    payloads: tuple[Payload, ...]
    encoded: tuple[bytes, ...]
    event_ids: tuple[str, ...]
    expected_version: int | None = None
    caller_ids: bool = False
    erase: bool = False


Commit = tuple[Append, ...]
"""Appends that land together or not at all (several streams possible)."""

Result = list[RecordedEvent] | BaseException


def chain_hash(previous: str, key: SessionKey, version: int, type_name: str, event_id: str,
               recorded_at: float, data: bytes) -> str:
    """The per-session chained hash: each event seals the one before it."""
    digest = hashlib.sha256(previous.encode())
    header = "\x1f".join(
        (key.app_name, key.user_id, key.session_id, str(version), type_name, event_id,
         repr(recorded_at))
    )
    digest.update(header.encode())
    digest.update(data)
    return digest.hexdigest()


def write_batch(conn: Connection, commits: Sequence[Commit], inline: Sequence[InlineApply]
                ) -> list[Result]:
    """Check and write a batch of commits inside the caller's transaction."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": POSTGRES_WRITE_LOCK})
    heads = _load_heads(conn, {append.key for commit in commits for append in commit})
    stored = _load_stored(
        conn,
        [i for commit in commits for append in commit if append.caller_ids for i in append.event_ids],
    )
    position = conn.execute(_LAST_POSITION).scalar() or 0
    now = time.time()
    results: list[Result] = []
    fresh: list[RecordedEvent] = []
    rows: list[dict[str, Any]] = []
    erase: list[SessionKey] = []
    for commit in commits:
        try:
            replay = _already_stored(commit, stored)
            if replay is not None:
                results.append(replay)
                continue
            planned, planned_rows, planned_heads = _plan(commit, heads, position, now)
        except SessionStoreError as error:
            results.append(error)
            continue
        heads.update(planned_heads)
        position += len(planned)
        stored.update((r.event_id, r) for r in planned)
        fresh.extend(planned)
        rows.extend(planned_rows)
        erase.extend(append.key for append in commit if append.erase)
        results.append(planned)
    if rows:
        conn.execute(_INSERT, rows)
        touched = {r.key for r in fresh}
        conn.execute(
            _UPSERT_STREAM[conn.dialect.name],
            [{"app_name": k.app_name, "user_id": k.user_id, "session_id": k.session_id,
              "version": heads[k][0], "hash": heads[k][1]} for k in touched],
        )
        for key in erase:
            _erase_payloads(conn, key)
        for apply in inline:
            apply(conn, fresh)
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_notify('ss_events', :p)"), {"p": str(position)})
    return results


def write_each(conn: Connection, commits: Sequence[Commit], inline: Sequence[InlineApply]
               ) -> list[Result]:
    """Like `write_batch`, but each commit in its own savepoint: isolates a failing one."""
    results: list[Result] = []
    for commit in commits:
        try:
            with conn.begin_nested():
                results.append(write_batch(conn, [commit], inline)[0])
        except Exception as error:  # noqa: BLE001 - handed to that commit's caller
            results.append(error)
    return results


# Statements are built once: constructing Core statements per call costs more
# than executing them on SQLite.
_HEADS = sa.select(streams.c.app_name, streams.c.user_id, streams.c.session_id,
                   streams.c.version, streams.c.hash).where(
    sa.tuple_(streams.c.app_name, streams.c.user_id, streams.c.session_id).in_(
        sa.bindparam("keys", expanding=True))
)
_HEAD = sa.select(streams.c.version, streams.c.hash).where(
    streams.c.app_name == sa.bindparam("a"), streams.c.user_id == sa.bindparam("u"),
    streams.c.session_id == sa.bindparam("s"))
_STORED = sa.select(*RECORD_COLUMNS).where(
    events.c.event_id.in_(sa.bindparam("ids", expanding=True)))
_LAST_POSITION = sa.select(sa.func.max(events.c.position))
_INSERT = events.insert()
_UPSERT_STREAM = {
    dialect: upsert(streams, dialect, ["app_name", "user_id", "session_id"], ["version", "hash"])
    for dialect in ("sqlite", "postgresql")
}


def _load_heads(conn: Connection, keys: set[SessionKey]) -> dict[SessionKey, tuple[int, str]]:
    heads: dict[SessionKey, tuple[int, str]] = {}
    if len(keys) == 1:
        (key,) = keys
        row = conn.execute(_HEAD, {"a": key[0], "u": key[1], "s": key[2]}).first()
        if row is not None:
            heads[key] = (row[0], row[1])
        return heads
    key_list = list(keys)
    for start in range(0, len(key_list), 300):
        chunk = key_list[start:start + 300]
        for app, user, session, version, digest in conn.execute(_HEADS, {"keys": chunk}):
            heads[SessionKey(app, user, session)] = (version, digest)
    return heads


def _load_stored(conn: Connection, event_ids: list[str]) -> dict[str, RecordedEvent]:
    stored: dict[str, RecordedEvent] = {}
    for start in range(0, len(event_ids), 500):
        chunk = event_ids[start:start + 500]
        for row in conn.execute(_STORED, {"ids": chunk}):
            record = decode_row(row)
            stored[record.event_id] = record
    return stored


def _already_stored(commit: Commit, stored: dict[str, RecordedEvent]) -> list[RecordedEvent] | None:
    """The stored records when every event id of the commit is already in the log."""
    found: list[RecordedEvent] = []
    missing = False
    for append in commit:
        if not append.caller_ids:
            continue  # generated ids are fresh; a replayed commit is known by the caller's ids
        for event_id in append.event_ids:
            record = stored.get(event_id)
            if record is None:
                missing = True
            elif record.key != append.key:
                raise InvalidEvent(f"event id {event_id!r} is already stored in another session")
            else:
                found.append(record)
    if not found:
        return None
    if missing:
        raise InvalidEvent(
            f"event ids {[r.event_id for r in found]} are already stored but others of the same "
            "append are not: an append is idempotent only as a whole"
        )
    return found


def _plan(commit: Commit, heads: dict[SessionKey, tuple[int, str]], position: int, now: float
          ) -> tuple[list[RecordedEvent], list[dict[str, Any]], dict[SessionKey, tuple[int, str]]]:
    planned: list[RecordedEvent] = []
    rows: list[dict[str, Any]] = []
    local: dict[SessionKey, tuple[int, str]] = {}
    for append in commit:
        version, previous = local.get(append.key) or heads.get(append.key) or (0, "")
        expected = append.expected_version
        if expected is not None and expected != version:
            raise ConcurrencyError(
                f"session {append.key.session_id!r} of user {append.key.user_id!r} in app "
                f"{append.key.app_name!r}: expected version {expected}, but it is at {version}; "
                "read it again and retry",
                expected=expected, actual=version,
            )
        for payload, data, event_id in zip(append.payloads, append.encoded, append.event_ids,
                                           strict=True):
            version += 1
            position += 1
            type_name = type(payload).__name__
            digest = chain_hash(previous, append.key, version, type_name, event_id, now, data)
            previous = digest
            planned.append(RecordedEvent(
                position=position, app_name=append.key.app_name, user_id=append.key.user_id,
                session_id=append.key.session_id, version=version, type=type_name,
                data=payload,  # type: ignore[arg-type]
                event_id=event_id, recorded_at=now, hash=digest,
            ))
            rows.append({
                "position": position, "app_name": append.key.app_name,
                "user_id": append.key.user_id, "session_id": append.key.session_id,
                "version": version, "type": type_name, "schema": payload.schema, "data": data,
                "event_id": event_id, "recorded_at": now, "hash": digest,
            })
        local[append.key] = (version, previous)
    return planned, rows, local


def _erase_payloads(conn: Connection, key: SessionKey) -> None:
    conn.execute(
        events.update()
        .where(events.c.app_name == key.app_name, events.c.user_id == key.user_id,
               events.c.session_id == key.session_id, events.c.type != "SessionPurged")
        .values(data=b"")
    )


def _settle(future: asyncio.Future[list[RecordedEvent]], result: Result) -> None:
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


Pending = tuple[Commit, "asyncio.Future[list[RecordedEvent]]"]


class ThreadWriter:
    """SQLite's single writer: a thread that owns the write connection.

    One hop to the thread per batch (not per statement) is what makes small
    sequential appends cheap.
    """

    def __init__(self, engine: Engine, inline: Sequence[InlineApply],
                 on_commit: Callable[[int], None]) -> None:
        self._engine = engine
        self._inline = inline
        self._on_commit = on_commit
        self._queue: queue.SimpleQueue[tuple[Pending, asyncio.AbstractEventLoop] | None] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._run, name="session-store-writer", daemon=True)
        self._thread.start()

    async def submit(self, commit: Commit) -> list[RecordedEvent]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[RecordedEvent]] = loop.create_future()
        self._queue.put(((commit, future), loop))
        return await future

    async def close(self) -> None:
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join)

    def _run(self) -> None:
        with self._engine.connect() as conn:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                batch = [item]
                stop = False
                while len(batch) < MAX_BATCH_COMMITS:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        stop = True
                        break
                    batch.append(more)
                self._write(conn, batch)
                if stop:
                    return

    def _write(self, conn: Connection, batch: list[tuple[Pending, asyncio.AbstractEventLoop]]
               ) -> None:
        commits = [commit for (commit, _), _ in batch]
        try:
            try:
                with conn.begin():
                    results = write_batch(conn, commits, self._inline)
            except Exception:  # noqa: BLE001 - retried one by one below
                with conn.begin():
                    results = write_each(conn, commits, self._inline)
        except Exception as error:  # noqa: BLE001 - the transaction itself failed
            log.error("session_store.write_failed", error=str(error), commits=len(commits))
            results = [error] * len(commits)
        last = max((r[-1].position for r in results if isinstance(r, list) and r), default=0)
        for ((_, future), loop), result in zip(batch, results, strict=True):
            loop.call_soon_threadsafe(_settle, future, result)
        if last:
            loops = {loop for _, loop in batch}
            for loop in loops:
                loop.call_soon_threadsafe(self._on_commit, last)


class TaskWriter:
    """PostgreSQL's writer: an asyncio task draining pending commits into one transaction each.

    Other processes (or other stores) write concurrently; the advisory lock
    taken by `write_batch` keeps their positions in commit order.
    """

    def __init__(self, engine: AsyncEngine, inline: Sequence[InlineApply],
                 on_commit: Callable[[int], None]) -> None:
        self._engine = engine
        self._inline = inline
        self._on_commit = on_commit
        self._queue: asyncio.Queue[Pending | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def submit(self, commit: Commit) -> list[RecordedEvent]:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="session-store-writer")
        future: asyncio.Future[list[RecordedEvent]] = asyncio.get_running_loop().create_future()
        await self._queue.put((commit, future))
        return await future

    async def close(self) -> None:
        if self._task is not None:
            await self._queue.put(None)
            await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            batch = [item]
            stop = False
            while len(batch) < MAX_BATCH_COMMITS and not self._queue.empty():
                more = self._queue.get_nowait()
                if more is None:
                    stop = True
                    break
                batch.append(more)
            await self._write(batch)
            if stop:
                return

    async def _write(self, batch: list[Pending]) -> None:
        commits = [commit for commit, _ in batch]
        try:
            try:
                async with self._engine.begin() as conn:
                    results = await conn.run_sync(write_batch, commits, self._inline)
            except Exception:  # noqa: BLE001 - retried one by one below
                async with self._engine.begin() as conn:
                    results = await conn.run_sync(write_each, commits, self._inline)
        except Exception as error:  # noqa: BLE001 - the transaction itself failed
            log.error("session_store.write_failed", error=str(error), commits=len(commits))
            results = [error] * len(commits)
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result)
        last = max((r[-1].position for r in results if isinstance(r, list) and r), default=0)
        if last:
            self._on_commit(last)
