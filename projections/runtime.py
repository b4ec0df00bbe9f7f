"""Runs the projections of one store: creates their tables, wires the inline ones
into the log's append transaction, rebuilds stale ones, follows the log for the
catch-up ones.

Built in: `heads` (always inline: the session API and its invariants need it
in the append transaction), `history`, `users` and `analytics`, each inline
or catch-up per the `modes` setting (defaults per backend in `DEFAULT_MODES`,
chosen by `scripts/bench_projections.py`: heads inline and the rest catch-up,
on both). All processes of one store must use the same
modes; a mode change between openings is carried over at `start()` under the
log's write lock (a catch-up projection turning inline first folds its backlog).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import structlog
from sqlalchemy.engine import Connection

from projections import engine
from projections import rebuild as rebuilding
from projections.analytics import Analytics, AnalyticsProjection
from projections.catchup import Follower
from projections.engine import CATCHUP, INLINE, Projection
from projections.heads import HeadsProjection
from projections.history import History, HistoryProjection
from projections.rebuild import Progress, RebuildReport
from projections.users import Users, UsersProjection
from session_store.log import EventLog

log = structlog.get_logger(__name__)

_OFF_THE_APPEND_PATH = {"heads": INLINE, "history": CATCHUP, "users": CATCHUP,
                        "analytics": CATCHUP}
DEFAULT_MODES: dict[str, dict[str, str]] = {
    "sqlite": dict(_OFF_THE_APPEND_PATH),
    "postgresql": dict(_OFF_THE_APPEND_PATH),
}
"""Per backend, by measurement (2 cores): heads inline, the rest catch-up on both.

