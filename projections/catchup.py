"""Catch-up projections: a follower folds the log into them after the appends commit.

One `Follower` serves every catch-up projection of a store: it reads the log
by position (woken by this process's appends, polling for other processes',
lingering briefly so a trickle of appends is read and folded together), and
per batch runs ONE write transaction that, for each projection,
reads its checkpoint (locking the row on PostgreSQL), folds the events after
it and stores the new checkpoint. Output and checkpoint commit together, so a
crash anywhere leaves the projection exactly at a batch boundary: resumed, it
neither double-counts nor skips. Two followers of the same projection (two
processes) are safe for the same reason: the second one skips what the first
committed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import structlog
from sqlalchemy.engine import Connection

from projections import checkpoints
from projections.protocol import Projection
from session_store.domain.events import RecordedEvent
from session_store.log.eventlog import EventLog

log = structlog.get_logger(__name__)

BATCH_SIZE = 1000
RETRY_DELAY = 1.0
LINGER = 0.05
"""Seconds a follower waits after a wake-up for more appends before it reads and folds."""


def fold_batch(conn: Connection, projections: Sequence[tuple[Projection, str]],
               events: Sequence[RecordedEvent]) -> dict[str, int]:
    """Fold `events` into each projection past its checkpoint; returns the new checkpoints."""
    done: dict[str, int] = {}
    for projection, checkpoint in projections:
        position = checkpoints.read_checkpoint(conn, checkpoint, for_update=True)
        fresh = [e for e in events if e.position > position]
        if fresh:
            projection.apply(conn, fresh)
            position = fresh[-1].position
            checkpoints.record_checkpoint(conn, checkpoint, position)
        done[checkpoint] = position
    return done


def _ensure(conn: Connection, projections: Sequence[tuple[Projection, str]]) -> dict[str, int]:
    for projection, checkpoint in projections:
        checkpoints.ensure_checkpoint(conn, checkpoint, projection.version, checkpoints.CATCHUP)
    return {name: checkpoints.read_checkpoint(conn, name) for _, name in projections}


class Follower:
    """Keeps a group of catch-up projections current with the log."""

    def __init__(self, event_log: EventLog, projections: Sequence[Projection], *,
                 checkpoints: Sequence[str] | None = None, batch_size: int = BATCH_SIZE,
                 poll_interval: float = 0.25, linger: float = LINGER) -> None:
        names = list(checkpoints) if checkpoints is not None else [p.name for p in projections]
        self.log = event_log
        self.projections = list(zip(projections, names, strict=True))
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.linger = linger
        self.positions: dict[str, int] = dict.fromkeys(names, 0)
        self.batches = 0
        self.error: BaseException | None = None
        self._changed = asyncio.Event()
        self._hurry = asyncio.Event()
        self._waiters = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def position(self) -> int:
        """Every projection of the group has folded the log up to here."""
        return min(self.positions.values(), default=0)

    async def load(self) -> None:
        """Create missing checkpoint rows and read where each projection stands."""
        self._advance(await self.log.run_schema(_ensure, self.projections))

    async def start(self) -> None:
        await self.load()
        self._task = asyncio.create_task(self._run(), name="session-store-catchup")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def step(self) -> int:
        """Fold the next batch read straight from the log; returns how many events it read."""
        batch = [record async for record in self.log.read_all(
            from_position=self.position + 1, limit=self.batch_size, batch_size=self.batch_size)]
        if batch:
            await self.commit(batch)
        return len(batch)

    async def catch_up(self) -> None:
        """Fold until the end of the log as it is now."""
        while await self.step() == self.batch_size:
            pass

    async def commit(self, batch: Sequence[RecordedEvent]) -> None:
        self._advance(await self.log.run_schema(fold_batch, self.projections, batch))
        self.batches += 1

    def advance(self, checkpoint: str, position: int) -> None:
        """Record that a projection is known to be at `position` (e.g. after a rebuild)."""
        self._advance({checkpoint: position})

    def _advance(self, positions: dict[str, int]) -> None:
        for name, position in positions.items():
            if position > self.positions.get(name, 0):
                self.positions[name] = position
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, position: int) -> None:
        if self.position >= position:
            return
        self._waiters += 1
        self._hurry.set()
        try:
            while self.position < position:
                await self._changed.wait()
        finally:
            self._waiters -= 1

    async def _run(self) -> None:
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - a follower must outlive a bad moment
                self.error = error
                log.error("projections.catchup_failed", error=repr(error),
                          position=self.position,
                          projections=[name for _, name in self.projections])
                await asyncio.sleep(RETRY_DELAY)

    async def _follow(self) -> None:
        while True:
            if await self.step() == self.batch_size:
                continue  # behind: no waiting until caught up
            await self.log.wait_past(self.position, self.poll_interval)
            # Linger for more: under a steady trickle of small appends this reads and folds
            # many of them in one transaction instead of one each. A reader waiting for a
            # position (`wait_for`) cuts it short.
            if self._waiters == 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.linger):
                        await self._hurry.wait()
            self._hurry.clear()
