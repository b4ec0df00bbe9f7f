"""The event log: append to session streams, read them back, follow the whole log.

`EventLog` is the only writer of the log tables. Appends are validated and
encoded in the caller's task, then handed to the store's group-commit writer
(`session_store.log.writers`). Reads stream in keyset-paged batches, so memory stays
bounded however long the log is.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from session_store.domain import validation
from session_store.domain.events import Payload, RecordedEvent, SessionKey
from session_store.domain.ids import new_id, new_ids
from session_store.errors import InvalidEvent, StoreUnavailable
from session_store.log import ANY
from session_store.log.batching import Append, InlineApply
from session_store.log.task_writer import TaskWriter
from session_store.log.writers import ThreadWriter
from session_store.logs import get_logger
from session_store.storage import schema
from session_store.storage.codec import RECORD_LIST, decode_rows, encode_for_log
from session_store.storage.database import Database

log = get_logger(__name__)


READ_BATCH = 1000


class EventLog:
    """Append and read over the log table of one database."""

    def __init__(self, db: Database, *, inline: Sequence[InlineApply] = (),
                 max_event_bytes: int = validation.DEFAULT_MAX_EVENT_BYTES,
                 anchor_key: bytes | None = None) -> None:
        self.db = db
        self.max_event_bytes = max_event_bytes
        self.anchor_key = anchor_key
        """The HMAC key of the log-wide anchors (None: plain SHA-256)."""
        self.prepared = schema.Prepared()
        """What `prepare` found: where keyed anchors start, triggers it put back."""
        self._inline = list(inline)
        self._writer: ThreadWriter | TaskWriter | None = None
        self._closed = False
        self._last_position = 0
        self._appended = asyncio.Event()

    # --- lifecycle -------------------------------------------------------------

    async def prepare(self) -> None:
        """Create or upgrade the log tables (safe to call from several processes at once)."""
        self.prepared = await self.run_schema(schema.prepare, self.db.dialect, self.anchor_key)

    def anchor_key_at(self, position: int) -> bytes | None:
        """The key `position`'s anchor is sealed with (None before keying started)."""
        keyed_from = self.prepared.keyed_from
        return self.anchor_key if keyed_from is not None and position >= keyed_from else None

    async def tail(self) -> tuple[int, str]:
        """The log's last position and its stored anchor: the digest of the log."""
        rows = await self.db.dialect.fetch(
            self.db, "SELECT position, anchor FROM ss_events ORDER BY position DESC LIMIT 1", [])
        return (rows[0][0], rows[0][1]) if rows else (0, "")

    async def run_schema(self, function: Any, *args: Any) -> Any:
        """Run `function(sync_connection, *args)` in a write transaction (DDL, migrations,
        catch-up folds); on SQLite in turn with the appends once the writer runs."""
        if isinstance(self._writer, ThreadWriter) and not self._closed:
            return await self._writer.run(function, *args)
        if self.db.write_engine is not None:
            engine = self.db.write_engine

            def run() -> Any:
                with engine.begin() as conn:
                    return function(conn, *args)

            return await asyncio.to_thread(run)
        async with self.db.engine.begin() as conn:
            # asyncpg begins the transaction at the first statement SQLAlchemy sends; without
            # one, what `function` sends through the raw driver would commit as it goes.
            await conn.exec_driver_sql("SELECT 1")
            return await conn.run_sync(function, *args)

    def add_inline(self, apply: InlineApply) -> None:
        """Register an inline projection; only before the first append."""
        if self._writer is not None:
            raise RuntimeError("inline projections must be registered before the first append")
        self._inline.append(apply)

    async def close(self) -> None:
        """Stop the writer; appends still pending are written, later ones refused."""
        self._closed = True
        if self._writer is not None:
            await self._writer.close()  # the closed writer stays: it refuses late appends

    def _get_writer(self) -> ThreadWriter | TaskWriter:
        if self._writer is None:
            if self._closed:
                raise StoreUnavailable("the store is closed: open it again to append")
            if self.db.dialect.single_writer:
                assert self.db.write_engine is not None
                self._writer = ThreadWriter(self.db.write_engine, self._inline, self._committed,
                                            anchor_key=self.anchor_key)
            else:
                self._writer = TaskWriter(self.db.engine, self._inline, self._committed,
                                          anchor_key=self.anchor_key)
        return self._writer

    def _committed(self, position: int) -> None:
        if position > self._last_position:
            self._last_position = position
            self._appended.set()
            self._appended = asyncio.Event()

    # --- append ----------------------------------------------------------------

    def prepare_append(self, key: SessionKey, payloads: Sequence[Payload], *,
                       expected_version: int | None = ANY,
                       event_ids: Sequence[str | None] | None = None,
                       erase: bool = False,
                       recorded_at: Sequence[float] | None = None) -> Append:
        """Validate and encode events for one stream; raises `InvalidEvent`, writes nothing.
        `recorded_at` keeps each event's original time (an import); the chain hash covers
        it like any other."""
        key = validation.check_stream_key(key)
        if not payloads:
            raise InvalidEvent("an append needs at least one event")
        validation.check_expected_version(expected_version)
        given = list(event_ids) if event_ids is not None else [None] * len(payloads)
        if len(given) != len(payloads):
            raise InvalidEvent("event_ids must name one id per event")
        if event_ids is None:
            ids = new_ids(len(payloads))
        else:
            ids = [validation.check_id(i, "event id") if i is not None else new_id()
                   for i in given]
        if len(set(ids)) != len(ids):
            raise InvalidEvent("an append carries the same event id twice")
        for payload in payloads:  # what the read models store must fit every backend
            validation.check_numbers(payload)
            validation.check_payload_ids(payload)
        times: tuple[float, ...] = ()
        if recorded_at is not None:
            if len(recorded_at) != len(payloads):
                raise InvalidEvent("recorded_at must give one time per event")
            for at in recorded_at:
                validation.check_timestamp(at, "recorded_at")
            times = tuple(float(at) for at in recorded_at)
        encoded = tuple(encode_for_log(p, self.max_event_bytes) for p in payloads)
        return Append(key=key, payloads=tuple(payloads), encoded=encoded,
                      event_ids=tuple(ids), expected_version=expected_version,
                      caller_ids=any(i is not None for i in given), erase=erase,
                      recorded_at=times)

    async def append(self, key: SessionKey, payloads: Sequence[Payload], *,
                     expected_version: int | None = ANY,
                     event_ids: Sequence[str | None] | None = None) -> list[RecordedEvent]:
        """Append events to one stream in one transaction; returns them as recorded.

        Raises `ConcurrencyError` when `expected_version` is stale. When every
        event id is already stored, returns the stored records and writes nothing.
        """
        append = self.prepare_append(key, payloads, expected_version=expected_version,
                                     event_ids=event_ids)
        return await self.commit([append])

    async def commit(self, appends: Sequence[Append]) -> list[RecordedEvent]:
        """Append to several streams atomically: all land, or none does."""
        return await self._get_writer().submit(tuple(appends))

    # --- read ------------------------------------------------------------------

    async def read_stream(self, key: SessionKey, *, from_version: int = 1,
                          to_version: int | None = None) -> AsyncIterator[RecordedEvent]:
        """The events of one session in version order, `from_version`..`to_version` inclusive."""
        version = from_version
        where = "app_name = ? AND user_id = ? AND session_id = ?"
        params: list[Any] = [key[0], key[1], key[2]]
        if to_version is not None:
            where += " AND version <= ?"
            params.append(to_version)
        query = self._select(where + " AND version >= ?", "version")
        while True:
            rows = await self._rows(query, [*params, version, READ_BATCH])
            for record in decode_rows(rows):
                yield record
            if len(rows) < READ_BATCH:
                return
            version = rows[-1][4] + 1

    async def read_all(self, *, from_position: int = 0, limit: int | None = None,
                       types: Iterable[str] | None = None, app_name: str | None = None,
                       user_id: str | None = None, batch_size: int = READ_BATCH,
                       tolerant: bool = False) -> AsyncIterator[RecordedEvent]:
        """Every event from `from_position` (inclusive) in global order, optionally filtered.

        A payload that does not decode raises `CorruptEvent`; with `tolerant` (the read
        models' followers) it reads as `PayloadUnreadable`."""
        position = from_position
        remaining = limit
        where = ""
        params: list[Any] = []
        if types is not None:
            type_list = list(types)
            if not type_list:
                return
            where += f"type IN ({', '.join('?' * len(type_list))}) AND "
            params.extend(type_list)
        if app_name is not None:
            where += "app_name = ? AND "
            params.append(app_name)
        if user_id is not None:
            where += "user_id = ? AND "
            params.append(user_id)
        query = self._select(where + "position >= ?", "position")
        while remaining is None or remaining > 0:
            size = batch_size if remaining is None else min(batch_size, remaining)
            rows = await self._rows(query, [*params, position, size])
            for record in decode_rows(rows, tolerant=tolerant):
                yield record
            if remaining is not None:
                remaining -= len(rows)
            if len(rows) < size:
                return
            position = rows[-1][0] + 1

    async def subscribe(self, *, from_position: int = 0, types: Iterable[str] | None = None,
                        app_name: str | None = None, user_id: str | None = None,
                        poll_interval: float = 0.25) -> AsyncIterator[RecordedEvent]:
        """Catch up from `from_position`, then follow new events as they commit; never ends.

        Appends of this process wake the follower at once; appends of other
        processes are seen within `poll_interval` seconds. Positions become
        visible in order, so following by position never skips an event.
        """
        position = from_position
        type_list = list(types) if types is not None else None
        while True:
            known = self._last_position  # an append committing during the read is past it
            seen = False
            async for record in self.read_all(from_position=position, types=type_list,
                                              app_name=app_name, user_id=user_id):
                seen = True
                position = record.position + 1
                yield record
            if not seen:
                await self.wait_past(known, poll_interval)

    async def wait_past(self, position: int, timeout: float) -> None:
        """Return once an append of this process has committed past `position`, or after
        `timeout` seconds (appends of other processes wake nobody: poll)."""
        woken = self._appended
        if self._last_position > position:
            return
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
        # cancellation that races its timeout, and the waiter never stops.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await woken.wait()

    async def stream_version(self, key: SessionKey) -> int:
        """The stream's current version (0 when it does not exist)."""
        rows = await self.db.dialect.fetch(self.db, _STREAM_VERSION, list(key))
        return int(rows[0][0]) if rows else 0

    async def last_position(self) -> int:
        """The position of the newest committed event (0 for an empty log)."""
        rows = await self.db.dialect.fetch(self.db, "SELECT max(position) FROM ss_events", ())
        return int(rows[0][0] or 0)

    async def count(self) -> int:
        """How many events the log holds."""
        rows = await self.db.dialect.fetch(self.db, "SELECT count(*) FROM ss_events", ())
        return int(rows[0][0])

    def _select(self, where: str, order: str) -> str:
        """A keyset-paged read of whole records; `?` placeholders, the last one the limit."""
        return f"SELECT {RECORD_LIST} FROM ss_events WHERE {where} ORDER BY {order} LIMIT ?"

    async def _rows(self, query: str, params: list[Any]) -> Sequence[Any]:
        return await self.db.dialect.fetch(self.db, query, params)


_STREAM_VERSION = ("SELECT version FROM ss_streams WHERE app_name = ? AND user_id = ? "
                   "AND session_id = ?")
