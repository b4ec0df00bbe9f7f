"""Planning a batch of appends: versions, idempotency, chain hashes, and the one retry.

Callers hand `Commit`s to a writer (`session_store.log.writers`), which drains
whatever is pending into a batch. `write_batch` runs in one transaction: it takes
the log's write lock, loads each stream's version and last hash, checks every
commit on its own (expected version, idempotent event ids) and inserts the
accepted ones together, with the inline projections applied in the same
transaction. One bad commit gets its own error and never fails its neighbours.
`write_with_retry` is how every writer runs a batch: on the cached heads, then on
loaded ones, then commit by commit in savepoints, each in a transaction of its
own, so an unexpected database error fails only the commits that cause it.

Positions are assigned as `max(position) + 1` while the write lock is held
(SQLite's `BEGIN IMMEDIATE`, PostgreSQL's transaction-level advisory lock), so
they become visible in commit order and a follower of `read_all` can never
skip an event committed late by a slower writer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import msgspec
from sqlalchemy.engine import Connection

from session_store.domain.events import Payload, RecordedEvent, SessionKey
from session_store.errors import ConcurrencyError, InvalidEvent, SessionStoreError
from session_store.logs import get_logger
from session_store.storage.codec import anchor_hash, chain_hash
from session_store.storage.database import dialect_of
from session_store.storage.dialect import Dialect, Row, Tail
from session_store.storage.schema import erase_payloads

log = get_logger(__name__)

InlineApply = Callable[[Connection, Sequence[RecordedEvent]], None]
"""An inline projection: folds freshly appended events into its tables, in the append's
transaction."""

MAX_BATCH_COMMITS = 512


class Append(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Events for one session stream, already validated and encoded.

    A msgspec struct rather than a frozen dataclass: one is built per append, and
    a frozen dataclass's `__init__` cost 1 µs of the ~13 the event loop spends on it.
    """

    key: SessionKey
    payloads: tuple[Payload, ...]
    encoded: tuple[bytes, ...]
    event_ids: tuple[str, ...]
    expected_version: int | None = None
    caller_ids: bool = False
    erase: bool = False
    recorded_at: tuple[float, ...] = ()
    """Each event's `recorded_at` when the caller keeps it (an import); else the batch's."""


Commit = tuple[Append, ...]
"""Appends that land together or not at all (several streams possible)."""

Result = list[RecordedEvent] | BaseException


