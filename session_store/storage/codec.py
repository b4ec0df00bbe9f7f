"""What crosses the boundary between objects and rows: payloads, records, heads, hashes.

- Payloads are stored as compact JSON carrying their `type` tag. `encode_for_log`
  refuses (with `InvalidEvent`, naming the field) anything that would not read back
  as what was given; `decode_payload` lifts payloads of older schemas through the
  registered upcasters.
- Rows of the log table, in `RECORD_NAMES` order, become `RecordedEvent`s
  (`decode_row`, or `decode_rows` for a batch in one decoder call).
- `chain_hash` seals each event to the one before it in its stream; `anchor_hash`
  seals it to the one before it in the whole log (keyed when the store has a key).
- Session heads are stored as msgspec JSON (`encode_head`, `decode_head`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from session_store.domain import validation
from session_store.domain.events import (
    PAYLOAD_TYPES,
    AnyPayload,
    Payload,
    PayloadErased,
    PayloadUnreadable,
    RecordedEvent,
    SessionKey,
)
from session_store.domain.lifecycle import Head
from session_store.errors import CorruptEvent, InvalidEvent, SchemaError

RECORD_NAMES = ("position", "app_name", "user_id", "session_id", "version", "type", "schema",
                "data", "event_id", "recorded_at", "hash")
"""The log table's columns in the order every read selects them (`decode_row`'s order)."""
RECORD_LIST = ", ".join(RECORD_NAMES)

# --- payloads --------------------------------------------------------------------------

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

_encoder = msgspec.json.Encoder()
_decoders: dict[type, msgspec.json.Decoder[Any]] = {
    cls: msgspec.json.Decoder(cls) for cls in PAYLOAD_TYPES.values()
}
_union_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(AnyPayload)
_upcasters: dict[tuple[str, int], Upcaster] = {}


def register_upcaster(type_name: str, from_schema: int, upcaster: Upcaster) -> None:
    """Teach the codec to lift a `type_name` payload from `from_schema` to the next one.

    The upcaster takes and returns the payload as a plain dict; chains run
    until the current schema of the type is reached.
    """
    _upcasters[(type_name, from_schema)] = upcaster


def encode_payload(payload: Payload) -> bytes:
    """The payload as stored: compact JSON, including its `type` tag."""
    return _encoder.encode(payload)


def decode_payload(type_name: str, schema: int, data: bytes) -> AnyPayload:
    """Decode a stored payload, upcasting it first when it was written under an older schema."""
    if not data:
        return PayloadErased(original_type=type_name)
    cls = PAYLOAD_TYPES.get(type_name)
    if cls is None:
        raise SchemaError(f"unknown event type {type_name!r}: written by a newer session-store?")
    if schema == cls.schema:
        result: AnyPayload = _decoders[cls].decode(data)
        return result
    if schema > cls.schema:
        raise SchemaError(
            f"{type_name} schema {schema} is newer than this code's {cls.schema}; upgrade"
        )
    raw: dict[str, Any] = msgspec.json.decode(data)
    while schema < cls.schema:
        upcaster = _upcasters.get((type_name, schema))
        if upcaster is None:
            raise SchemaError(f"no upcaster registered for {type_name} schema {schema}")
        raw = upcaster(raw)
        schema += 1
    raw["type"] = type_name
    upcast: AnyPayload = msgspec.convert(raw, AnyPayload)
    return upcast


def decode_tagged(data: bytes) -> AnyPayload:
    """Decode a payload whose JSON carries its own `type` tag (exports, imports)."""
    result: AnyPayload = _union_decoder.decode(data)
    return result


def encode_for_log(payload: Payload, max_bytes: int) -> bytes:
    """The payload as the log stores it; `InvalidEvent` when it would not read back as given
    or is larger than `max_bytes`."""
    cls = type(payload)
    decoder = _decoders.get(cls)
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
    if len(data) > max_bytes:
        raise InvalidEvent(f"{cls.__name__} encodes to {len(data):,} bytes; the limit is "
                           f"{max_bytes:,} (max_event_bytes)")
    return data


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


# --- records ---------------------------------------------------------------------------

def decode_row(row: Any, *, tolerant: bool = False) -> RecordedEvent:
    """One log row (in `RECORD_NAMES` order) as a decoded `RecordedEvent`.

    A malformed payload raises `CorruptEvent` naming the position; `tolerant` (the read
    models' passes) reads it as `PayloadUnreadable` instead. A type or schema this release
    does not know stays a `SchemaError` either way: a newer release may fold it."""
    position, app, user, session, version, type_name, schema, data, event_id, at, digest = row
    try:
        payload: Any = decode_payload(type_name, schema, bytes(data))
    except (ValueError, TypeError) as error:  # malformed: msgspec's errors are ValueErrors
        if not tolerant:
            raise CorruptEvent(f"the event at position {position} ({type_name}) does not "
                               f"decode: {error}; run `session-store audit`",
                               position=position) from None
        payload = PayloadUnreadable(original_type=type_name, error=str(error))
    return RecordedEvent(
        position=position,
        app_name=app,
        user_id=user,
        session_id=session,
        version=version,
        type=type_name,
        data=payload,
        event_id=event_id,
        recorded_at=at,
        hash=digest,
    )


_many = msgspec.json.Decoder(list[AnyPayload])


def decode_rows(rows: Sequence[Any], *, tolerant: bool = False) -> list[RecordedEvent]:
    """Many log rows at once: the payloads in one decoder call when all are current.

    Rows with an erased payload, an older schema or an unknown type take the row-by-row
    path (`decode_row`, with `tolerant`), which upcasts or raises.
    """
    try:
        if any(not row[7] or getattr(PAYLOAD_TYPES.get(row[5]), "schema", None) != row[6]
               for row in rows):
            raise ValueError("not all current")
        payloads = _many.decode(b"[" + b",".join(row[7] for row in rows) + b"]")
        if any(type(p).__name__ != row[5] for p, row in zip(payloads, rows, strict=True)):
            raise ValueError("tag and type column disagree")
    except (ValueError, TypeError):  # msgspec.DecodeError is a ValueError
        return [decode_row(row, tolerant=tolerant) for row in rows]
    return [
        RecordedEvent(position=row[0], app_name=row[1], user_id=row[2], session_id=row[3],
                      version=row[4], type=row[5], data=payload, event_id=row[8],
                      recorded_at=row[9], hash=row[10])
        for row, payload in zip(rows, payloads, strict=True)
    ]


# --- the chain -------------------------------------------------------------------------

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


def anchor_hash(previous: str, position: int, event_hash: str, key: bytes | None = None) -> str:
    """The log-wide chain: each event's anchor seals its position and its stream hash (which
    covers its content) to the anchor before it, so deleting, reordering or rewriting any
    event changes every later anchor. With a `key` it is an HMAC: recomputing needs the key."""
    message = f"{previous}\x1f{position}\x1f{event_hash}".encode()
    if key is None:
        return hashlib.sha256(message).hexdigest()
    return hmac.digest(key, message, "sha256").hex()


def key_check(key: bytes) -> str:
    """What the database records of the anchor key: enough to tell a wrong key, not the key."""
    return hmac.digest(key, b"session-store anchor key check", "sha256").hex()[:32]


# --- session heads ---------------------------------------------------------------------

_head_encoder = msgspec.json.Encoder()
_head_decoder = msgspec.json.Decoder(Head)


def encode_head(head: Head) -> bytes:
    return _head_encoder.encode(head)


def decode_head(body: bytes) -> Head:
    return _head_decoder.decode(body)
