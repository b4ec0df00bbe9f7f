"""History: the visible messages of every session, with filters and full-text search.

One row per `MessageAppended`, keyed by its log position. `MessageRetracted`
removes the message it names, `HistoryCleared` empties the session, and
`SessionDeleted` or `SessionPurged` erase it (the log keeps everything, so a
rebuild gives the same rows). `HistoryCompacted` replaces the rows it stands for with
one row of its summary (at the compaction's position, ordered at `through_version`);
`HistoryRewound` refills the session with what was visible at the version it went back
to, read from the log. Text search uses SQLite FTS5 (a contentless side
table whose rowid is the position, word presence only: `detail=none`, which
halves its cost; a rebuild indexes the text in one statement at the end) or a
PostgreSQL `tsvector` column with a GIN index (over the folded words,
`session_store.domain.search.indexed`), both without stemming; the index narrows the
candidates and the one search rule (`session_store.domain.search`) decides, so both
backends and `Session.search` match alike.

Only what the envelope says is trusted for erased events: after a purge the
session has no rows whether its messages were seen before (inline) or read
back erased (rebuild).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from projections.protocol import Projection, Queries, Ready
from session_store.domain import search as searching
from session_store.domain import validation
from session_store.domain.events import (
    HistoryCompacted,
    HistoryRewound,
    HistoryTrimmed,
    MessageAppended,
    MessageRetracted,
    RecordedEvent,
)
from session_store.domain.lifecycle import Head, visible_history
from session_store.domain.search import text_of as message_text
from session_store.domain.times import Instant, optional_seconds
from session_store.errors import InvalidEvent
from session_store.storage import schema
from session_store.storage.codec import decode_rows
from session_store.storage.database import Database, dialect_of
from session_store.storage.dialect import Dialect, TextIndex

_ERASE_TYPES = frozenset({"HistoryCleared", "SessionDeleted", "SessionPurged"})
_json = msgspec.json.Encoder(order="sorted")
ORDERS = ("oldest", "newest")
__all__ = ["History", "HistoryProjection", "Message", "message_text"]
_TAKE_BACK = frozenset({"MessageRetracted", "HistoryTrimmed"})
"""Events that take some messages back from the visible history."""


def _clean(text: str) -> str:
    """PostgreSQL text cannot hold NUL; drop it on both backends so they agree."""
    return text.replace("\x00", "") if "\x00" in text else text


class Message(msgspec.Struct, frozen=True, kw_only=True):
    """A visible message, as the history read model has it."""

    app_name: str
    user_id: str
    session_id: str
    version: int
    position: int
    message_id: str
    role: str
    author: str
    text: str
    invocation_id: str | None
    timestamp: float
    """The message's own time (as the runner stamped it)."""
    recorded_at: float
    metadata: dict[str, Any] = {}
    """The message's own metadata (`Event.metadata`)."""


