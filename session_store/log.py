"""The event log: append to session streams, read them back, follow the whole log.

`EventLog` is the only writer of the log tables. Appends are validated and
encoded in the caller's task, then handed to the dialect's group-commit writer
(`session_store.writer`). Reads stream in keyset-paged batches, so memory stays
bounded however long the log is.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

import msgspec
import sqlalchemy as sa
import structlog

from session_store import validation
from session_store.database import Database
from session_store.errors import InvalidEvent, StoreUnavailable
from session_store.events import (
    PAYLOAD_TYPES,
    Payload,
    RecordedEvent,
    SessionKey,
    encode_payload,
    new_id,
    new_ids,
)
from session_store.records import RECORD_COLUMNS, decode_rows
from session_store.schema import events, prepare, streams
from session_store.writer import Append, InlineApply, TaskWriter, ThreadWriter

log = structlog.get_logger(__name__)

ANY: None = None
"""`expected_version` that accepts whatever version the stream is at."""
NO_STREAM = 0
"""`expected_version` that requires the stream not to exist yet."""

READ_BATCH = 1000


class EventLog:
    """Append and read over the log table of one database."""

    def __init__(self, db: Database, *, inline: Sequence[InlineApply] = (),
                 max_event_bytes: int = validation.DEFAULT_MAX_EVENT_BYTES) -> None:
        self.db = db
        self.max_event_bytes = max_event_bytes
        self._inline = list(inline)
        self._writer: ThreadWriter | TaskWriter | None = None
        self._closed = False
        self._last_position = 0
        self._appended = asyncio.Event()

    # --- lifecycle -------------------------------------------------------------

    async def prepare(self) -> None:
        """Create or upgrade the log tables (safe to call from several processes at once)."""
        await self.run_schema(prepare)

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
            if self.db.write_engine is not None:
                self._writer = ThreadWriter(self.db.write_engine, self._inline, self._committed)
            else:
                self._writer = TaskWriter(self.db.engine, self._inline, self._committed)
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
                       erase: bool = False) -> Append:
        """Validate and encode events for one stream; raises `InvalidEvent`, writes nothing."""
        for part, what in zip(key, ("app_name", "user_id", "session_id"), strict=True):
            if part == "" and what != "app_name":
                continue  # "" marks the app- and user-scoped state streams
            validation.check_id(part, what)
        if not payloads:
            raise InvalidEvent("an append needs at least one event")
        if expected_version is not None and (
            isinstance(expected_version, bool) or not isinstance(expected_version, int)
            or expected_version < 0
        ):
            raise InvalidEvent(f"expected_version must be an int >= 0 or None, "
                               f"not {expected_version!r}")
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
        encoded = tuple(self._encode(p) for p in payloads)
        return Append(key=SessionKey(*key), payloads=tuple(payloads), encoded=encoded,
                      event_ids=tuple(ids), expected_version=expected_version,
                      caller_ids=any(i is not None for i in given), erase=erase)

    def _encode(self, payload: Payload) -> bytes:
        cls = type(payload)
        decoder = _DECODERS.get(cls)
        if decoder is None:
            if not isinstance(payload, Payload):
                raise InvalidEvent(f"not an event payload: {cls.__name__}")
            raise InvalidEvent(f"{cls.__name__} is not in the event vocabulary (PAYLOAD_TYPES): "
                               "it could be written but never read back")
        # Fast path: if what is stored reads back equal to what was given, the payload is
        # JSON all the way down (NaN, bytes, sets, non-str keys, wrong field types and
        # objects all fail to encode or read back as something else). Anything else goes
        # the slow way, which names the offending field.
        try:
            data = encode_payload(payload)
            clean = (data.count(b"[") + data.count(b"{") <= validation.MAX_JSON_DEPTH
                     and decoder.decode(data) == payload)
        except Exception:  # noqa: BLE001 - the slow path below says what is wrong
            clean = False
        if not clean:
            data = _encode_checked(payload, decoder)
        if len(data) > self.max_event_bytes:
            raise InvalidEvent(f"{cls.__name__} encodes to {len(data):,} bytes; the limit is "
                               f"{self.max_event_bytes:,} (max_event_bytes)")
        return data

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
                       user_id: str | None = None, batch_size: int = READ_BATCH
                       ) -> AsyncIterator[RecordedEvent]:
        """Every event from `from_position` (inclusive) in global order, optionally filtered."""
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
            for record in decode_rows(rows):
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
        query = sa.select(streams.c.version).where(
            streams.c.app_name == key[0], streams.c.user_id == key[1],
            streams.c.session_id == key[2])
        async with self.db.engine.connect() as conn:
            return (await conn.execute(query)).scalar() or 0

    async def last_position(self) -> int:
        """The position of the newest committed event (0 for an empty log)."""
        async with self.db.engine.connect() as conn:
            return (await conn.execute(sa.select(sa.func.max(events.c.position)))).scalar() or 0

    def _select(self, where: str, order: str) -> str:
        """A keyset-paged read of whole records; `?` placeholders, the last one the limit."""
        query = f"SELECT {_COLUMNS} FROM ss_events WHERE {where} ORDER BY {order} LIMIT ?"
        if self.db.dialect == "postgresql":
            parts = query.split("?")
            query = "".join(f"{part}${n}" for n, part in enumerate(parts[:-1], 1)) + parts[-1]
        return query

    async def _rows(self, query: str, params: list[Any]) -> Sequence[Any]:
        """Run a read on the driver connection: rows as plain tuples (records on asyncpg),
        without SQLAlchemy's per-row result processing. Reads are single statements, so
        they see one consistent snapshot without an explicit transaction."""
        async with self.db.engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            if self.db.dialect == "postgresql":
                rows: Sequence[Any] = await raw.fetch(query, *params)  # type: ignore[union-attr]
                return rows
            cursor = await raw.execute(query, params)  # type: ignore[union-attr]
            try:
                return await cursor.fetchall()  # type: ignore[no-any-return]
            finally:
                await cursor.close()


_COLUMNS = ", ".join(column.name for column in RECORD_COLUMNS)

_DECODERS: dict[type, msgspec.json.Decoder[Any]] = {
    cls: msgspec.json.Decoder(cls) for cls in PAYLOAD_TYPES.values()
}


def _encode_checked(payload: Payload, decoder: msgspec.json.Decoder[Any]) -> bytes:
    """Encode `payload` field by field, raising `InvalidEvent` that names what is wrong."""
    name = type(payload).__name__
    for field in payload.__struct_fields__:
        _check_field(getattr(payload, field), f"{name}.{field}")
    try:
        data = encode_payload(payload)
        decoded = decoder.decode(data)  # what is stored must read back
    except (msgspec.ValidationError, TypeError, ValueError) as error:
        raise InvalidEvent(f"{name} does not match its schema: {error}") from None
    _check_struct_types(payload, decoded, name)
    return data


def _check_field(value: Any, what: str) -> None:
    if isinstance(value, msgspec.Struct):
        for field in value.__struct_fields__:
            _check_field(getattr(value, field), f"{what}.{field}")
    else:
        validation.check_json(value, what)


def _check_struct_types(given: Any, decoded: Any, what: str) -> None:
    """A field typed as a struct must hold that struct, not a dict that happens to fit it."""
    for field in decoded.__struct_fields__:
        want, have = getattr(decoded, field), getattr(given, field)
        if isinstance(want, msgspec.Struct):
            if type(have) is not type(want):
                raise InvalidEvent(f"{what}.{field} must be a {type(want).__name__}, "
                                   f"not {type(have).__name__}")
            _check_struct_types(have, want, f"{what}.{field}")
