"""`verify`: audit the log against itself, its bookkeeping and (optionally) a digest kept
outside the database, and compare every projection with a fresh fold of the log.

The audit is a report, never a crash: every row that does not decode or does not fit
is a problem naming its position. What each check catches, and what none can, is the
threat model in docs/DESIGN.md ("Integrity"). It takes the log and the projection
runtime, not the store: the facade calls it.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from projections.runtime import ProjectionRuntime
from session_store import reads
from session_store.domain.events import ScopePurged, SessionKey
from session_store.domain.lifecycle import fold_all
from session_store.errors import InvalidEvent, SessionStoreError
from session_store.log.eventlog import EventLog
from session_store.storage.codec import anchor_hash, chain_hash, decode_payload

_BATCH = 5000
HASH_KEY_VARIABLE = "SESSION_STORE_HASH_KEY"


class Digest(NamedTuple):
    """The log up to `position`, sealed by the anchor of that event: `position:anchor`."""

    position: int
    anchor: str

    def __str__(self) -> str:
        return f"{self.position}:{self.anchor}"

    @classmethod
    def parse(cls, text: str | Digest) -> Digest:
        if isinstance(text, Digest):
            return text
        found = re.fullmatch(r"\s*(\d{1,19}):([0-9a-f]{64})?\s*", text) if isinstance(
            text, str) else None
        # An empty log's digest is `0:`; any other position needs its anchor.
        if found is None or (found[1].lstrip("0") == "") != (found[2] is None):
            raise InvalidEvent(f"not a log digest: {text!r}; `session-store digest` prints "
                               "one as POSITION:ANCHOR (64 hex digits)")
        return cls(int(found[1]), found[2] or "")


def anchor_key(given: str | bytes | None) -> bytes | None:
    """The anchor key: `given`, else `$SESSION_STORE_HASH_KEY`; None when neither is set."""
    if given is None:
        given = os.environ.get(HASH_KEY_VARIABLE) or None
    if given is None:
        return None
    if isinstance(given, str):
        try:  # surrogateescape: the bytes of an environment variable that is not UTF-8
            given = given.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raise InvalidEvent("hash_key holds a lone surrogate: give it as bytes") from None
    if not isinstance(given, bytes) or len(given) < 16:
        raise InvalidEvent("hash_key must be a str or bytes of at least 16 bytes "
                           f"(or set ${HASH_KEY_VARIABLE})")
    return given


@dataclass
class Report:
    events: int = 0
    streams: int = 0
    problems: list[str] = field(default_factory=list)
    digest: Digest | None = None
    """The whole log's digest as this audit recomputed it (None for one session)."""

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class _Scan:
    """What one pass over the rows gathers besides the problems."""

    chains: dict[SessionKey, tuple[int, str]] = field(default_factory=dict)
    erased: dict[SessionKey, list[tuple[int, str]]] = field(default_factory=dict)
    purged: set[SessionKey] = field(default_factory=set)
    """Session streams that record a `SessionPurged`: all their payloads may be erased."""
    listed: set[str] = field(default_factory=set)
    """Event ids a `ScopePurged` lists: erased on a scope stream with its session."""


async def verify(log: EventLog, runtime: ProjectionRuntime, key: SessionKey | None = None, *,
                 digest: str | Digest | None = None) -> Report:
    anchor = Digest.parse(digest) if digest is not None else None
    if anchor is not None and key is not None:
        raise InvalidEvent("a digest covers the whole log: audit it without a session")
    report = Report()
    report.problems.extend(f"when the store opened, {problem} (re-created)"
                           for problem in log.prepared.repaired)
    report.problems.extend(await log.run_schema(log.db.dialect.trigger_problems))
    scan = _Scan()
    await _check_rows(log, key, anchor, report, scan)
    report.streams = len(scan.chains)
    report.problems.extend(await _check_bookkeeping(log, key, scan))
    for stream, erased in scan.erased.items():
        unlisted = [position for position, event_id in erased
                    if stream not in scan.purged and event_id not in scan.listed]
        if unlisted:
            report.problems.append(
                f"{_name(stream)}: payloads at positions {_few(unlisted)} are erased, but the "
                "stream records no purge of them")
    try:
        if key is None:
            report.problems.extend(await runtime.verify())
        else:
            report.problems.extend(await _verify_head(log, key))
    except SessionStoreError as error:
        report.problems.append(f"read models could not be compared: {error}")
    return report


