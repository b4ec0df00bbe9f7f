"""Helpers for the projection tests: open a log with a runtime, dump read models, make events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from projections import tables
from projections.engine import Projection
from projections.runtime import ProjectionRuntime
from session_store.database import connect
from session_store.events import Event, MessageAppended, Payload, SessionKey, Usage
from session_store.log import EventLog

ALL_INLINE = {"history": "inline", "users": "inline", "analytics": "inline"}
ALL_CATCHUP = {"history": "catchup", "users": "catchup", "analytics": "catchup"}


@asynccontextmanager
async def opened(url: str, modes: Mapping[str, str] | None = None
                 ) -> AsyncIterator[tuple[EventLog, ProjectionRuntime]]:
    """A prepared log with a started runtime; closed and disposed on exit."""
    db = connect(url)
    log = EventLog(db)
    runtime = ProjectionRuntime(log, modes=modes)
    try:
        await log.prepare()
        await runtime.start()
        yield log, runtime
    finally:
        await runtime.close()
        await log.close()
        await db.dispose()


async def dump(log: EventLog, projections: Sequence[Projection]) -> dict[str, Any]:
    """Every row of the projections' tables, keyed by projection name."""

    def run(conn: Any) -> dict[str, Any]:
        return {p.name: tables.dump(conn, p) for p in projections}

    result: dict[str, Any] = await log.run_schema(run)
    return result


def differences(projections: Sequence[Projection], a: dict[str, Any], b: dict[str, Any]
                ) -> list[str]:
    found: list[str] = []
    for projection in projections:
        found.extend(tables.compare(projection.name, projection.tables(), a[projection.name],
                                    b[projection.name]))
    return found


def said(text: str, role: str = "user", *, tokens: tuple[int, int] | None = None,
         response_time: float | None = None, message_id: str | None = None,
         timestamp: float | None = None) -> MessageAppended:
    fields: dict[str, Any] = {"role": role, "text": text}
    if tokens is not None:
        fields["usage"] = Usage(tokens_in=tokens[0], tokens_out=tokens[1], model="mock")
    if response_time is not None:
        fields["response_time"] = response_time
    if message_id is not None:
        fields["id"] = message_id
    if timestamp is not None:
        fields["timestamp"] = timestamp
    return MessageAppended(message=Event(**fields))


async def append(log: EventLog, key: SessionKey, *payloads: Payload) -> int:
    """Append and return the last position."""
    return (await log.append(key, list(payloads)))[-1].position


async def purge(log: EventLog, key: SessionKey, payload: Payload) -> int:
    """Append `payload` (a SessionPurged) the audited way: erasing the stream's payloads."""
    return (await log.commit([log.prepare_append(key, [payload], erase=True)]))[-1].position