class StreamCache:
    """What the writer knew of the log at its last commit: the last position and its
    anchor, and the heads (version, hash) of the streams it loaded or wrote (up to
    `size`; when full, the half first remembered is forgotten).

    A batch whose streams are all known skips loading them when the log still ends
    at the cached position, so nobody else appended since (SQLite asks first;
    PostgreSQL's write inserts nothing otherwise, in the same round trip, and the
    batch fails). A replayed event id is not looked up either: the unique index
    refuses it and the batch fails. A failed batch drops the cache and is written
    again after a real load. A batch that would refuse a commit on the cached
    heads is planned again on loaded ones before anything is written.
    """

    def __init__(self, size: int = 50_000) -> None:
        self.size = size
        self.position: Tail | None = None
        self.heads: dict[SessionKey, tuple[int, str]] = {}
        self._staged: tuple[Tail, dict[SessionKey, tuple[int, str]]] | None = None

    def lookup(self, keys: set[SessionKey]
               ) -> tuple[dict[SessionKey, tuple[int, str]], Tail] | None:
        if self.position is None:
            return None
        heads = self.heads
        try:
            return {key: heads[key] for key in keys}, self.position
        except KeyError:
            return None

    def stage(self, tail: Tail, heads: dict[SessionKey, tuple[int, str]]) -> None:
        """What this transaction has seen and written; known once it commits."""
        self._staged = (tail, heads)

    def committed(self) -> None:
        if self._staged is None:
            return
        tail, heads = self._staged
        self._staged = None
        self.position = tail
        self.heads.update(heads)
        if len(self.heads) > self.size:
            for key in list(self.heads)[:len(self.heads) - self.size // 2]:
                del self.heads[key]

    def clear(self) -> None:
        self.position = None
        self.heads.clear()
        self._staged = None


class _Refused(Exception):
    """An optimistic batch would refuse a commit: plan it again on loaded heads."""


def write_batch(conn: Connection, commits: Sequence[Commit], inline: Sequence[InlineApply],
                cache: StreamCache | None = None, *, key: bytes | None = None) -> list[Result]:
    """Check and write a batch of commits inside the caller's transaction, anchoring each
    event to the log (with `key`, keyed).

    With a `cache` that knows every touched stream, the heads come from it (see
    `StreamCache`); the caller must drop the cache and retry when this raises.
    """
    sql = dialect_of(conn)
    sql.lock(conn, "writes")
    keys = {append.key for commit in commits for append in commit}
    known = cache.lookup(keys) if cache is not None else None
    if known is not None and sql.still_at(conn, known[1][0]):
        try:
            return _write_planned(conn, sql, commits, inline, cache, *known, {}, key,
                                  optimistic=True)
        except _Refused:
            pass
    caller_ids = [i for commit in commits for append in commit if append.caller_ids
                  for i in append.event_ids]
    heads, tail, stored = sql.load_streams(conn, keys, caller_ids)
    return _write_planned(conn, sql, commits, inline, cache, heads, tail, stored, key,
                          optimistic=False)


def _write_planned(conn: Connection, sql: Dialect,
                   commits: Sequence[Commit], inline: Sequence[InlineApply],
                   cache: StreamCache | None, heads: dict[SessionKey, tuple[int, str]],
                   tail: Tail, stored: dict[str, RecordedEvent], key: bytes | None, *,
                   optimistic: bool) -> list[Result]:
    caller_ids = not optimistic and any(append.caller_ids for commit in commits
                                        for append in commit)
    now = time.time()
    position, anchor = tail
    results: list[Result] = []
    fresh: list[RecordedEvent] = []
    rows: list[Row] = []
    erase: list[SessionKey] = []
    written: dict[SessionKey, tuple[int, str]] = {}  # new heads of the streams written to
    for commit in commits:
        try:
            replay = _already_stored(commit, stored) if stored else None
            if replay is not None:
                results.append(replay)
                continue
            planned, planned_rows, planned_heads, anchor = _plan(commit, heads, position,
                                                                 anchor, key, now)
        except SessionStoreError as error:
            if optimistic:
                raise _Refused from error
            results.append(error)
            continue
        heads.update(planned_heads)
        written.update(planned_heads)
        position += len(planned)
        if caller_ids:
            stored.update((r.event_id, r) for r in planned)
        fresh.extend(planned)
        rows.extend(planned_rows)
        erase.extend(append.key for append in commit if append.erase)
        results.append(planned)
    if rows:
        sql.write_records(conn, rows, [(*k, *head) for k, head in written.items()], position)
        for stream in erase:
            erase_payloads(conn, stream)
        for apply in inline:
            apply(conn, fresh)
    if cache is not None:
        cache.stage((position, anchor), heads)
    return results


def write_each(conn: Connection, commits: Sequence[Commit], inline: Sequence[InlineApply], *,
               key: bytes | None = None) -> list[Result]:
    """Like `write_batch`, but each commit in its own savepoint: isolates a failing one."""
    results: list[Result] = []
    for commit in commits:
        try:
            with conn.begin_nested():
                results.append(write_batch(conn, [commit], inline, key=key)[0])
        except Exception as error:  # noqa: BLE001 - handed to that commit's caller
            results.append(error)
    return results


def _already_stored(commit: Commit, stored: dict[str, RecordedEvent]) -> list[RecordedEvent] | None:
    """The stored records when every event id of the commit is already in the log."""
    found: list[RecordedEvent] = []
    missing = False
    for append in commit:
        if not append.caller_ids:
            continue  # generated ids are fresh; a replayed commit is known by the caller's ids
        for event_id in append.event_ids:
            record = stored.get(event_id)
            if record is None:
                missing = True
            elif record.key != append.key:
                raise InvalidEvent(f"event id {event_id!r} is already stored in another session")
            else:
                found.append(record)
    if not found:
        return None
    if missing:
        raise InvalidEvent(
            f"event ids {[r.event_id for r in found]} are already stored but others of the same "
            "append are not: an append is idempotent only as a whole"
        )
    return found


def _plan(commit: Commit, heads: dict[SessionKey, tuple[int, str]], position: int,
          anchor: str, key: bytes | None, now: float
          ) -> tuple[list[RecordedEvent], list[Row], dict[SessionKey, tuple[int, str]], str]:
    planned: list[RecordedEvent] = []
    rows: list[Row] = []
    local: dict[SessionKey, tuple[int, str]] = {}
    for append in commit:
        stream = append.key
        version, previous = local.get(stream) or heads.get(stream) or (0, "")
        expected = append.expected_version
        if expected is not None and expected != version:
            raise ConcurrencyError(
                f"session {stream.session_id!r} of user {stream.user_id!r} in app "
                f"{stream.app_name!r}: expected version {expected}, but it is at {version}; "
                "read it again and retry",
                expected=expected, actual=version,
            )
        app, user, session = stream
        times = append.recorded_at or (now,) * len(append.payloads)
        for payload, data, event_id, at in zip(append.payloads, append.encoded,
                                               append.event_ids, times, strict=True):
            version += 1
            position += 1
            type_name = type(payload).__name__
            previous = chain_hash(previous, stream, version, type_name, event_id, at, data)
            anchor = anchor_hash(anchor, position, previous, key)
            planned.append(RecordedEvent(
                position=position, app_name=app, user_id=user, session_id=session,
                version=version, type=type_name, data=payload,  # type: ignore[arg-type]
                event_id=event_id, recorded_at=at, hash=previous,
            ))
            rows.append((position, app, user, session, version, type_name, payload.schema, data,
                         event_id, at, previous, anchor))
        local[stream] = (version, previous)
    return planned, rows, local, anchor


Attempt = Callable[[Connection], list[Result]]
Transaction = Callable[[Attempt], list[Result]]
"""Runs an attempt in a transaction of its own (the writer's connection, its write lock)
and commits it; raises, having rolled back, when the attempt raises."""


def write_with_retry(transaction: Transaction, commits: Sequence[Commit],
                     inline: Sequence[InlineApply], cache: StreamCache, *,
                     key: bytes | None = None) -> list[Result]:
    """Write a batch the way every writer does: on the cached heads; after a failure, on
    heads loaded afresh; after another, commit by commit in savepoints. Each commit's
    result is its records or the error it alone caused; when even the last way fails
    (the database itself), every commit gets that error."""
    try:
        try:
            results = transaction(lambda conn: write_batch(conn, commits, inline, cache,
                                                           key=key))
            cache.committed()
            return results
        except Exception:  # noqa: BLE001 - loaded afresh, then one by one
            cache.clear()
        try:
            return transaction(lambda conn: write_batch(conn, commits, inline, key=key))
        except Exception:  # noqa: BLE001 - retried one by one below
            return transaction(lambda conn: write_each(conn, commits, inline, key=key))
    except Exception as error:  # noqa: BLE001 - the transaction itself failed
        log.error("session_store.write_failed", error=str(error), commits=len(commits))
        return [error] * len(commits)
