"""One stored message, as `store.get_message` finds it: the message and where it stands."""

from __future__ import annotations

from typing import Any

import msgspec

from session_store.domain.events import Event, SessionKey


class StoredMessage(msgspec.Struct, frozen=True, kw_only=True):
    """A message of a session's log with its envelope, and whether it is still visible:
    `retracted` (`retract_message` took it back) or `cleared` (`clear_history` came
    after it) messages are no longer in `Session.events`, but the log keeps them."""

    message: Event
    app_name: str
    user_id: str
    session_id: str
    version: int
    position: int
    recorded_at: float
    retracted: bool = False
    cleared: bool = False

    @property
    def key(self) -> SessionKey:
        return SessionKey(self.app_name, self.user_id, self.session_id)

    @property
    def visible(self) -> bool:
        return not (self.retracted or self.cleared)

    @property
    def id(self) -> str:
        return self.message.id

    @property
    def role(self) -> str:
        return self.message.role

    @property
    def text(self) -> str | None:
        return self.message.text

    @property
    def timestamp(self) -> float:
        return self.message.timestamp

    @property
    def metadata(self) -> dict[str, Any]:
        return self.message.metadata
