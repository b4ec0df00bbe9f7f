"""Export and import, lossless: a session's log as JSON Lines or one JSON document.

`export_session` writes every event of the session's stream as the log holds it (ids,
versions, types, payloads, `recorded_at`), so nothing is lost: `import_events` of it, into
this store or any other, appends what the target does not hold yet, keeping the event ids
and every original time (`SessionStore.import_records`), and reports how much it added.

- `format="jsonl"`: one `RecordedEvent` per line (what `session-store export` writes);
- `format="json"`: one document, `{"format": "session-store/session", "version": 1,
  "session": {app_name, user_id, session_id, created_at, last_update_time, expires_at},
  "events": [...]}` (the `session` part is informative: the events are the truth).

`import_events` takes either form as `str` or `bytes`, a parsed document (`dict`), a list
of documents, or `RecordedEvent`s; anything else, or a line that is not an exported
event, is `InvalidEvent` and nothing is written.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import msgspec

from session_store.appending import ImportReport
from session_store.domain import validation
from session_store.domain.events import RecordedEvent
from session_store.domain.lifecycle import fold_all
from session_store.errors import InvalidEvent, SessionNotFound
from session_store.log.eventlog import EventLog

FORMATS = ("jsonl", "json")
DOCUMENT = "session-store/session"
_encoder = msgspec.json.Encoder()
_record = msgspec.json.Decoder(RecordedEvent)


class _Document(msgspec.Struct, kw_only=True):
    format: str
    version: int = 1
    session: dict[str, Any] = {}
    events: list[RecordedEvent] = []


def encode_lines(records: Iterable[RecordedEvent]) -> bytes:
    return b"".join(_encoder.encode(record) + b"\n" for record in records)


def encode_document(records: list[RecordedEvent]) -> bytes:
    head = fold_all(records)
    about: dict[str, Any] = {}
    if head is not None:
        about = {"app_name": head.app_name, "user_id": head.user_id,
                 "session_id": head.session_id, "created_at": head.created_at,
                 "last_update_time": head.last_update_time, "expires_at": head.expires_at,
                 "status": head.status, "version": head.version}
    return _encoder.encode({"format": DOCUMENT, "version": 1, "session": about,
                            "events": records})


def decode(source: Any) -> list[RecordedEvent]:
    """The records of an export, in whichever form `import_events` accepts."""
    if isinstance(source, str):
        source = validation.check_text(source, "import source").encode()
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _decode_bytes(bytes(source))
    if isinstance(source, dict):
        return _document(source)
    if isinstance(source, Iterable):
        records: list[RecordedEvent] = []
        for item in source:
            if isinstance(item, RecordedEvent):
                records.append(item)
            elif isinstance(item, dict):
                records.extend(_document(item))
            else:
                raise InvalidEvent(f"import_events takes an export (str, bytes, a document or "
                                   f"RecordedEvents), not a list holding "
                                   f"{type(item).__name__}")
        return records
    raise InvalidEvent(f"import_events takes an export (str, bytes, a document or "
                       f"RecordedEvents), not {type(source).__name__}")


def _decode_bytes(data: bytes) -> list[RecordedEvent]:
    text = data.strip()
    if text.startswith(b"[") or (text.startswith(b"{") and b'"format"' in text[:200]
                                  and b"\n{" not in text):
        try:
            parsed = msgspec.json.decode(text)
        except msgspec.DecodeError as error:
            raise InvalidEvent(f"not an export: {error}") from None
        return decode(parsed if isinstance(parsed, list) else [parsed])
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(_record.decode(line))
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            raise InvalidEvent(f"line {number}: not an exported event ({error})") from None
    return records


def _document(data: dict[str, Any]) -> list[RecordedEvent]:
    try:
        found = msgspec.convert(data, _Document)
    except msgspec.ValidationError as error:
        raise InvalidEvent(f"not an exported session document: {error}") from None
    if found.format != DOCUMENT:
        raise InvalidEvent(f"not an exported session document: format {found.format!r}, "
                           f"expected {DOCUMENT!r}")
    return found.events


class Transfer:
    """`export_session` and `import_events` (mixed into `SessionStore`)."""

    log: EventLog
    import_records: Callable[[Iterable[RecordedEvent]], Awaitable[ImportReport]]

    async def export_session(self, *, app_name: str, user_id: str, session_id: str,
                             format: str = "jsonl") -> str:
        """The session's whole stream: JSON Lines of records (`jsonl`) or one JSON document
        (`json`); `SessionNotFound` when it has no events (or is deleted)."""
        key = validation.key_of(app_name, user_id, session_id)
        if format not in FORMATS:
            raise InvalidEvent(f"format must be 'jsonl' or 'json', not {format!r}")
        records = [record async for record in self.log.read_stream(key)]
        if not records:
            raise SessionNotFound(f"session {session_id!r} of user {user_id!r} in app "
                                  f"{app_name!r} has no events to export")
        encoded = encode_lines(records) if format == "jsonl" else encode_document(records)
        return encoded.decode()

    async def import_events(self, source: Any) -> ImportReport:
        """Append what `source` (an `export_session` result, in either format, or records)
        holds and this store does not, keeping ids and times: returns the `ImportReport`
        (`added`, `present`, `sessions_added`)."""
        return await self.import_records(decode(source))
