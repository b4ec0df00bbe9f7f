"""Helpers shared by the event-log tests: open a log on a URL, make payloads, count rows."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa

from session_store.database import connect
from session_store.events import Event, MessageAppended, Payload, SessionKey, StateChanged
from session_store.log import EventLog
from session_store.writer import InlineApply

KEY = SessionKey("app", "user", "s1")


@asynccontextmanager
async def opened_log(url: str, *, inline: Sequence[InlineApply] = (),
                     **settings: Any) -> AsyncIterator[EventLog]:
    """An `EventLog` on `url` with its schema prepared; closed and disposed on exit."""
    db = connect(url)
    log = EventLog(db, inline=inline, **settings)
    try:
        await log.prepare()
        yield log
    finally:
        await log.close()
        await db.dispose()


def message(text: str = "hello", role: str = "user") -> MessageAppended:
    return MessageAppended(message=Event(role=role, text=text))


def state(**delta: Any) -> Payload:
    return StateChanged(delta=delta)


async def count_rows(log: EventLog, table: str = "ss_events") -> int:
    async with log.db.engine.connect() as conn:
        return int((await conn.execute(sa.text(f"SELECT count(*) FROM {table}"))).scalar_one())


async def read_stream(log: EventLog, key: SessionKey, **kwargs: Any) -> list[Any]:
    return [record async for record in log.read_stream(key, **kwargs)]


async def read_all(log: EventLog, **kwargs: Any) -> list[Any]:
    return [record async for record in log.read_all(**kwargs)]