async def _check_rows(log: EventLog, key: SessionKey | None, digest: Digest | None,
                      report: Report, scan: _Scan) -> None:
    """Per row: decodes as its type, version follows, stream hash; over the whole log:
    positions without gaps, each anchor seals its predecessor, and the digest's anchor."""
    problems = report.problems
    last_position, stored_anchor, chain = 0, "", ""
    async for row in _raw_rows(log, key):
        (position, app, user, session, version, type_name, schema, data, event_id, at,
         digest_hash, anchor) = row
        stream = SessionKey(app, user, session)
        where = f"{_name(stream)} v{version} (position {position})"
        report.events += 1
        last, previous = scan.chains.get(stream, (0, ""))
        if version != last + 1:
            problems.append(f"{where}: version {version} follows {last} in position order")
        data = bytes(data)
        if not data:
            scan.erased.setdefault(stream, []).append((position, event_id))
        else:
            try:
                payload = decode_payload(type_name, schema, data)
                if isinstance(payload, ScopePurged):
                    scan.listed.update(payload.event_ids)
            except (ValueError, TypeError, SessionStoreError) as error:
                problems.append(f"{where}: its {type_name} payload does not decode: {error}")
            if chain_hash(previous, stream, version, type_name, event_id, at,
                          data) != digest_hash:
                problems.append(f"{where}: hash does not match its content or its predecessor")
        if type_name == "SessionPurged":
            scan.purged.add(stream)
        scan.chains[stream] = (version, digest_hash)
        if key is not None:
            continue
        if position != last_position + 1:
            problems.append(f"positions {last_position + 1}..{position - 1} are missing: "
                            "events were deleted")
        sealing = log.anchor_key_at(position)
        if anchor != anchor_hash(stored_anchor, position, digest_hash, sealing):
            problems.append(f"{where}: its anchor does not seal it to the event before it "
                            "in the log")
        chain = anchor_hash(chain, position, digest_hash, sealing)
        if digest is not None and position == digest.position and chain != digest.anchor:
            problems.append(f"the log no longer extends digest {digest}: an event at or "
                            f"before position {position} was changed, removed or reordered")
        last_position, stored_anchor = position, anchor
    if key is None:
        report.digest = Digest(last_position, chain)
        if digest is not None and last_position < digest.position:
            problems.append(f"the log ends at position {last_position}, before digest "
                            f"{digest}: events were removed from its end")


async def _check_bookkeeping(log: EventLog, key: SessionKey | None, scan: _Scan) -> list[str]:
    """`ss_streams` (each stream's version and last hash) against the log's own rows."""
    query = "SELECT app_name, user_id, session_id, version, hash FROM ss_streams"
    params: list[Any] = []
    if key is not None:
        query += " WHERE app_name = ? AND user_id = ? AND session_id = ?"
        params = list(key)
    problems = []
    recorded = {SessionKey(a, u, s): (v, h)
                for a, u, s, v, h in await log.db.dialect.fetch(log.db, query, params)}
    for stream, (version, digest) in scan.chains.items():
        head = recorded.pop(stream, None)
        if head is None:
            problems.append(f"{_name(stream)}: ss_streams has no head for it (last event v"
                            f"{version})")
        elif head != (version, digest):
            problems.append(f"{_name(stream)}: ss_streams records version {head[0]}, but its "
                            f"last event is version {version}" if head[0] != version else
                            f"{_name(stream)}: ss_streams records another last hash than its "
                            f"last event's (v{version})")
    problems.extend(f"{_name(stream)}: ss_streams records version {version}, but the log "
                    "holds no event of it" for stream, (version, _) in recorded.items())
    return problems


async def _verify_head(log: EventLog, key: SessionKey) -> list[str]:
    """One session: its head row against a fresh fold of its stream.

    Re-folding every projection into scratch tables reads the whole log; for one
    session the head is the read model its reads come from.
    """
    folded = fold_all([record async for record in log.read_stream(key)])
    stored, _ = await reads.load_heads(log.db, key)
    if stored != folded:
        return [f"{_name(key)}: the session head differs from a fresh fold of its events"]
    return []


_COLUMNS = ("position, app_name, user_id, session_id, version, type, schema, data, event_id, "
            "recorded_at, hash, anchor")


async def _raw_rows(log: EventLog, key: SessionKey | None) -> AsyncIterator[Any]:
    where = "" if key is None else "app_name = ? AND user_id = ? AND session_id = ? AND "
    query = (f"SELECT {_COLUMNS} FROM ss_events WHERE {where}position > ? "
             f"ORDER BY position LIMIT {_BATCH}")
    params: list[Any] = [] if key is None else list(key)
    position = 0
    while True:
        rows = await log.db.dialect.fetch(log.db, query, [*params, position])
        for row in rows:
            yield row
        if len(rows) < _BATCH:
            return
        position = rows[-1][0]


def _few(positions: list[int]) -> str:
    shown = ", ".join(str(p) for p in positions[:5])
    return shown + (f" and {len(positions) - 5} more" if len(positions) > 5 else "")


def _name(key: SessionKey) -> str:
    return f"{key.app_name}/{key.user_id or '-'}/{key.session_id or '-'}"
