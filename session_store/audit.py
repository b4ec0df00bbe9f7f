"""`verify`: re-check the log's hash chains and version continuity, and compare
every projection with a fresh fold of the log.

It takes the log and the projection runtime, not the store: the facade calls it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from projections.runtime import ProjectionRuntime
from session_store import reads
from session_store.domain.events import SessionKey
from session_store.domain.lifecycle import fold_all
from session_store.log.eventlog import EventLog
from session_store.storage.codec import chain_hash

_BATCH = 5000


@dataclass
class Report:
    events: int = 0
    streams: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


async def verify(log: EventLog, runtime: ProjectionRuntime, key: SessionKey | None = None
                 ) -> Report:
    report = Report()
    chains: dict[SessionKey, tuple[int, str]] = {}
    async for row in _raw_rows(log, key):
        position, app, user, session, version, type_name, data, event_id, at, digest = row
        stream = SessionKey(app, user, session)
        report.events += 1
        last, previous = chains.get(stream, (0, ""))
        if version != last + 1:
            report.problems.append(f"{_name(stream)}: version {version} follows {last}")
        data = bytes(data)
        # An empty payload is the audited purge path's erasure: the chain cannot be re-hashed.
        if data and chain_hash(previous, stream, version, type_name, event_id, at,
                               data) != digest:
            report.problems.append(f"{_name(stream)} v{version} (position {position}): hash "
                                   "does not match its content or its predecessor")
        chains[stream] = (version, digest)
    report.streams = len(chains)
    if key is None:
        report.problems.extend(await runtime.verify())
    else:
        report.problems.extend(await _verify_head(log, key))
    return report


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


_COLUMNS = ("position, app_name, user_id, session_id, version, type, data, event_id, "
            "recorded_at, hash")


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


def _name(key: SessionKey) -> str:
    return f"{key.app_name}/{key.user_id or '-'}/{key.session_id or '-'}"
