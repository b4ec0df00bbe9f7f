"""`verify`: re-check the log's hash chains and version continuity, and compare
every projection with a fresh fold of the log.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from projections.heads import fold_all
from session_store import reads
from session_store.events import SessionKey
from session_store.schema import events
from session_store.writer import chain_hash

if TYPE_CHECKING:
    from session_store.store import SessionStore

_BATCH = 5000


@dataclass
class Report:
    events: int = 0
    streams: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


async def verify(store: SessionStore, key: SessionKey | None = None) -> Report:
    report = Report()
    chains: dict[SessionKey, tuple[int, str]] = {}
    async for row in _raw_rows(store, key):
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
        report.problems.extend(await store.projections.verify())
    else:
        report.problems.extend(await _verify_head(store, key))
    return report


async def _verify_head(store: SessionStore, key: SessionKey) -> list[str]:
    """One session: its head row against a fresh fold of its stream.

    Re-folding every projection into scratch tables reads the whole log; for one
    session the head is the read model its reads come from.
    """
    folded = fold_all([record async for record in store.log.read_stream(key)])
    async with store.db.engine.connect() as conn:
        stored, _ = await reads.load_heads(conn, key)
    if stored != folded:
        return [f"{_name(key)}: the session head differs from a fresh fold of its events"]
    return []


async def _raw_rows(store: SessionStore, key: SessionKey | None) -> AsyncIterator[Any]:
    columns = (events.c.position, events.c.app_name, events.c.user_id, events.c.session_id,
               events.c.version, events.c.type, events.c.data, events.c.event_id,
               events.c.recorded_at, events.c.hash)
    where = [] if key is None else [events.c.app_name == key[0], events.c.user_id == key[1],
                                    events.c.session_id == key[2]]
    position = 0
    while True:
        query = (sa.select(*columns).where(*where, events.c.position > position)
                 .order_by(events.c.position).limit(_BATCH))
        async with store.db.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        for row in rows:
            yield row
        if len(rows) < _BATCH:
            return
        position = rows[-1][0]


def _name(key: SessionKey) -> str:
    return f"{key.app_name}/{key.user_id or '-'}/{key.session_id or '-'}"