def make_table(suffix: str = "") -> sa.Table:
    return sa.Table(
        f"ss_history{suffix}", sa.MetaData(),
        sa.Column("position", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  primary_key=True, autoincrement=False),
        sa.Column("app_name", sa.String, nullable=False),
        sa.Column("user_id", sa.String, nullable=False),
        sa.Column("session_id", sa.String, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("message_id", sa.String, nullable=False),
        sa.Column("role", sa.String, nullable=False),
        sa.Column("author", sa.String, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("invocation_id", sa.String),
        sa.Column("timestamp", sa.Float(precision=53), nullable=False),
        sa.Column("recorded_at", sa.Float(precision=53), nullable=False),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.Index(f"ss_history{suffix}_session", "app_name", "user_id", "session_id", "version"),
        sa.Index(f"ss_history{suffix}_message", "app_name", "user_id", "session_id",
                 "message_id"),
    )


class HistoryProjection(Projection):
    """The history read model (name `history`)."""

    name = "history"
    version = 4  # 2: contentless FTS5 with detail=none; 3: metadata, the words indexed;
    #            4: compactions and rewinds

    def __init__(self, suffix: str = "") -> None:
        self.suffix = suffix
        self._bulk = False
        self.table = make_table(suffix)
        self.fts = f"ss_history_fts{suffix}"

    def tables(self) -> Sequence[sa.Table]:
        return (self.table,)

    def extra_tables(self, dialect: Dialect) -> list[str]:
        return dialect.text_index(self.table, self.fts).tables()

    def for_rebuild(self, suffix: str) -> HistoryProjection:
        return HistoryProjection(suffix)

    def _index(self, conn: Connection) -> TextIndex:
        return dialect_of(conn).text_index(self.table, self.fts)

    def install(self, conn: Connection) -> None:
        self._index(conn).install(conn)

    def start_bulk(self) -> None:
        """A rebuild fills the fresh table: index the text once at the end (SQLite)."""
        self._bulk = True

    def finish_bulk(self, conn: Connection) -> None:
        if self._bulk:
            self._index(conn).finish_bulk(conn)
        self._bulk = False

    def dump_extras(self, conn: Connection) -> dict[str, list[tuple[Any, ...]]]:
        """The full-text index: which messages it holds and how many hold each term."""
        return self._index(conn).dump(conn)

    # --- fold ------------------------------------------------------------------------

    def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        pending: list[tuple[Any, ...]] = []
        purged = False
        for event in events:
            if not event.session_id:
                continue
            kind = event.type
            if kind == "MessageAppended":
                pending.extend(_rows([event]))
            elif kind in _BRANCH_TYPES:
                self._insert_rows(conn, pending)
                pending = []
                self._branch(conn, event)
            elif kind in _ERASE_TYPES or kind in _TAKE_BACK:
                self._insert_rows(conn, pending)
                pending = []
                self._erase(conn, event)
                purged = purged or kind == "SessionPurged"
        self._insert_rows(conn, pending)
        if purged and not self._bulk:  # a rebuild indexes only the rows that remain
            self._index(conn).forget(conn)

    def _insert_rows(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            self._index(conn).insert(conn, rows, searching.indexed, bulk=self._bulk)

    def _branch(self, conn: Connection, event: RecordedEvent) -> None:
        """A compaction or a rewind: the session's rows become its visible history."""
        data = event.data
        where = "app_name = :a AND user_id = :u AND session_id = :s"
        params: dict[str, Any] = {"a": event.app_name, "u": event.user_id,
                                  "s": event.session_id}
        if isinstance(data, HistoryCompacted):
            self._index(conn).delete(conn, where + " AND version <= :v",
                                     {**params, "v": data.through_version}, bulk=self._bulk)
            self._insert_rows(conn, list(_rows([event])))
        elif isinstance(data, HistoryRewound):
            self._index(conn).delete(conn, where, params, bulk=self._bulk)
            view = Head(app_name=event.app_name, user_id=event.user_id,
                        session_id=event.session_id, version=data.to_version,
                        history_from=data.history_from, retracted=list(data.retracted),
                        hidden=list(data.hidden), summary_version=data.summary_version)
            e = schema.events
            found = conn.execute(
                sa.select(*schema.RECORD_COLUMNS)
                .where(e.c.app_name == event.app_name, e.c.user_id == event.user_id,
                       e.c.session_id == event.session_id, e.c.version <= data.to_version,
                       e.c.type.in_(("MessageAppended", "HistoryCompacted")))
                .order_by(e.c.version)).all()
            self._insert_rows(conn, list(_rows(visible_history(view, decode_rows(found)))))

    def _erase(self, conn: Connection, event: RecordedEvent) -> None:
        where = "app_name = :a AND user_id = :u AND session_id = :s"
        params: dict[str, Any] = {"a": event.app_name, "u": event.user_id,
                                  "s": event.session_id}
        if event.type == "MessageRetracted":
            if not isinstance(event.data, MessageRetracted):
                return  # erased: the purge that erased it also empties the session
            where += " AND message_id = :m"
            params["m"] = event.data.message_id
        elif event.type == "HistoryTrimmed":
            if not isinstance(event.data, HistoryTrimmed):
                return  # erased: the purge that erased it also empties the session
            where += " AND version <= :v"
            params["v"] = event.data.through_version
        self._index(conn).delete(conn, where, params, bulk=self._bulk)


_BRANCH_TYPES = frozenset({"HistoryCompacted", "HistoryRewound"})


def _rows(events: Sequence[RecordedEvent]) -> Iterator[tuple[Any, ...]]:
    """History rows of messages and compaction summaries (erased payloads give none)."""
    for event in events:
        data = event.data
        if isinstance(data, MessageAppended):
            m, version = data.message, event.version
        elif isinstance(data, HistoryCompacted):
            m, version = data.summary, data.through_version
        else:
            continue
        yield (event.position, event.app_name, event.user_id, event.session_id, version,
               _clean(m.id), _clean(m.role), _clean(m.author or m.role),
               _clean(message_text(m)),
               None if m.invocation_id is None else _clean(m.invocation_id), m.timestamp,
               event.recorded_at, _clean(_json.encode(m.metadata).decode()))


class History(Queries):
    """Queries over the history read model; every read is scoped by app (and user, session)."""

    def __init__(self, db: Database, projection: HistoryProjection | None = None,
                 ready: Ready | None = None) -> None:
        super().__init__(db, ready)
        self.projection = projection or HistoryProjection()

    async def messages(self, *, app_name: str, user_id: str, session_id: str,
                       roles: Sequence[str] | None = None, since: Instant | None = None,
                       until: Instant | None = None, after_version: int | None = None,
                       limit: int | None = None, order: str = "oldest",
                       last: int | None = None,
                       metadata: Mapping[str, Any] | None = None) -> list[Message]:
        """Visible messages of a session, oldest first (`order="newest"`: newest first);
        `limit` keeps the first ones of that order, `last=N` the newest N, oldest first.
        `since`/`until` bound the message time, inclusive (epoch seconds or aware
        datetimes); `roles` and `metadata` (every key equal, JSON-typed) narrow them."""
        validation.key_of(app_name, user_id, session_id)
        since, until = _check_filters(roles, since, until)
        validation.check_count(after_version, "after_version")
        validation.check_count(limit, "limit")
        validation.check_count(last, "last")
        if order not in ORDERS:
            raise InvalidEvent(f"order must be 'oldest' or 'newest', not {order!r}")
        wanted = _metadata_filter(metadata)
        t = self.projection.table
        query = sa.select(*_columns(t)).where(
            t.c.app_name == app_name, t.c.user_id == user_id, t.c.session_id == session_id)
        query = _filters(query, t, roles, since, until, after_version)
        newest = order == "newest" or last is not None
        query = query.order_by(t.c.version.desc() if newest else t.c.version)
        count = last if last is not None else limit
        if count is not None and limit is not None:
            count = min(count, limit)
        if wanted:
            found = [m for m in await self._fetch(query) if _has_metadata(m, wanted)]
            found = found if count is None else found[:count]
        else:
            found = await self._fetch(query if count is None else query.limit(count))
        return found[::-1] if last is not None and order == "oldest" else found

    async def search(self, text: str, *, app_name: str, user_id: str | None = None,
                     session_id: str | None = None, roles: Sequence[str] | None = None,
                     since: Instant | None = None, until: Instant | None = None,
                     limit: int = 50, metadata: Mapping[str, Any] | None = None
                     ) -> list[Message]:
        """Messages matching every word, `prefix*` and `"exact phrase"` of `text` (case- and
        accent-insensitive: the rule of `Session.search`, `session_store.domain.search`),
        newest first."""
        if not isinstance(text, str):
            raise InvalidEvent(f"search text must be a string, not {type(text).__name__}")
        validation.check_id(app_name, "app_name")
        validation.check_ids(user_id=user_id, session_id=session_id)
        since, until = _check_filters(roles, since, until)
        validation.check_page_limit(limit)
        wanted = _metadata_filter(metadata)
        terms = searching.parse(validation.check_text(text, "search text"))
        if not terms or not limit:
            return []
        t = self.projection.table
        query = sa.select(*_columns(t)).where(t.c.app_name == app_name)
        if user_id is not None:
            query = query.where(t.c.user_id == user_id)
        if session_id is not None:
            query = query.where(t.c.session_id == session_id)
        query = _filters(query, t, roles, since, until, None)
        query = self.db.dialect.text_index(t, self.projection.fts).match(query, terms)
        query = query.order_by(t.c.position.desc())
        found: list[Message] = []
        page = max(limit, 64)
        before: int | None = None
        while len(found) < limit:  # the index narrows; the rule decides
            step = query if before is None else query.where(t.c.position < before)
            rows = await self._fetch(step.limit(page))
            found.extend(m for m in rows if searching.matches(terms, m.text)
                         and (not wanted or _has_metadata(m, wanted)))
            if len(rows) < page:
                break
            before, page = rows[-1].position, page * 2
        return found[:limit]

    async def position_of(self, *, app_name: str, user_id: str, session_id: str,
                          message_id: str) -> int | None:
        """The log position of the visible message `message_id` of the session (an index
        search), None when history holds no such message."""
        t = self.projection.table
        query = sa.select(t.c.position).where(
            t.c.app_name == app_name, t.c.user_id == user_id, t.c.session_id == session_id,
            t.c.message_id == message_id).limit(1)
        rows = await self.rows(query)
        return int(rows[0]["position"]) if rows else None

    async def count(self, *, app_name: str, user_id: str, session_id: str) -> int:
        t = self.projection.table
        query = sa.select(sa.func.count().label("count")).select_from(t).where(
            t.c.app_name == app_name, t.c.user_id == user_id, t.c.session_id == session_id)
        return int((await self.rows(query))[0]["count"] or 0)

    async def _fetch(self, query: Any) -> list[Message]:
        return [Message(**{**row, "metadata": _metadata_of(row["metadata"])})
                for row in await self.rows(query)]


def _columns(t: sa.Table) -> list[Any]:
    return [t.c.app_name, t.c.user_id, t.c.session_id, t.c.version, t.c.position,
            t.c.message_id, t.c.role, t.c.author, t.c.text, t.c.invocation_id, t.c.timestamp,
            t.c.recorded_at, t.c.metadata]


def _check_filters(roles: Any, since: Any, until: Any) -> tuple[float | None, float | None]:
    if roles is not None and (isinstance(roles, str) or not isinstance(roles, Sequence)
                              or not all(isinstance(role, str) for role in roles)):
        raise InvalidEvent(f"roles must be a list of role names such as ['user'], "
                           f"not {roles!r}")
    return optional_seconds(since, "since"), optional_seconds(until, "until")


_decode = msgspec.json.Decoder(dict[str, Any])


def _metadata_of(stored: str) -> dict[str, Any]:
    return {} if stored == "{}" else _decode.decode(stored)


def _metadata_filter(metadata: Any) -> dict[str, bytes]:
    """Each wanted key with its value's JSON (so 1, 1.0 and True stay different values)."""
    if metadata is None:
        return {}
    wanted = validation.check_mapping(metadata, "metadata")
    return {key: _json.encode(value) for key, value in wanted.items()}


def _has_metadata(message: Message, wanted: dict[str, bytes]) -> bool:
    have = message.metadata
    return all(key in have and _json.encode(have[key]) == value
               for key, value in wanted.items())


def _filters(query: Any, t: sa.Table, roles: Sequence[str] | None, since: float | None,
             until: float | None, after_version: int | None) -> Any:
    if roles is not None:
        query = query.where(t.c.role.in_(list(roles)))
    if since is not None:
        query = query.where(t.c.timestamp >= since)
    if until is not None:
        query = query.where(t.c.timestamp <= until)
    if after_version is not None:
        query = query.where(t.c.version > after_version)
    return query
