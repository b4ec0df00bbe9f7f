"""Messages one by one: `get_message`, and the check that a retraction names a message.

A message is found by its id through the log's event-id index (what `append_event(s)` and
imports store a message under); a message appended under another event id (an adapter's
`append_payloads`) is found through the history read model's message-id index instead.
Never a scan of the session.
"""

from __future__ import annotations

from projections.history import History
from session_store import reads
from session_store.domain import validation
from session_store.domain.events import SessionKey
from session_store.domain.messages import StoredMessage
from session_store.errors import MessageNotFound, SessionNotFound
from session_store.storage.database import Database


async def get_message(db: Database, history: History, key: SessionKey,
                      message_id: str) -> StoredMessage:
    """The message `message_id` of the session, visible or not (`retracted`, `cleared`);
    `MessageNotFound` when the session holds none, `SessionNotFound` without the session."""
    validation.check_id(message_id, "message_id")
    head, found = await reads.find_message(db, key, message_id)
    if head is None or head.deleted:
        raise SessionNotFound(f"session {key.session_id!r} of user {key.user_id!r} in app "
                              f"{key.app_name!r} does not exist")
    if found is None:
        position = await history.position_of(app_name=key.app_name, user_id=key.user_id,
                                             session_id=key.session_id, message_id=message_id)
        if position is not None:
            _, found = await reads.find_message(db, key, message_id, position)
    if found is None:
        raise MessageNotFound(f"session {key.session_id!r} has no message {message_id!r}")
    return found


async def visible_message(db: Database, history: History, key: SessionKey,
                          message_id: str) -> StoredMessage:
    """`get_message`, refusing a message that is no longer visible (what a retraction
    may name)."""
    found = await get_message(db, history, key, message_id)
    if not found.visible:
        why = "was retracted already" if found.retracted else "was cleared from the history"
        raise MessageNotFound(f"message {message_id!r} of session {key.session_id!r} {why}")
    return found


class MessageReads:
    """`get_message` (mixed into `SessionStore`)."""

    db: Database
    history: History

    async def get_message(self, *, app_name: str, user_id: str, session_id: str,
                          message_id: str) -> StoredMessage:
        """The message `message_id` of the session with its envelope and whether it is
        still visible (`retracted`, `cleared`); `MessageNotFound` (a `SessionNotFound`)
        when the session holds no such message."""
        key = validation.key_of(app_name, user_id, session_id)
        return await get_message(self.db, self.history, key, message_id)
