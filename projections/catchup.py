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

An event a projection cannot fold does not stop it: when a batch's fold fails, the
batch is folded again event by event and the event that fails is quarantined for
that projection (`projections.quarantine`). A database error is not the event's
fault: the follower keeps it in `error` (see `SessionStore.health()`) and tries the
batch again after `RETRY_DELAY`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence

from sqlalchemy.engine import Connection

from projections import checkpoints, quarantine
from projections.protocol import Projection
from session_store.domain.events import RecordedEvent
from session_store.log.eventlog import EventLog
from session_store.logs import get_logger

log = get_logger(__name__)

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
            quarantine.check_readable(fresh)
            projection.apply(conn, fresh)
            position = fresh[-1].position
            checkpoints.record_checkpoint(conn, checkpoint, position)
        done[checkpoint] = position
    return done


def fold_isolated(conn: Connection, projections: Sequence[tuple[Projection, str]],
                  events: Sequence[RecordedEvent]) -> dict[str, int]:
    """`fold_batch` for a batch whose fold failed: event by event where a projection's fold
    fails, quarantining (for that projection) each event that fails on its own."""
    done: dict[str, int] = {}
    for projection, checkpoint in projections:
        position = checkpoints.read_checkpoint(conn, checkpoint, for_update=True)
        fresh = [e for e in events if e.position > position]
        if fresh:
            quarantine.record(conn, quarantine.fold_each(conn, projection, fresh, checkpoint))
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
        """Why the last attempt to fold failed; None once a batch folds again."""
        self.error_at: float | None = None
        self.failures = 0
        """Attempts that failed in a row (each retried after `RETRY_DELAY`)."""
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
            from_position=self.position + 1, limit=self.batch_size, batch_size=self.batch_size,
            tolerant=True)]
        if batch:
            await self.commit(batch)
        self.error, self.error_at, self.failures = None, None, 0  # the database answers again
        return len(batch)

    async def catch_up(self) -> None:
        """Fold until the end of the log as it is now."""
        while await self.step() == self.batch_size:
            pass

    async def commit(self, batch: Sequence[RecordedEvent]) -> None:
        try:
            done = await self.log.run_schema(fold_batch, self.projections, batch)
        except Exception as error:
            if quarantine.is_systemic(error):
                raise
            log.warning("projections.batch_failed", error=quarantine.describe_error(error),
                        first=batch[0].position, last=batch[-1].position,
                        hint="folding the batch event by event to quarantine what fails")
            done = await self.log.run_schema(fold_isolated, self.projections, batch)
        self._advance(done)
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
                self.error, self.error_at = error, time.time()
                self.failures += 1
                log.error("projections.catchup_failed", error=repr(error),
                          position=self.position, failures=self.failures,
                          retry_in=RETRY_DELAY,
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
