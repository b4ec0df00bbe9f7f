"""The vocabulary: what can happen to a session, and the envelope it is recorded in.

Payloads are frozen `msgspec.Struct`s in one tagged union (the tag is the
class name, stored in the log's `type` column). Each payload type has a schema
version; an event stored under an older schema is upgraded on read by the
upcasters registered for its type, so the log never has to be rewritten.

The payloads, messages and the envelope are not tracked by Python's cyclic
garbage collector (`gc=False`): a read decodes thousands of them at once, and
tracking them made the collector run over and over, which doubled the cost of
decoding. They are frozen and a decoded one cannot refer to itself; only a
caller who puts an event inside its own state or parts would make a cycle, and
that memory would never be freed.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import msgspec

from session_store.errors import SchemaError


def new_id() -> str:
    """A fresh id (UUIDv7, canonical text form); see `new_ids`."""
    return new_ids(1)[0]


def new_ids(count: int) -> list[str]:
    """`count` fresh ids: time-ordered UUIDs (version 7, RFC 9562), canonical text form.

    The first 48 bits are the Unix time in milliseconds, so ids made one after
    another land next to each other in the log's unique event-id index: the index
    grows at its right edge instead of at random pages, and append cost stays flat
    as the log grows. The other 74 bits are random, cut from a pooled read of the
    OS random source: a `getrandom` call per id releases the GIL, which stalls the
    writer thread.
    """
    rand = _random_bytes(10 * count).hex()  # 80 random bits per id, 74 of them used
    stamp = f"{time.time_ns() // 1_000_000:012x}"
    head = f"{stamp[:8]}-{stamp[8:]}-7"  # version 7
    variant = _VARIANT
    return [f"{head}{rand[i:i + 3]}-{variant[rand[i + 3]]}{rand[i + 4:i + 7]}-{rand[i + 7:i + 19]}"
            for i in range(0, 20 * count, 20)]


_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}
"""A random hex digit to the RFC 9562 variant's (binary 10xx), keeping two random bits."""

_POOL_SIZE = 16 * 1024
_pool_lock = threading.Lock()
_pool = b""
_pool_offset = 0


def _random_bytes(count: int) -> bytes:
    global _pool, _pool_offset
    with _pool_lock:
        if _pool_offset + count > len(_pool):
            _pool, _pool_offset = os.urandom(max(_POOL_SIZE, count)), 0
        chunk = _pool[_pool_offset:_pool_offset + count]
        _pool_offset += count
        return chunk


def _forget_pool() -> None:
    """A forked child must not hand out the ids its parent will also hand out."""
    global _pool, _pool_offset, _pool_lock
    _pool, _pool_offset, _pool_lock = b"", 0, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)


class SessionKey(NamedTuple):
    """Identity of a session: every read and write is scoped by all three."""

    app_name: str
    user_id: str
    session_id: str


class Usage(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """Token usage of one model call."""

    tokens_in: int = 0
    tokens_out: int = 0
    model: str | None = None


class Event(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """One message of a conversation, as a runner appends it.

    `role` is who speaks in model terms (user, assistant, tool, system);
    `author` is the agent or user name (defaults to the role). `native` carries
    the runner's own representation where it must round-trip losslessly
    (e.g. a Google ADK event as JSON).
    """

    role: str
    text: str | None = None
    parts: list[Any] | None = None
    author: str = ""
    invocation_id: str | None = None
    state_delta: dict[str, Any] | None = None
    usage: Usage | None = None
    response_time: float | None = None
    native: Any = None
    id: str = msgspec.field(default_factory=new_id)
    timestamp: float = msgspec.field(default_factory=time.time)

    @property
    def speaker(self) -> str:
        return self.author or self.role


class Payload(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, tag=True, gc=False):
    """Base of every recorded payload; `schema` is the payload's shape version."""

    schema: ClassVar[int] = 1


class SessionCreated(Payload, frozen=True):
    state: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    tags: list[str] = []
    timeout: float | None = None


class MessageAppended(Payload, frozen=True):
    message: Event


class MessageRetracted(Payload, frozen=True):
    """A message taken back (OpenAI Agents' `pop_item`); history no longer shows it."""

    message_id: str


class StateChanged(Payload, frozen=True):
    delta: dict[str, Any]


class MetadataChanged(Payload, frozen=True):
    patch: dict[str, Any]
    merge: bool = True


class InteractionTracked(Payload, frozen=True):
    tokens_in: int = 0
    tokens_out: int = 0
    response_time: float = 0.0
    model: str | None = None


class SessionArchived(Payload, frozen=True):
    reason: str | None = None


class SessionReactivated(Payload, frozen=True):
    pass


class SessionEnded(Payload, frozen=True):
    reason: str | None = None


class SessionExpired(Payload, frozen=True):
    idle_seconds: float = 0.0


class HistoryCleared(Payload, frozen=True):
    pass


class SessionDeleted(Payload, frozen=True):
    """Tombstone: the session is hidden everywhere and its id is never reused."""


class SessionPurged(Payload, frozen=True):
    """The payloads of this stream were erased; the fact that they existed is kept."""

    reason: str | None = None


class PayloadErased(Payload, frozen=True):
    """What a purged event's payload reads as: only its original type survives."""

    original_type: str


AnyPayload = (
    SessionCreated
    | MessageAppended
    | MessageRetracted
    | StateChanged
    | MetadataChanged
    | InteractionTracked
    | SessionArchived
    | SessionReactivated
    | SessionEnded
    | SessionExpired
    | HistoryCleared
    | SessionDeleted
    | SessionPurged
    | PayloadErased
)

PAYLOAD_TYPES: dict[str, type[Payload]] = {
    cls.__name__: cls
    for cls in (
        SessionCreated,
        MessageAppended,
        MessageRetracted,
        StateChanged,
        MetadataChanged,
        InteractionTracked,
        SessionArchived,
        SessionReactivated,
        SessionEnded,
        SessionExpired,
        HistoryCleared,
        SessionDeleted,
        SessionPurged,
        PayloadErased,
    )
}


class RecordedEvent(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """An event as the log holds it: payload plus envelope.

    `position` is global and strictly increasing in commit order (gaps are
    allowed); `version` counts 1..n within the session without gaps; `hash`
    chains each event to the previous one of its session.
    """

    position: int
    app_name: str
    user_id: str
    session_id: str
    version: int
    type: str
    data: AnyPayload
    event_id: str
    recorded_at: float
    hash: str

    @property
    def key(self) -> SessionKey:
        return SessionKey(self.app_name, self.user_id, self.session_id)


# --- codec -------------------------------------------------------------------

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

_encoder = msgspec.json.Encoder()
_decoders: dict[str, msgspec.json.Decoder[Any]] = {
    name: msgspec.json.Decoder(cls) for name, cls in PAYLOAD_TYPES.items()
}
_union_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(AnyPayload)
_upcasters: dict[tuple[str, int], Upcaster] = {}


def register_upcaster(type_name: str, from_schema: int, upcaster: Upcaster) -> None:
    """Teach the codec to lift a `type_name` payload from `from_schema` to the next one.

    The upcaster takes and returns the payload as a plain dict; chains run
    until the current schema of the type is reached.
    """
    _upcasters[(type_name, from_schema)] = upcaster


def type_name(payload: Payload) -> str:
    return type(payload).__name__


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
        result: AnyPayload = _decoders[type_name].decode(data)
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
