"""Live updates: committed events as server-sent events (`GET /api/events`).

One `Hub` per app follows the log with `store.subscribe` (appends of this process wake
it at once; those of other processes are seen within `POLL_SECONDS`, a tenth of a second)
and fans each event out to the open streams whose filter it matches. A
stream resumes after the position it names (`Last-Event-ID`, which `EventSource` sends
on reconnecting, or `?after=`): it reads the log from there, then follows the hub, never
sending an event twice. A client too slow to keep up is cut off and resumes the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from session_store.domain.events import RecordedEvent
from session_store.errors import InvalidEvent
from session_store.logs import get_logger
from session_store.store import SessionStore
from session_store.web import params

log = get_logger("session_store.web.events")

POLL_SECONDS = 0.1
"""How often the hub looks for events other processes appended (one indexed query)."""
KEEP_ALIVE_SECONDS = 15.0
BACKLOG = 10_000
"""Events a stream may fall behind by before it is cut off (it then resumes)."""


@dataclass(frozen=True)
class Filter:
    app_name: str | None = None
    user_id: str | None = None
    session_id: str | None = None

    def matches(self, record: RecordedEvent) -> bool:
        return ((self.app_name is None or record.app_name == self.app_name)
                and (self.user_id is None or record.user_id == self.user_id)
                and (self.session_id is None or record.session_id == self.session_id))


@dataclass(eq=False)
class Listener:
    filter: Filter
    queue: asyncio.Queue[RecordedEvent | None] = field(
        default_factory=lambda: asyncio.Queue(BACKLOG))


class Hub:
    """Follows the log once for every open stream."""

    def __init__(self, store: SessionStore) -> None:
        self.store = store
        self.listeners: set[Listener] = set()
        self._task: asyncio.Task[None] | None = None
        self._started = asyncio.Event()

    async def join(self, chosen: Filter) -> Listener:
        """A listener that receives every event committed from now on that matches."""
        listener = Listener(chosen)
        self.listeners.add(listener)
        if self._task is None:
            self._task = asyncio.create_task(self._follow(await self.store.last_position()),
                                             name="session-store-web-hub")
        await self._started.wait()
        return listener

    def leave(self, listener: Listener) -> None:
        self.listeners.discard(listener)

    async def _follow(self, last: int) -> None:
        stream = self.store.subscribe(from_position=last + 1, poll_interval=POLL_SECONDS)
        self._started.set()
        try:
            async for record in stream:
                for listener in list(self.listeners):
                    if not listener.filter.matches(record):
                        continue
                    try:
                        listener.queue.put_nowait(record)
                    except asyncio.QueueFull:  # cut it off; it resumes from where it was
                        self.listeners.discard(listener)
                        listener.queue = asyncio.Queue(1)
                        listener.queue.put_nowait(None)
        except Exception as error:  # noqa: BLE001 - the streams end; clients reconnect
            log.warning("web.hub.stopped", error=repr(error))
            self._end_all()
            self._task = None
            self._started = asyncio.Event()

    def _end_all(self) -> None:
        for listener in list(self.listeners):
            self.listeners.discard(listener)
            with contextlib.suppress(asyncio.QueueFull):
                listener.queue.put_nowait(None)

    async def close(self) -> None:
        self._end_all()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


def _frame(record: RecordedEvent) -> bytes:
    return (f"id: {record.position}\nevent: appended\ndata: ".encode()
            + msgspec.json.encode(record) + b"\n\n")


async def _stream(hub: Hub, chosen: Filter, after: int | None, limit: int | None
                  ) -> AsyncIterator[bytes]:
    listener = await hub.join(chosen)  # first: nothing committed from now on is missed
    sent, last = 0, after if after is not None else -1
    try:
        yield b"retry: 1000\n: connected\n\n"
        if after is not None:  # catch up from the log, then follow the hub
            async for caught in hub.store.read_all(from_position=after + 1,
                                                   app_name=chosen.app_name,
                                                   user_id=chosen.user_id):
                if chosen.matches(caught):
                    yield _frame(caught)
                    last, sent = caught.position, sent + 1
                    if limit is not None and sent >= limit:
                        return
        while limit is None or sent < limit:
            try:
                async with asyncio.timeout(KEEP_ALIVE_SECONDS):
                    record = await listener.queue.get()
            except TimeoutError:
                yield b": keep-alive\n\n"
                continue
            if record is None:
                return  # cut off or closing: the client reconnects with Last-Event-ID
            if record.position > last:
                yield _frame(record)
                last, sent = record.position, sent + 1
    finally:
        hub.leave(listener)


def _resume_after(request: Request) -> int | None:
    """The position a stream resumes after: `Last-Event-ID`, else `?after=`, else None."""
    resume = request.headers.get("last-event-id", "").strip()
    if not resume:
        return params.whole(request, "after", low=0)
    if not resume.isdigit():
        raise InvalidEvent(f"Last-Event-ID must be a log position, not {resume!r}")
    return int(resume)


async def events(request: Request) -> Response:
    """Server-sent events, one `appended` event per committed event that matches `app`,
    `user` and `session` (each optional): `id` is its log position, `data` the event as
    `export` writes it (a timeline entry)."""
    after = _resume_after(request)
    chosen = Filter(params.an_id(request, "app"), params.an_id(request, "user"),
                    params.an_id(request, "session"))
    count = params.whole(request, "limit", low=1)
    hub: Hub = request.app.state.hub
    return StreamingResponse(_stream(hub, chosen, after, count), media_type="text/event-stream",
                             headers={"cache-control": "no-store", "x-accel-buffering": "no"})
