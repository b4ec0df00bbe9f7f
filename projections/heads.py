"""Session heads: the current state of every session, one row each.

The fold (`fold`) is the single place that knows what each event does to a
session. It serves the inline read model (`HeadsProjection`), full rebuilds,
`replay` and time travel (`at_version`). Run inline, it is also where the
session's invariants are enforced inside the append transaction: no events
before `SessionCreated`, nothing after `SessionEnded` or `SessionDeleted`.

State keys follow the ADK scopes: the session stream folds its own keys; the
app stream `(app, "", "")` folds `app:` keys and the user stream
`(app, user, "")` folds `user:` keys. `temp:` keys never reach the log.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from session_store.errors import SessionAlreadyExists, SessionClosed, SessionNotFound
from session_store.events import (
    HistoryCleared,
    InteractionTracked,
    MessageAppended,
    MessageRetracted,
    MetadataChanged,
    PayloadErased,
    RecordedEvent,
    SessionArchived,
    SessionCreated,
    SessionDeleted,
    SessionEnded,
    SessionExpired,
    SessionKey,
    SessionPurged,
    SessionReactivated,
    StateChanged,
)
from session_store.schema import upsert

ACTIVE, ARCHIVED, ENDED, EXPIRED = "active", "archived", "ended", "expired"
APP_PREFIX, USER_PREFIX, TEMP_PREFIX = "app:", "user:", "temp:"


def scope_of(key: SessionKey) -> str:
    """'app', 'user' or 'session': which state keys a stream folds."""
    if key.session_id:
        return "session"
    return "user" if key.user_id else "app"


def scope_stream(key: SessionKey, scope: str) -> SessionKey:
    """The stream holding `scope` ('app' or 'user') state for a session's app and user."""
    return SessionKey(key.app_name, key.user_id if scope == "user" else "", "")


def key_scope(state_key: str) -> str:
    if state_key.startswith(APP_PREFIX):
        return "app"
    if state_key.startswith(USER_PREFIX):
        return "user"
    if state_key.startswith(TEMP_PREFIX):
        return "temp"
    return "session"


class Head(msgspec.Struct, kw_only=True):
    """A session (or a scope stream) as folded so far."""

    app_name: str
    user_id: str
    session_id: str
    version: int = 0
    status: str = ACTIVE
    state: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    tags: list[str] = []
    timeout: float | None = None
    created_at: float = 0.0
    last_update_time: float = 0.0
    deleted: bool = False
    purged: bool = False
    history_from: int = 0
    """Messages at versions after this one are the visible history (HistoryCleared moves it)."""
    retracted: list[str] = []
    message_count: int = 0
    tracked_interactions: int = 0
    tracked_tokens_in: int = 0
    tracked_tokens_out: int = 0
    tracked_response_time: float = 0.0
    tracked_timed: int = 0
    """Tracked interactions that carried a response time (> 0): the mean's denominator."""

    @property
    def key(self) -> SessionKey:
        return SessionKey(self.app_name, self.user_id, self.session_id)

    @property
    def expires_at(self) -> float | None:
        return None if self.timeout is None else self.last_update_time + self.timeout


_ACTIVITY = (MessageAppended, StateChanged, InteractionTracked, MetadataChanged,
             MessageRetracted, HistoryCleared)


