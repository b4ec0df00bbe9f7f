"""Analytics for the command line, read from the analytics read model (`store.analytics`).

Rows are the read model's own `Stats`, per session, user, app or (app, UTC) day, with
its semantics: a deleted session is left out of the per-session rows but stays in the
user, app and day rollups; a purged session is gone from all of them.

The response-time histogram is the read model's too: every row keeps a log-bucket
histogram of its response times (`projections.tally`), and the rows shown are merged
and regrouped into the wider buckets of `EDGES` (each log bucket by its middle value, so
a count may sit one bucket off when it lies within 2.5 % of an edge).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from projections.analytics import Stats
from projections.tally import bucket_value
from session_store.store import SessionStore

GROUPINGS = ("session", "user", "app", "day")

KEYS: dict[str, tuple[str, ...]] = {
    "session": ("app_name", "user_id", "session_id"), "user": ("app_name", "user_id"),
    "app": ("app_name",), "day": ("app_name", "day"),
}
"""The `Stats` fields that name a row, per grouping."""

# Upper edges of the histogram buckets, in seconds (the last bucket is open).
EDGES = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)

CATCH_UP_SECONDS = 120.0
"""How long a command waits for catch-up read models to fold the log before reading."""


@dataclass(frozen=True)
class Figures:
    by: str
    rows: list[Stats]
    histogram: list[dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        return {"by": self.by, "rows": [msgspec.to_builtins(row) for row in self.rows],
                "histogram": self.histogram}


async def analytics(store: SessionStore, by: str, *, app_name: str | None = None) -> Figures:
    """The read model's rows grouped `by` (of one app, or of every app), with a histogram."""
    model = store.analytics
    every_app: list[Stats] = await model.by_app()
    shown = [s for s in every_app if app_name is None or s.app_name == app_name]
    apps = [s.app_name for s in shown]
    rows: list[Stats] = shown if by == "app" else []
    for app in apps:
        if by == "session":
            rows.extend(await model.sessions(app))
        elif by == "user":
            rows.extend(await model.by_user(app))
        elif by == "day":
            rows.extend(await model.by_day(app))
    return Figures(by, rows, buckets(await model.histogram(by, apps)))


def buckets(hist: dict[int, int]) -> list[dict[str, Any]]:
    """Counts per `EDGES` bucket, trimmed to the range that holds data."""
    counts = [0] * (len(EDGES) + 1)
    for index, count in hist.items():
        counts[_bucket(bucket_value(index) / 1_000_000)] += count
    used = [i for i, count in enumerate(counts) if count]
    if not used:
        return []
    result = []
    for i in range(used[0], used[-1] + 1):
        low = 0.0 if i == 0 else EDGES[i - 1]
        high = EDGES[i] if i < len(EDGES) else None
        label = f"{_span(low)}–{_span(high)}" if high is not None else f"≥ {_span(low)}"
        result.append({"low": low, "high": high, "label": label, "count": counts[i]})
    return result


def _bucket(seconds: float) -> int:
    return next((i for i, edge in enumerate(EDGES) if seconds < edge), len(EDGES))


def _span(seconds: float) -> str:
    return f"{seconds * 1000:g} ms" if seconds < 1 else f"{seconds:g} s"
