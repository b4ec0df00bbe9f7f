"""Full rebuilds (and `verify`): replay the log into fresh tables in one pass.

Several projections share the pass: each chunk of the log is read once and
folded into the fresh (suffixed) tables of all of them in one short write
transaction, so appends keep flowing while a rebuild runs. When the pass has
caught up, one last transaction takes the log's write lock, folds whatever was
appended meanwhile, and swaps the tables in: old ones dropped, fresh ones
renamed, checkpoints set. Readers see the old model until that commit and the
complete new one after it, never a partial one. `verify` runs the same pass
into scratch tables and, in the locked transaction, compares them with the
live rows instead of swapping.

An event a projection cannot fold is quarantined (`projections.quarantine`) in
the rebuilt projection too: a chunk whose fold fails is folded again event by
event, the swap replaces the projection's quarantined events with those the pass
set aside, and the report lists them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.engine import Connection

from projections import checkpoints, quarantine, scratch, tables
from projections.protocol import Projection
from projections.quarantine import Quarantined
from session_store import gc_pause
from session_store.domain.events import RecordedEvent
from session_store.log.eventlog import EventLog
from session_store.logs import get_logger

log = get_logger(__name__)

CHUNK = 20_000
"""Events per write transaction of the pass (about 0.1 s of lock on SQLite)."""

Progress = Callable[[int, int], None]
"""`progress(events_done, events_total)`; the total is the log's size when the pass began."""


@dataclass(frozen=True)
class RebuildReport:
    names: tuple[str, ...]
    events: int
    """Events folded (the whole log, plus what was appended during the pass)."""
    seconds: float
    position: int
    """The log position the swapped-in tables are current with."""
    quarantined: tuple[Quarantined, ...] = field(default=())
    """The events the rebuilt projections could not fold and skipped."""

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def _create(conn: Connection, fresh: Sequence[Projection]) -> int:
    for projection in fresh:
        tables.drop(conn, projection)
        tables.create(conn, projection, indexes=False)
    return checkpoints.last_position(conn)


def _fold(conn: Connection, fresh: Sequence[Projection], events: Sequence[RecordedEvent]) -> None:
    quarantine.check_readable(events)
    for projection in fresh:
        projection.apply(conn, events)


def _fold_each(conn: Connection, fresh: Sequence[Projection], events: Sequence[RecordedEvent]
               ) -> list[Quarantined]:
    """`_fold` that sets aside, per projection, each event whose fold fails."""
    return [found for projection in fresh
            for found in quarantine.fold_each(conn, projection, events, projection.name)]


def _drop(conn: Connection, fresh: Sequence[Projection]) -> None:
    for projection in fresh:
        tables.drop(conn, projection)


def _finish(conn: Connection, live: Sequence[Projection], fresh: Sequence[Projection],
            done: int, found: Sequence[Quarantined]) -> tuple[int, int, list[Quarantined]]:
    """Under the write lock: fold the rest into the fresh tables and swap them in (with
    what the pass quarantined, `found`)."""
    checkpoints.lock_writes(conn)
    for projection in live:
        checkpoints.read_checkpoint(conn, projection.name, for_update=True)
    rest = checkpoints.read_after(conn, done)
    found = [*found, *_fold_each(conn, fresh, rest)]
    last = max(done, checkpoints.last_position(conn))
    for old, new in zip(live, fresh, strict=True):
        tables.swap(conn, old, new)
        checkpoints.record_checkpoint(conn, old.name, last, version=old.version)
        quarantine.replace(conn, old.name, found)
    return len(rest), last, found


def _index(conn: Connection, fresh: Sequence[Projection]) -> None:
    for projection in fresh:
        tables.create_indexes(conn, projection)
        projection.finish_bulk(conn)


