"""LangChain messages in a thread's state, as the session's messages.

When a checkpoint changes the `messages` channel, each message of it whose id the thread
has not recorded yet becomes a `MessageAppended` (role from the message type, its text,
token usage from `usage_metadata`; `Event.native` names the LangChain id and the
namespace). The checkpoint stays the truth for LangGraph; these events are what history,
replay, analytics and the CLI show. A message removed or rewritten later in the state
is not taken back from the history.
"""

from __future__ import annotations

from typing import Any

from session_store.adapters.langgraph_threads import MESSAGE_KIND
from session_store.domain.events import Event, MessageAppended, Usage

ROLES = {"human": "user", "ai": "assistant", "tool": "tool", "system": "system",
         "developer": "system", "function": "tool"}


def message_text(content: Any) -> str | None:
    """The plain text of a message's content (a string, or the text parts of a list)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [part if isinstance(part, str) else part.get("text")
                 for part in content if isinstance(part, str | dict)]
        found = [t for t in texts if isinstance(t, str)]
        return "".join(found) if found else None
    return None


def _usage(message: Any) -> Usage | None:
    usage = getattr(message, "usage_metadata", None)
    if not isinstance(usage, dict):
        return None
    tokens_in, tokens_out = usage.get("input_tokens", 0), usage.get("output_tokens", 0)
    if not all(type(t) is int and 0 <= t <= 2**40 for t in (tokens_in, tokens_out)):
        return None
    meta = getattr(message, "response_metadata", None)
    model = meta.get("model_name") if isinstance(meta, dict) else None
    return Usage(tokens_in=tokens_in, tokens_out=tokens_out,
                 model=model if isinstance(model, str) else None)


def _clean(text: str | None) -> str | None:
    """`text` when it is valid Unicode without NUL (what every backend stores), else None."""
    if text is None or "\x00" in text:
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return text


def new_messages(value: Any, seen: set[str], ns: str) -> list[MessageAppended]:
    """The messages of a `messages` channel value not recorded yet (`seen`: their ids)."""
    if not isinstance(value, list):
        return []
    found = []
    for message in value:
        kind, message_id = getattr(message, "type", None), getattr(message, "id", None)
        if not isinstance(kind, str) or not isinstance(message_id, str) or message_id in seen:
            continue
        name = getattr(message, "name", None)
        role = ROLES.get(kind, "assistant")
        author = _clean(name) if isinstance(name, str) and name else role
        found.append(MessageAppended(message=Event(
            role=role, author=author or role, text=_clean(message_text(message.content)),
            usage=_usage(message),
            native={"kind": MESSAGE_KIND, "id": _clean(message_id) or "", "ns": ns})))
    return found
