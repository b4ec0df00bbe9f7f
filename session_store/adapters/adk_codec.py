"""Google ADK events to store `Event`s and back, losslessly.

The ADK event travels whole, as its JSON text, in `Event.native`; the store's
own fields (role, author, text, usage, state delta, ...) are filled from it so
that history, search and analytics work without knowing ADK. Messages written
by something other than ADK (no native payload) are rebuilt as plain text events.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from google.adk.events.event import Event as AdkEvent
from google.adk.events.event_actions import EventActions
from google.adk.sessions.state import State
from google.genai import types
from pydantic_core import to_jsonable_python

from session_store.domain.events import Event, SessionKey, Usage

NATIVE_KIND = "google-adk/event"
"""`Event.native["kind"]` of messages written by this adapter."""

_ID_NAMESPACE = uuid.UUID("6f1c2a8e-3d5b-4e0a-9a7c-2b8f4d1e6c35")
_ID_NAMESPACE_BYTES = _ID_NAMESPACE.bytes


def store_event_id(key: SessionKey, adk_event_id: str) -> str:
    """The log's event id for an ADK event of one session.

    ADK event ids are unique only within their session, the log's are global;
    deriving ours from both keeps them distinct across sessions and makes a
    retried append (or a second import) an idempotent no-op.
    """
    name = "\x1f".join((key.app_name, key.user_id, key.session_id, adk_event_id))
    # uuid.uuid5, without building a UUID object (a fifth of an adapter append's codec work).
    digest = bytearray(hashlib.sha1(_ID_NAMESPACE_BYTES + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def json_safe_state(state: dict[str, Any]) -> dict[str, Any]:
    """`state` without `temp:` keys, as JSON data (what ADK's database services persist)."""
    kept = {k: v for k, v in state.items() if not k.startswith(State.TEMP_PREFIX)}
    try:
        safe: dict[str, Any] = to_jsonable_python(kept)
    except Exception:  # mirror ADK: values it cannot encode are kept as their repr
        safe = to_jsonable_python(kept, fallback=repr)
    return safe


def _role(event: AdkEvent) -> str:
    if event.author == "user":
        return "user"
    parts = event.content.parts if event.content and event.content.parts else []
    if any(part.function_response is not None for part in parts):
        return "tool"
    return "assistant"


def _text(event: AdkEvent) -> str | None:
    if event.content is None or not event.content.parts:
        return None
    texts = [part.text for part in event.content.parts if part.text and not part.thought]
    return "".join(texts) if texts else None


def _usage(event: AdkEvent) -> Usage | None:
    meta = event.usage_metadata
    if meta is None:
        return None
    return Usage(
        tokens_in=meta.prompt_token_count or 0,
        tokens_out=(meta.candidates_token_count or 0) + (meta.thoughts_token_count or 0),
        model=event.model_version,
    )


def to_store_event(key: SessionKey, event: AdkEvent) -> Event:
    """The store message for an ADK event (whose `temp:` delta is already trimmed).

    The ADK event is kept as its JSON text (what `SqliteSessionService` stores):
    pydantic reads that back several times faster than the equivalent dict.
    """
    delta = event.actions.model_dump(mode="json", include={"state_delta"}).get("state_delta")
    return Event(
        role=_role(event),
        author=event.author,
        text=_text(event),
        invocation_id=event.invocation_id or None,
        state_delta=delta or None,
        usage=_usage(event),
        native={"kind": NATIVE_KIND, "json": event.model_dump_json(exclude_none=True)},
        id=store_event_id(key, event.id),
        timestamp=event.timestamp,
    )


def from_store_event(message: Event) -> AdkEvent:
    """The ADK event a store message stands for."""
    native = message.native
    if isinstance(native, dict) and native.get("kind") == NATIVE_KIND:
        if "json" in native:
            return AdkEvent.model_validate_json(native["json"])
        return AdkEvent.model_validate(native["event"])
    content = None
    if message.text is not None:
        role = "user" if message.role == "user" else "model"
        content = types.Content(role=role, parts=[types.Part(text=message.text)])
    usage = None
    if message.usage is not None:
        usage = types.GenerateContentResponseUsageMetadata(
            prompt_token_count=message.usage.tokens_in,
            candidates_token_count=message.usage.tokens_out,
        )
    return AdkEvent(
        id=message.id,
        author=message.speaker,
        invocation_id=message.invocation_id or "",
        timestamp=message.timestamp,
        content=content,
        actions=EventActions(state_delta=dict(message.state_delta or {})),
        usage_metadata=usage,
        model_version=message.usage.model if message.usage else None,
    )
