"""Runs the projections of one store: creates their tables, wires the inline ones
into the log's append transaction, rebuilds stale ones, follows the log for the
catch-up ones.

The runtime is a registry: it runs whichever projections it is given (the
store gives it the four built-ins, `built_ins()`, and any of the caller's).
Each runs inline or catch-up per the `modes` setting; `heads` always inline
(the session API and its invariants need it in the append transaction), the
others by default as `DEFAULT_MODES` says (catch-up: see docs/DESIGN.md for the
measurements behind it). All processes of one store must use the same modes; a
mode change between openings is carried over at `start()` under the log's
write lock (a catch-up projection turning inline first folds its backlog).

No event stops a read model: one a projection cannot fold is quarantined for it
(`projections.quarantine`); `verify` names each, `health()` lists them with every
projection's lag and the follower's current error, and `retry_quarantined` rebuilds
the projections that hold any (after the cause was fixed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Connection

from projections import checkpoints, health, quarantine
from projections import rebuild as rebuilding
from projections.analytics import AnalyticsProjection
from projections.catchup import Follower
from projections.checkpoints import CATCHUP, INLINE
from projections.heads import HeadsProjection
from projections.health import Health
from projections.history import HistoryProjection
from projections.protocol import Projection
from projections.rebuild import Progress, RebuildReport
from projections.users import UsersProjection
from session_store.log.eventlog import EventLog
from session_store.logs import get_logger

log = get_logger(__name__)

DEFAULT_MODES = {"heads": INLINE}
"""Modes of the projections `modes` does not name; any other projection runs catch-up
(off the append path: on both backends appends are faster, and readers of the store
still see its own writes)."""


def built_ins() -> list[Projection]:
    """Fresh instances of the built-in projections: heads, history, users, analytics."""
    return [HeadsProjection(), HistoryProjection(), UsersProjection(), AnalyticsProjection()]


_ALIASES = {"catchup": CATCHUP, "catch-up": CATCHUP, "catch_up": CATCHUP, "inline": INLINE}


def resolve_modes(modes: Mapping[str, str] | None, names: Sequence[str] | None = None
                  ) -> dict[str, str]:
    """The modes of the projections `names` (the built-ins by default): the defaults
    overridden by `modes`; refuses unknown projections and modes."""
    if names is None:
        names = [projection.name for projection in built_ins()]
    resolved = {name: DEFAULT_MODES.get(name, CATCHUP) for name in names}
    for name, mode in (modes or {}).items():
        if name not in resolved:
            raise ValueError(f"unknown projection {name!r}; the projections are "
                             f"{sorted(resolved)}")
        if mode not in _ALIASES:
            raise ValueError(f"projection {name!r}: mode must be 'inline' or 'catchup', "
                             f"not {mode!r}")
        resolved[name] = _ALIASES[mode]
    if resolved.get("heads") != INLINE:
        raise ValueError("the heads projection always runs inline (the session API needs it)")
    return resolved


def _switch_modes(conn: Connection, projections: Sequence[Projection],
                  modes: Mapping[str, str], skip: set[str]) -> None:
    """Carry each projection over to its configured mode, under the log's write lock."""
    checkpoints.lock_writes(conn)
    last = checkpoints.last_position(conn)
    for projection in projections:
        name, wanted = projection.name, modes[projection.name]
        stored = checkpoints.read_mode(conn, name)
        if stored == wanted:
            continue
        if name not in skip:
            if wanted == INLINE:  # fold the backlog the follower left
                behind = checkpoints.read_after(conn, checkpoints.read_checkpoint(conn, name))
                quarantine.record(conn, quarantine.fold_each(conn, projection, behind, name))
            log.debug("projections.mode_changed", projection=name, mode=wanted, position=last)
        checkpoints.record_checkpoint(conn, name, last, mode=wanted)


class ProjectionRuntime:
    """The projections of one open store and how each one runs."""

    def __init__(self, event_log: EventLog, projections: Sequence[Projection] | None = None,
                 *, modes: Mapping[str, str] | None = None) -> None:
        self.log = event_log
        chosen = built_ins() if projections is None else list(projections)
        self.projections: dict[str, Projection] = {p.name: p for p in chosen}
        if len(self.projections) != len(chosen):
            raise ValueError(f"two projections share a name: {[p.name for p in chosen]}")
        self.modes = resolve_modes(modes, list(self.projections))
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
        stale = await self.log.run_schema(checkpoints.prepare, self.all)
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
        """Compare each projection's rows with a fresh fold of the log, and name each event
        a projection quarantined (one problem each); [] when all is well."""
        chosen = self._chosen(names)
        catchup = [p.name for p in chosen if self.modes[p.name] == CATCHUP]
        async with self._rebuilding:
            problems = await rebuilding.verify(self.log, chosen, catchup=catchup)
            found = await self._read(quarantine.read, [p.name for p in chosen])
        return [*problems, *(item.describe() for item in found)]

    async def health(self) -> Health:
        """Per projection its checkpoint, lag and quarantined events; the follower's error."""
        last, standing = await self._read(health.read, {p.name: self.modes[p.name]
                                                         for p in self.all})
        follower = self.follower
        if follower is None or follower.error is None:
            return Health(last_position=last, projections=standing)
        return Health(last_position=last, projections=standing,
                      error=quarantine.describe_error(follower.error),
                      error_at=follower.error_at, failures=follower.failures)

    async def retry_quarantined(self, names: Sequence[str] | None = None,
                                progress: Progress | None = None) -> RebuildReport | None:
        """Rebuild the projections (of `names`, else all) that hold quarantined events, so
        each event is folded again in its place in the log; what still fails stays
        quarantined (the report lists it). None when nothing was quarantined."""
        chosen = [p.name for p in self._chosen(names)]
        held = sorted({item.projection for item in await self._read(quarantine.read, chosen)})
        return await self.rebuild(held, progress) if held else None

    async def _read(self, function: Any, *args: Any) -> Any:
        """`function(sync_connection, *args)` on a read connection."""
        async with self.log.db.engine.connect() as conn:
            return await conn.run_sync(function, *args)

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

