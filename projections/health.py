"""How the read models stand: per projection its checkpoint, lag behind the log and
quarantined events, plus the catch-up follower's current error (what
`SessionStore.health()` returns)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from projections import checkpoints, quarantine
from projections.checkpoints import INLINE
from projections.quarantine import Quarantined


@dataclass(frozen=True)
class ProjectionHealth:
    name: str
    mode: str
    """'inline' or 'catchup'."""
    checkpoint: int
    """The log position the projection has folded up to (inline: the log's last)."""
    lag: int
    """Events of the log it has not folded yet (the log's last position - checkpoint)."""
    quarantined: tuple[Quarantined, ...]
    """Events it could not fold and skipped (see docs/API.md, "Poison events")."""


@dataclass(frozen=True)
class Health:
    last_position: int
    """The log's last position."""
    projections: dict[str, ProjectionHealth]
    error: str | None = None
    """Why the catch-up follower's last attempt failed (it retries); None when it folds."""
    error_at: float | None = None
    failures: int = 0
    """Attempts of the follower that failed in a row."""

    @property
    def quarantined(self) -> list[Quarantined]:
        return [item for p in self.projections.values() for item in p.quarantined]

    @property
    def ok(self) -> bool:
        """No follower error and no quarantined event (a lag is not a problem)."""
        return self.error is None and not self.quarantined


def read(conn: Connection, modes: Mapping[str, str]) -> tuple[int, dict[str, ProjectionHealth]]:
    """The log's last position and each projection's standing, read on `conn`."""
    last = checkpoints.last_position(conn)
    found = quarantine.read(conn, list(modes))
    standing: dict[str, ProjectionHealth] = {}
    for name, mode in modes.items():
        position = last if mode == INLINE else min(checkpoints.read_checkpoint(conn, name), last)
        standing[name] = ProjectionHealth(
            name=name, mode=mode, checkpoint=position, lag=last - position,
            quarantined=tuple(item for item in found if item.projection == name))
    return last, standing
