"""OpenAI Agents SDK `Session` backed by the event log.

    from session_store.adapters.openai_agents import EventSourcedSession
    session = EventSourcedSession("conversation-1", store=store)
    await Runner.run(agent, "Hello", session=session)

Each input item becomes one `MessageAppended` (the item itself travels in
`Event.native`, so `get_items` returns it unchanged); `pop_item` appends a
`MessageRetracted` and `clear_session` a `HistoryCleared`: the log keeps
everything, the history read model honours both.

`session_settings` is normalised as the SDK's own sessions do (`coerce_session_settings`:
a dict becomes `SessionSettings`, an unknown field is a `TypeError`). The session may be
used from any event loop and thread (`Runner.run_sync` in worker threads, each with a
loop of its own): on a store bound to its loop (PostgreSQL) the calls are handed to it.
"""

from __future__ import annotations

import contextlib
from typing import Any, cast

from agents.items import TResponseInputItem
from agents.memory.session import SessionABC
from agents.memory.session_settings import (
    SessionSettings,
    coerce_session_settings,
    resolve_session_limit,
)
from pydantic_core import to_jsonable_python

from session_store.domain.events import Event, MessageAppended, SessionKey
from session_store.domain.snapshot import Session
from session_store.errors import ConcurrencyError, SessionAlreadyExists
from session_store.home_loop import on_home_loop
from session_store.store import SessionStore

NATIVE_KIND = "openai-agents/item"
"""`Event.native["kind"]` of messages written by this adapter."""

DEFAULT_APP = "openai-agents"
DEFAULT_USER = "default"
_POP_ATTEMPTS = 20


def item_role(item: dict[str, Any]) -> str:
    """The store role of an input item: its own role, or what its type implies."""
    role = item.get("role")
    if isinstance(role, str):
        return "system" if role == "developer" else role
    kind = str(item.get("type", ""))
    return "tool" if kind.endswith("_output") else "assistant"


def item_text(item: dict[str, Any]) -> str | None:
    """The plain text of an input item, when it has any."""
    content = item.get("content")
    if content is None and str(item.get("type", "")).endswith("_output"):
        content = item.get("output")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict)]
        found = [t for t in texts if isinstance(t, str)]
        return "".join(found) if found else None
    return None


def to_event(item: TResponseInputItem) -> Event:
    plain: dict[str, Any] = to_jsonable_python(item)
    return Event(
        role=item_role(plain),
        text=item_text(plain),
        native={"kind": NATIVE_KIND, "item": plain},
    )


def to_item(message: Event) -> TResponseInputItem:
    native = message.native
    if isinstance(native, dict) and native.get("kind") == NATIVE_KIND:
        return cast(TResponseInputItem, native["item"])
    role = message.role if message.role in ("user", "assistant", "system") else "assistant"
    return cast(TResponseInputItem, {"role": role, "content": message.text or ""})


class EventSourcedSession(SessionABC):
    """One conversation of the Agents SDK, stored as a session of the log.

    The SDK names sessions by id alone; `app_name` and `user_id` place it among
    the store's sessions (defaults: "openai-agents", "default"). The session is
    created on the first `add_items`.
    """

    def __init__(
        self,
        session_id: str,
        *,
        store: SessionStore,
        app_name: str = DEFAULT_APP,
        user_id: str = DEFAULT_USER,
        session_settings: SessionSettings | dict[str, Any] | None = None,
    ) -> None:
        self.session_id = session_id
        self.session_settings = (coerce_session_settings(session_settings)
                                 if session_settings is not None else SessionSettings())
        self.store = store
        self.key = SessionKey(app_name, user_id, session_id)
        self._created = False

    async def _load(self, limit: int | None) -> Session | None:
        app_name, user_id, session_id = self.key
        return await self.store.get_session(
            app_name=app_name, user_id=user_id, session_id=session_id, num_recent_events=limit
        )

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        return await on_home_loop(self.store.home_loop, self._get_items(limit))

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        await on_home_loop(self.store.home_loop, self._add_items(items))

    async def pop_item(self) -> TResponseInputItem | None:
        return await on_home_loop(self.store.home_loop, self._pop_item())

    async def clear_session(self) -> None:
        await on_home_loop(self.store.home_loop, self._clear_session())

    async def _get_items(self, limit: int | None) -> list[TResponseInputItem]:
        limit = resolve_session_limit(limit, self.session_settings)
        if limit is not None and limit <= 0:
            return []  # as the SDK's sessions: no items for 0 or a negative limit
        session = await self._load(limit)
        if session is None:
            return []
        return [to_item(message) for message in session.messages]

    async def _add_items(self, items: list[TResponseInputItem]) -> None:
        if not items:
            return
        await self._ensure_created()
        events = [to_event(item) for item in items]
        # One append for the whole batch: the items land together or not at all.
        await self.store.append_events(self.key, events)

    async def _pop_item(self) -> TResponseInputItem | None:
        for _ in range(_POP_ATTEMPTS):
            session = await self._load(1)
            if session is None or not session.events:
                return None
            newest = session.events[-1].data
            assert isinstance(newest, MessageAppended)
            try:
                await self.store.retract_message(self.key, newest.message.id,
                                                 expected_version=session.version)
            except ConcurrencyError:
                continue  # an item was added meanwhile: pop the newest one, not this one
            return to_item(newest.message)
        raise ConcurrencyError(
            f"pop_item lost the race {_POP_ATTEMPTS} times in a row on {self.session_id!r}"
        )

    async def _clear_session(self) -> None:
        if await self._load(0) is None:
            return
        await self.store.clear_history(self.key)

    async def _ensure_created(self) -> None:
        if self._created:
            return
        app_name, user_id, session_id = self.key
        with contextlib.suppress(SessionAlreadyExists):
            await self.store.create_session(
                app_name=app_name, user_id=user_id, session_id=session_id
            )
        self._created = True