def fold(head: Head | None, event: RecordedEvent) -> Head:
    """Apply one event to a head, returning the new head (the input is not changed)."""
    data = event.data
    if head is None:
        head = _first(event)
    else:
        _check_open(head, event)
        head = msgspec.structs.replace(head)
    head.version = event.version
    if isinstance(data, SessionCreated):
        return head
    scope = scope_of(head.key)
    if isinstance(data, _ACTIVITY):
        head.last_update_time = event.recorded_at
        if head.status == EXPIRED:
            head.status = ACTIVE
    if isinstance(data, MessageAppended):
        head.message_count += 1
        if data.message.state_delta:
            head.state = apply_delta(head.state, data.message.state_delta, scope)
    elif isinstance(data, StateChanged):
        head.state = apply_delta(head.state, data.delta, scope)
    elif isinstance(data, InteractionTracked):
        head.tracked_interactions += 1
        head.tracked_tokens_in += data.tokens_in
        head.tracked_tokens_out += data.tokens_out
        head.tracked_response_time += data.response_time
        if data.response_time > 0:
            head.tracked_timed += 1
    elif isinstance(data, MetadataChanged):
        head.metadata = {**head.metadata, **data.patch} if data.merge else dict(data.patch)
    elif isinstance(data, MessageRetracted):
        head.retracted = [*head.retracted, data.message_id]
    elif isinstance(data, HistoryCleared):
        head.history_from = event.version
        head.retracted = []
    elif isinstance(data, SessionArchived):
        head.status = ARCHIVED
    elif isinstance(data, SessionReactivated):
        head.status = ACTIVE
        head.last_update_time = event.recorded_at
    elif isinstance(data, SessionEnded):
        head.status = ENDED
    elif isinstance(data, SessionExpired):
        head.status = EXPIRED
    elif isinstance(data, SessionDeleted):
        head.deleted = True
    elif isinstance(data, SessionPurged):
        # A purge is a delete that also erases. Keep only what the erased log still
        # says (the envelope), so folding it again (rebuild, verify) gives this head.
        return Head(app_name=head.app_name, user_id=head.user_id, session_id=head.session_id,
                    version=event.version, created_at=head.created_at,
                    last_update_time=head.created_at, deleted=True, purged=True)
    return head


def _first(event: RecordedEvent) -> Head:
    data = event.data
    key = event.key
    if not key.session_id:
        return Head(app_name=key.app_name, user_id=key.user_id, session_id="",
                    created_at=event.recorded_at, last_update_time=event.recorded_at)
    if isinstance(data, SessionCreated):
        return Head(app_name=key.app_name, user_id=key.user_id, session_id=key.session_id,
                    state=apply_delta({}, data.state, "session"), metadata=dict(data.metadata),
                    tags=list(data.tags), timeout=data.timeout, created_at=event.recorded_at,
                    last_update_time=event.recorded_at)
    if isinstance(data, PayloadErased):  # a purged stream still folds to a (purged) head
        return Head(app_name=key.app_name, user_id=key.user_id, session_id=key.session_id,
                    created_at=event.recorded_at, last_update_time=event.recorded_at)
    raise SessionNotFound(f"session {key.session_id!r} of user {key.user_id!r} in app "
                          f"{key.app_name!r} does not exist")


def _check_open(head: Head, event: RecordedEvent) -> None:
    data = event.data
    if isinstance(data, SessionCreated):
        raise SessionAlreadyExists(
            f"session {head.session_id!r} of user {head.user_id!r} in app {head.app_name!r} "
            "already exists (ids of deleted sessions are never reused)")
    if isinstance(data, (SessionPurged, PayloadErased)):
        return
    if head.deleted:
        raise SessionClosed(f"session {head.session_id!r} was deleted")
    if head.status == ENDED and not isinstance(data, SessionDeleted):
        raise SessionClosed(f"session {head.session_id!r} has ended and accepts no more events")


def apply_delta(state: dict[str, Any], delta: dict[str, Any], scope: str) -> dict[str, Any]:
    """`state` updated with the keys of `delta` that belong to `scope`."""
    changes = {k: v for k, v in delta.items() if key_scope(k) == scope}
    return {**state, **changes} if changes else state


def fold_all(events: Iterable[RecordedEvent], head: Head | None = None) -> Head | None:
    for event in events:
        head = fold(head, event)
    return head


# --- the read model -----------------------------------------------------------

_head_encoder = msgspec.json.Encoder()
_head_decoder = msgspec.json.Decoder(Head)


def encode_head(head: Head) -> bytes:
    return _head_encoder.encode(head)


def decode_head(body: bytes) -> Head:
    return _head_decoder.decode(body)


