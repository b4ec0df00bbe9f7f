"""Session heads: the current state of every session (and scope stream), one row each.

The rows persist the lifecycle fold (`session_store.domain.lifecycle`): the head
itself as msgspec JSON (`body`), with the columns reads filter and order by beside
it, and the session's tags in a table of their own. The model runs inline, in every
append transaction, which is also where the fold enforces the session's invariants.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from projections.protocol import Projection
from session_store.domain.events import RecordedEvent, SessionKey
from session_store.domain.lifecycle import Head, advance, fold_all
from session_store.storage import schema
from session_store.storage.codec import decode_head, decode_rows, encode_head
from session_store.storage.database import dialect_of


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
        sa.Index(f"ss_heads{suffix}_session", "session_id", "app_name", "user_id"),
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

_SESSION = ("app_name", "user_id", "session_id")
"""The columns that name a session (the tag table's key without the tag)."""
_RETAGS = frozenset({"SessionCreated", "SessionPurged", "TagsChanged"})
"""Event types after which a session's tag rows are written again."""


def _row(head: Head) -> tuple[Any, ...]:
    """A heads row, in the table's column order."""
    return (head.app_name, head.user_id, head.session_id, head.version, head.status,
            head.deleted, head.created_at, head.last_update_time, head.expires_at,
            encode_head(head))


def _refold(conn: Connection, key: SessionKey, version: int) -> Head | None:
    """A scope stream folded afresh from the log up to `version`: after a `ScopePurged` the
    erased events read back as `PayloadErased`, so the state forgets what they wrote (and
    keeps what the events left wrote), as a fold of the erased log from the start does."""
    e = schema.events
    rows = conn.execute(
        sa.select(*schema.RECORD_COLUMNS)
        .where(e.c.app_name == key.app_name, e.c.user_id == key.user_id,
               e.c.session_id == key.session_id, e.c.version <= version)
        .order_by(e.c.version)).all()
    return fold_all(decode_rows(rows))


class HeadsProjection(Projection):
    """The inline read model of session heads (and the app/user scope state rows)."""

    name = "heads"
    version = 3  # 2: index by bare session id (`find_sessions`, the compat modules' lookups);
    #            3: heads keep the newest message's time, rewinds, the summary, fork links

    def __init__(self, suffix: str = "") -> None:
        self.heads, self.tags = (HEADS, TAGS) if not suffix else make_tables(suffix)

    def tables(self) -> Sequence[sa.Table]:
        return (self.heads, self.tags)

    def for_rebuild(self, suffix: str) -> HeadsProjection:
        return HeadsProjection(suffix)

    def load(self, conn: Connection, keys: Sequence[SessionKey]) -> dict[SessionKey, Head]:
        bodies = dialect_of(conn).select_keyed(conn, self.heads, ("body",), keys)
        heads = (decode_head(bytes(body)) for body, in bodies)
        return {head.key: head for head in heads}

    def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        if not events:
            return
        keys = list(dict.fromkeys(
            SessionKey(event.app_name, event.user_id, event.session_id) for event in events))
        heads: dict[SessionKey, Head | None] = dict(self.load(conn, keys))
        retagged: set[SessionKey] = set()
        for event in events:
            key = SessionKey(event.app_name, event.user_id, event.session_id)
            heads[key] = advance(heads.get(key), event)
            if event.type == "ScopePurged":
                heads[key] = _refold(conn, key, event.version)
            elif event.type in _RETAGS:
                retagged.add(key)
        dialect_of(conn).upsert(conn, self.heads,
                                [_row(head) for head in heads.values() if head is not None])
        if retagged:
            self._retag(conn, retagged, heads)

    def _retag(self, conn: Connection, keys: set[SessionKey],
               heads: dict[SessionKey, Head | None]) -> None:
        """Replace the tag rows of `keys` with their heads' tags (two statements in all)."""
        tagged: list[tuple[str, str, str, str]] = []
        for key in keys:
            head = heads[key]
            if head is not None:
                tagged.extend((*key, tag) for tag in set(head.tags))
        dialect = dialect_of(conn)
        dialect.delete_keyed(conn, self.tags, list(keys), by=_SESSION)
        dialect.upsert(conn, self.tags, tagged)
