"""Analytics for the command line, folded straight from the log.

Per session, user, app or day: sessions, messages, interactions (messages that
carry usage or a response time, plus tracked interactions), tokens in and out,
mean and p95 response time, and a response-time histogram. Deleted sessions
are left out, as everywhere else.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from session_store.events import InteractionTracked, MessageAppended, SessionKey
from session_store.store import SessionStore

GROUPINGS = ("session", "user", "app", "day")

# Upper edges of the histogram buckets, in seconds (the last bucket is open).
EDGES = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


@dataclass
class Totals:
    sessions: set[SessionKey] = field(default_factory=set)
    messages: int = 0
    interactions: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    times: list[float] = field(default_factory=list)
    tracked_time: float = 0.0
    tracked: int = 0

    def add(self, other: Totals) -> None:
        self.sessions |= other.sessions
        self.messages += other.messages
        self.interactions += other.interactions
        self.tokens_in += other.tokens_in
        self.tokens_out += other.tokens_out
        self.times.extend(other.times)
        self.tracked_time += other.tracked_time
        self.tracked += other.tracked

    def row(self, key: str) -> dict[str, Any]:
        times = sorted(self.times)
        timed = len(times) + self.tracked
        return {
            "key": key, "sessions": len(self.sessions), "messages": self.messages,
            "interactions": self.interactions, "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "mean_response_time": (sum(times) + self.tracked_time) / timed if timed else None,
            "p95_response_time": (times[max(0, math.ceil(0.95 * len(times)) - 1)]
                                  if times else None),
        }


def _day(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


_KEYS: dict[str, Callable[[SessionKey, str], str]] = {
    "session": lambda k, day: f"{k.app_name}/{k.user_id}/{k.session_id}",
    "user": lambda k, day: f"{k.app_name}/{k.user_id}",
    "app": lambda k, day: k.app_name,
    "day": lambda k, day: day,
}


async def analytics(store: SessionStore, by: str, *, app_name: str | None = None,
                    progress: Callable[[int], None] | None = None
                    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(rows grouped `by`, histogram buckets) over every visible session."""
    per: dict[tuple[SessionKey, str], Totals] = {}
    deleted: set[SessionKey] = set()
    seen = 0
    async for record in store.read_all(app_name=app_name, batch_size=5000):
        seen += 1
        if progress is not None and seen % 5000 == 0:
            progress(5000)
        if not record.session_id:
            continue  # app- and user-scoped state streams
        key = record.key
        if record.type == "SessionDeleted":
            deleted.add(key)
            continue
        data = record.data
        day = _day(record.recorded_at)
        totals = per.get((key, day))
        if totals is None:
            totals = per[(key, day)] = Totals(sessions={key})
        if isinstance(data, MessageAppended):
            message = data.message
            totals.messages += 1
            if message.usage is not None:
                totals.tokens_in += message.usage.tokens_in
                totals.tokens_out += message.usage.tokens_out
            if message.response_time is not None:
                totals.times.append(message.response_time)
            if message.usage is not None or message.response_time is not None:
                totals.interactions += 1
        elif isinstance(data, InteractionTracked):
            totals.interactions += 1
            totals.tracked += 1
            totals.tokens_in += data.tokens_in
            totals.tokens_out += data.tokens_out
            totals.tracked_time += data.response_time
    if progress is not None:
        progress(seen % 5000)
    groups: dict[str, Totals] = {}
    for (key, day), totals in per.items():
        if key in deleted:
            continue
        groups.setdefault(_KEYS[by](key, day), Totals()).add(totals)
    rows = [groups[name].row(name) for name in sorted(groups)]
    return rows, buckets(t for g in groups.values() for t in g.times)


def buckets(times: Iterable[float]) -> list[dict[str, Any]]:
    """Counts per bucket, trimmed to the range that holds data."""
    counts = [0] * (len(EDGES) + 1)
    for value in times:
        index = next((i for i, edge in enumerate(EDGES) if value < edge), len(EDGES))
        counts[index] += 1
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


def _span(seconds: float) -> str:
    return f"{seconds * 1000:g} ms" if seconds < 1 else f"{seconds:g} s"