def make_tables(suffix: str = "") -> tuple[sa.Table, sa.Table]:
    metadata = sa.MetaData()
    heads = sa.Table(
        f"ss_heads{suffix}", metadata,
        sa.Column("app_name", sa.String, primary_key=True),
        sa.Column("user_id", sa.String, primary_key=True),
        sa.Column("session_id", sa.String, primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float(precision=53), nullable=False),
        sa.Column("last_update_time", sa.Float(precision=53), nullable=False),
        sa.Column("expires_at", sa.Float(precision=53)),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Index(f"ss_heads{suffix}_app_activity", "app_name", "last_update_time", "user_id",
                 "session_id"),
        sa.Index(f"ss_heads{suffix}_user_activity", "app_name", "user_id", "last_update_time",
                 "session_id"),
        sa.Index(f"ss_heads{suffix}_expiry", "status", "expires_at"),
    )
    tags = sa.Table(
        f"ss_session_tags{suffix}", metadata,
        sa.Column("app_name", sa.String, primary_key=True),
        sa.Column("user_id", sa.String, primary_key=True),
        sa.Column("session_id", sa.String, primary_key=True),
        sa.Column("tag", sa.String, primary_key=True),
        sa.Index(f"ss_session_tags{suffix}_tag", "app_name", "tag"),
    )
    return heads, tags


HEADS, TAGS = make_tables()


class HeadsProjection:
    """The inline read model of session heads (and the app/user scope state rows)."""

    name = "heads"
    version = 1

    def __init__(self, suffix: str = "") -> None:
        self.heads, self.tags = (HEADS, TAGS) if not suffix else make_tables(suffix)
        h = self.heads
        self._select_one = sa.select(h.c.body).where(
            h.c.app_name == sa.bindparam("a"), h.c.user_id == sa.bindparam("u"),
            h.c.session_id == sa.bindparam("s"))
        self._select_many = sa.select(h.c.body).where(
            sa.tuple_(h.c.app_name, h.c.user_id, h.c.session_id).in_(
                sa.bindparam("keys", expanding=True)))
        self._upserts = {
            dialect: upsert(h, dialect, ["app_name", "user_id", "session_id"],
                            ["version", "status", "deleted", "created_at", "last_update_time",
                             "expires_at", "body"])
            for dialect in ("sqlite", "postgresql")
        }
        t = self.tags
        self._clear_tags = t.delete().where(
            t.c.app_name == sa.bindparam("a"), t.c.user_id == sa.bindparam("u"),
            t.c.session_id == sa.bindparam("s"))

    def tables(self) -> Sequence[sa.Table]:
        return (self.heads, self.tags)

    def for_rebuild(self, suffix: str) -> HeadsProjection:
        return HeadsProjection(suffix)

    def load(self, conn: Connection, keys: Sequence[SessionKey]) -> dict[SessionKey, Head]:
        if len(keys) == 1:
            a, u, s = keys[0]
            rows = conn.execute(self._select_one, {"a": a, "u": u, "s": s}).all()
        else:
            rows = []
            for start in range(0, len(keys), 300):
                chunk = [tuple(k) for k in keys[start:start + 300]]
                rows.extend(conn.execute(self._select_many, {"keys": chunk}).all())
        heads = (decode_head(row[0]) for row in rows)
        return {head.key: head for head in heads}

    def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        keys = list(dict.fromkeys(event.key for event in events))
        heads: dict[SessionKey, Head | None] = dict(self.load(conn, keys))
        tag_changes: list[Head] = []
        for event in events:
            head = fold(heads.get(event.key), event)
            heads[event.key] = head
            if isinstance(event.data, (SessionCreated, SessionPurged)):
                tag_changes.append(head)
        rows = [_row(head) for head in heads.values() if head is not None]
        conn.execute(self._upserts[conn.dialect.name], rows)
        for head in tag_changes:
            conn.execute(self._clear_tags, {"a": head.app_name, "u": head.user_id,
                                            "s": head.session_id})
            if head.tags:
                conn.execute(self.tags.insert(), [
                    {"app_name": head.app_name, "user_id": head.user_id,
                     "session_id": head.session_id, "tag": tag} for tag in set(head.tags)])


def _row(head: Head) -> dict[str, Any]:
    return {
        "app_name": head.app_name, "user_id": head.user_id, "session_id": head.session_id,
        "version": head.version, "status": head.status, "deleted": head.deleted,
        "created_at": head.created_at, "last_update_time": head.last_update_time,
        "expires_at": head.expires_at, "body": encode_head(head),
    }
