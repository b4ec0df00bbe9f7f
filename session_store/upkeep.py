"""The operator's side of the facade: retention policies, their enforcement, cleanup and
storage optimization (mixed into `SessionStore`).

A policy is an event (`RetentionSet` on the app's scope stream), read back from the
retention index; enforcing it appends the lifecycle facts the store already knows
(`session_store.retention`). `optimize` asks the dialect for its upkeep statements.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

from projections.protocol import Projection
from projections.retention import RetentionIndex
from projections.runtime import ProjectionRuntime
from session_store import reads, retention
from session_store.appending import Appending
from session_store.domain import validation
from session_store.domain.events import RecordedEvent, SessionKey
from session_store.domain.retention import RetentionPolicy
from session_store.errors import InvalidEvent, StoreUnavailable
from session_store.maintenance import Maintenance
from session_store.retention import RetentionReport, Rules
from session_store.storage import schema

_LOG_TABLES = (schema.events.name, schema.streams.name)
_CATCH_UP_SECONDS = 300.0
"""How long retention waits for the catch-up read models to reach the log's end."""


@dataclass(frozen=True)
class OptimizeReport:
    """What `optimize()` did: the backend's steps, in order, and the database's size."""

    backend: str
    steps: tuple[str, ...]
    bytes_before: int
    bytes_after: int
    seconds: float


class Upkeep(Appending):
    """Retention, cleanup and optimization commands (mixed into `SessionStore`)."""

    projections: ProjectionRuntime
    retention: RetentionIndex
    """Retention policies, and the index their enforcement finds candidates in."""
    maintenance: Maintenance | None = None
    """The background task of `open_store(..., maintenance_interval=...)`, if any."""
    busy_timeout: float = 30.0

    def start_upkeep(self, busy_timeout: float, maintenance_interval: float | None) -> None:
        """Settings of the open store; start its maintenance task when it has one."""
        self.busy_timeout = busy_timeout
        if maintenance_interval is not None:
            self.maintenance = Maintenance(self.enforce_retention, maintenance_interval)
            self.maintenance.start()

    async def stop_upkeep(self) -> None:
        if self.maintenance is not None:
            await self.maintenance.stop()

    async def set_retention(self, *, app_name: str, policy: RetentionPolicy | None
                            ) -> RecordedEvent:
        """Record the app's retention policy (None, or a policy with no rule: none). It is
        an event on the app's scope stream; `enforce_retention` applies it."""
        stream = SessionKey(validation.check_id(app_name, "app_name"), "", "")
        if policy is None:
            policy = RetentionPolicy()
        if not isinstance(policy, RetentionPolicy):
            raise InvalidEvent(f"policy must be a RetentionPolicy or None, not "
                               f"{type(policy).__name__}")
        return (await self._commit([self.log.prepare_append(stream, [policy.payload()])]))[0]

    async def get_retention(self, *, app_name: str) -> RetentionPolicy | None:
        """The app's retention policy, None when it has none."""
        app_name = validation.check_id(app_name, "app_name")
        await self._caught_up()
        return (await self.retention.policies(app_name)).get(app_name)

    async def enforce_retention(self, *, app_name: str | None = None,
                                now: float | None = None) -> RetentionReport:
        """Apply the retention policy of `app_name` (default: of every app that has one),
        measuring idleness against `now` (default: the time). Returns what it did; running
        it again with the same `now` does nothing more."""
        if app_name is not None:
            validation.check_id(app_name, "app_name")
        at = retention.clock(now)
        await self._caught_up()
        policies = await self.retention.policies(app_name)
        return await retention.enforce(self, self.retention,
                                       {app: Rules.of(p) for app, p in policies.items()}, at)

    async def cleanup(self, *, app_name: str | None = None,
                      inactive_for: float | timedelta | None = None,
                      archived_for: float | timedelta | None = None,
                      deleted_for: float | timedelta | None = None,
                      now: float | None = None) -> RetentionReport:
        """One-off retention, whatever the policies say: archive sessions idle for
        `inactive_for`, delete archived sessions idle for `archived_for`, purge sessions
        deleted `deleted_for` ago; in `app_name` (default: every app)."""
        rules = retention.cleanup_rules(inactive_for, archived_for, deleted_for)
        at = retention.clock(now)
        await self._caught_up()
        if app_name is not None:
            apps = [validation.check_id(app_name, "app_name")]
        else:
            apps = await reads.app_names(self.db) if rules != Rules() else []
        return await retention.enforce(self, self.retention, dict.fromkeys(apps, rules), at)

    async def _caught_up(self) -> None:
        """The retention index has folded the whole log as of now, whoever wrote it (other
        processes too), so no policy or session due is missed."""
        last = await self.log.last_position()
        try:
            await self.projections.wait_for(last, _CATCH_UP_SECONDS)
        except TimeoutError:
            raise StoreUnavailable(f"the read models did not reach log position {last} in "
                                   f"{_CATCH_UP_SECONDS:.0f} s: see health()") from None

    async def optimize(self) -> OptimizeReport:
        """Storage upkeep, for a quiet moment (it waits for other writers' locks, and they
        for it). SQLite: merge the full-text index, `ANALYZE`, `VACUUM`, checkpoint and
        truncate the WAL. PostgreSQL: `VACUUM ANALYZE` of the log and read-model tables."""
        dialect = self.db.dialect
        start = time.perf_counter()
        projections = self.projections.all
        tables = [*_LOG_TABLES, *(name for p in projections for name in _tables(p))]
        text = [name for p in projections if p.name == "history"
                for name in p.extra_tables(dialect)]
        steps, before, after = await dialect.optimize(self.db, tables, text, self.busy_timeout)
        return OptimizeReport(backend=dialect.name, steps=tuple(steps), bytes_before=before,
                              bytes_after=after, seconds=time.perf_counter() - start)


def _tables(projection: Projection) -> list[str]:
    return [table.name for table in projection.tables()]