Sequential `append_event` (one awaited call at a time, the runner's shape) on
SQLite: 449 events/s with every built-in inline, 1,249 with history, users and
analytics as catch-up (the follower lingers 50 ms to fold a trickle of appends
in one transaction). Under 64 concurrent appenders SQLite was a wash on the
first machines (inline ~1.9-4.5 k events/s, catch-up ~2.0-3.7 k; one writer
lock either way); on a faster one, with a 1M-event store, all inline appended
9,556 events/s (p50 11.4 ms) and the defaults 12,628 (p50 5.0 ms, lag p50 35
ms, p95 87 ms).
PostgreSQL appends serialize on an advisory lock that inline folds lengthen:
all catch-up appended 4.4-5.5 k events/s (p95 38-48 ms) vs 2.7-3.2 k (p95
54-76 ms) all inline, at a lag of ~0.1 s p50, ~0.2 s p95. The store's query
objects wait for the positions the store itself wrote, so a caller still reads
its own writes.
"""

_ALIASES = {"catchup": CATCHUP, "catch-up": CATCHUP, "catch_up": CATCHUP, "inline": INLINE}


def resolve_modes(modes: Mapping[str, str] | None, dialect: str = "sqlite") -> dict[str, str]:
    """The backend's defaults overridden by `modes`; refuses unknown projections and modes."""
    resolved = dict(DEFAULT_MODES[dialect])
    for name, mode in (modes or {}).items():
        if name not in resolved:
            raise ValueError(f"unknown projection {name!r}; the built-ins are "
                             f"{sorted(resolved)}")
        if mode not in _ALIASES:
            raise ValueError(f"projection {name!r}: mode must be 'inline' or 'catchup', "
                             f"not {mode!r}")
        resolved[name] = _ALIASES[mode]
    if resolved["heads"] != INLINE:
        raise ValueError("the heads projection always runs inline (the session API needs it)")
    return resolved


def _switch_modes(conn: Connection, projections: Sequence[Projection],
                  modes: Mapping[str, str], skip: set[str]) -> None:
    """Carry each projection over to its configured mode, under the log's write lock."""
    engine.lock_writes(conn)
    last = engine.last_position(conn)
    for projection in projections:
        name, wanted = projection.name, modes[projection.name]
        stored = engine.read_mode(conn, name)
        if stored == wanted:
            continue
        if name not in skip:
            if wanted == INLINE:  # fold the backlog the follower left
                behind = engine.read_after(conn, engine.read_checkpoint(conn, name))
                if behind:
                    projection.apply(conn, behind)
            log.debug("projections.mode_changed", projection=name, mode=wanted, position=last)
        engine.record_checkpoint(conn, name, last, mode=wanted)


class ProjectionRuntime:
    """The projections of one open store and how each one runs."""

    def __init__(self, event_log: EventLog, *, modes: Mapping[str, str] | None = None) -> None:
        self.log = event_log
        self.modes = resolve_modes(modes, event_log.db.dialect)
        self.heads = HeadsProjection()
        db = event_log.db
        self.history = History(db, HistoryProjection())
        self.users = Users(db, UsersProjection())
        self.analytics = Analytics(db, AnalyticsProjection())
        self.projections: dict[str, Projection] = {
            "heads": self.heads, "history": self.history.projection,
            "users": self.users.projection, "analytics": self.analytics.projection,
        }
        self.follower: Follower | None = None
        self._rebuilding = asyncio.Lock()

    @property
    def all(self) -> list[Projection]:
        return list(self.projections.values())

    @property
    def inline(self) -> list[Projection]:
        return [p for p in self.all if self.modes[p.name] == INLINE]

    @property
    def catchup(self) -> list[Projection]:
        return [p for p in self.all if self.modes[p.name] == CATCHUP]

    async def start(self) -> None:
        """Prepare tables, register inline projections, rebuild what is stale, start following.

        Must run before the log's first append (inline projections join the
        append transaction).
        """
        stale = await self.log.run_schema(engine.prepare, self.all)
        stale_names = {p.name for p in stale}
        await self.log.run_schema(_switch_modes, self.all, self.modes, stale_names)
        for projection in self.inline:
            self.log.add_inline(projection.apply)
        if stale:
            log.info("projections.stale", projections=sorted(stale_names))
            await self.rebuild(sorted(stale_names))
        if self.catchup:
            self.follower = Follower(self.log, self.catchup)
            await self.follower.start()

    async def rebuild(self, names: Sequence[str] | None = None,
                      progress: Progress | None = None, *,
                      chunk: int = rebuilding.CHUNK) -> RebuildReport:
        """Replay the log into fresh tables of the named projections (all by default) in one
        pass and swap them in atomically; appends continue meanwhile."""
        chosen = self._chosen(names)
        async with self._rebuilding:
            report = await rebuilding.rebuild(self.log, chosen, progress=progress, chunk=chunk)
        if self.follower is not None:
            for projection in chosen:
                if self.modes[projection.name] == CATCHUP:
                    self.follower.advance(projection.name, report.position)
        return report

    async def wait_for(self, position: int, timeout: float | None = None) -> None:
        """Return once every catch-up projection has folded the log up to `position`.

        Inline projections are current as soon as an append returns. Raises
        `TimeoutError` after `timeout` seconds.
        """
        if self.follower is None:
            return
        await asyncio.wait_for(self.follower.wait_for(position), timeout)

    async def verify(self, names: Sequence[str] | None = None) -> list[str]:
        """Compare each projection's rows with a fresh fold of the log; [] when they agree."""
        chosen = self._chosen(names)
        catchup = [p.name for p in chosen if self.modes[p.name] == CATCHUP]
        async with self._rebuilding:
            return await rebuilding.verify(self.log, chosen, catchup=catchup)

    async def close(self) -> None:
        if self.follower is not None:
            await self.follower.stop()
            self.follower = None

    def _chosen(self, names: Sequence[str] | None) -> list[Projection]:
        if names is None:
            return self.all
        unknown = [name for name in names if name not in self.projections]
        if unknown:
            raise ValueError(f"unknown projections {unknown}; known: {sorted(self.projections)}")
        return [self.projections[name] for name in dict.fromkeys(names)]