async def fold_pass(event_log: EventLog, fresh: Sequence[Projection], *,
                    progress: Progress | None = None, chunk: int = CHUNK,
                    quarantined: list[Quarantined] | None = None) -> tuple[int, int]:
    """Create the fresh tables and fold the whole log into them; returns (position, events).
    The events set aside (a chunk's fold failed: `quarantine`) are added to `quarantined`.

    Reading and folding take turns. Reading the next chunk in a thread while the
    current one folds looked free, but both hold the GIL most of the time and the
    reader gives it up around every row it steps: that way the pass ran 25 % slower.
    """
    total = await event_log.last_position()
    await event_log.run_schema(_create, fresh)
    for projection in fresh:
        projection.start_bulk()
    scan = event_log.db.dialect.scan(event_log.db)
    done = count = 0
    gc_pause.hold()  # a pass allocates millions of short-lived objects: ~12 % of a rebuild
    try:
        while batch := await scan.read(done, chunk):
            try:
                await event_log.run_schema(_fold, fresh, batch)
            except Exception as error:
                if quarantine.is_systemic(error):
                    raise
                found = await event_log.run_schema(_fold_each, fresh, batch)
                if quarantined is not None:
                    quarantined.extend(found)
            done = batch[-1].position
            count += len(batch)
            if progress is not None:
                progress(count, max(total, count))
            if len(batch) < chunk:
                break
    finally:
        gc_pause.release()
        await scan.close()
    await event_log.run_schema(_index, fresh)
    return done, count


async def rebuild(event_log: EventLog, live: Sequence[Projection], *,
                  progress: Progress | None = None, chunk: int = CHUNK) -> RebuildReport:
    """Replay the log into fresh tables of `live` and swap them in atomically."""
    started = time.perf_counter()
    suffix = f"_rb{uuid.uuid4().hex[:10]}"
    fresh = [projection.for_rebuild(suffix) for projection in live]
    names = tuple(p.name for p in live)
    found: list[Quarantined] = []
    await event_log.run_schema(_begin, suffix)
    try:
        done, count = await fold_pass(event_log, fresh, progress=progress, chunk=chunk,
                                      quarantined=found)
        rest, position, found = await event_log.run_schema(_finish, live, fresh, done, found)
        count += rest
        await event_log.run_schema(scratch.forget, suffix)
    except BaseException:
        await _discard(event_log, fresh, suffix)
        raise
    seconds = time.perf_counter() - started
    report = RebuildReport(names=names, events=count, seconds=seconds, position=position,
                           quarantined=tuple(found))
    log.info("projections.rebuilt", projections=names, events=count,
             seconds=round(seconds, 3), events_per_second=round(report.events_per_second))
    return report


def _compare(conn: Connection, live: Sequence[Projection], fresh: Sequence[Projection],
             catchup: set[str], done: int) -> list[str]:
    checkpoints.lock_writes(conn)
    for projection in live:
        if projection.name in catchup:
            checkpoints.read_checkpoint(conn, projection.name, for_update=True)
    rest = checkpoints.read_after(conn, done)
    _fold_each(conn, fresh, rest)
    last = max(done, checkpoints.last_position(conn))
    differences: list[str] = []
    for old, new in zip(live, fresh, strict=True):
        if old.name in catchup:  # bring it to `last` the way its follower would
            position = checkpoints.read_checkpoint(conn, old.name)
            behind = checkpoints.read_after(conn, position)
            if behind:
                quarantine.record(conn, quarantine.fold_each(conn, old, behind, old.name))
                checkpoints.record_checkpoint(conn, old.name, behind[-1].position)
        differences.extend(tables.compare(old.name, old.tables(), tables.dump(conn, old),
                                          tables.dump(conn, new)))
        tables.drop(conn, new)
    if last and not differences:
        log.debug("projections.verified", projections=[p.name for p in live], position=last)
    return differences


async def verify(event_log: EventLog, live: Sequence[Projection], *,
                 catchup: Sequence[str] = (), chunk: int = CHUNK) -> list[str]:
    """Differences between each projection's rows and a fresh fold of the log (none: [])."""
    suffix = f"_vf{uuid.uuid4().hex[:10]}"
    fresh = [projection.for_rebuild(suffix) for projection in live]
    await event_log.run_schema(_begin, suffix)
    try:
        done, _ = await fold_pass(event_log, fresh, chunk=chunk)
        result: list[str] = await event_log.run_schema(_compare, live, fresh, set(catchup),
                                                        done)
        await event_log.run_schema(scratch.forget, suffix)
        return result
    except BaseException:
        await _discard(event_log, fresh, suffix)
        raise


def _begin(conn: Connection, suffix: str) -> None:
    """Sweep what killed passes left (`projections.scratch`), then claim `suffix`."""
    scratch.sweep(conn)
    scratch.register(conn, suffix)


async def _discard(event_log: EventLog, fresh: Sequence[Projection], suffix: str) -> None:
    try:
        await event_log.run_schema(_drop, fresh)
        await event_log.run_schema(scratch.forget, suffix)
    except Exception as error:  # noqa: BLE001 - the original failure matters more
        log.warning("projections.discard_failed", error=repr(error))
