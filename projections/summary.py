"""Manager analytics: one period of one app (or user) summed from the analytics read model.

The read model keeps a row per session and UTC day (`projections.analytics`) and a
row per session, day, model and provider (`projections.model_usage`), so a period
is taken in whole UTC days: every day from the one holding `start` through the one
holding `end`. Within those days every count and sum is exact (integers), and so
are the messages-per-session figures (nearest-rank percentiles over the exact
per-session counts). Response-time percentiles come from the merged log-bucket
histogram (`projections.tally`): within 2.5 % of the true value; their count,
mean, min and max are exact.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import msgspec
import sqlalchemy as sa

from projections.tally import ResponseTimes, Tally
from session_store.domain import validation
from session_store.errors import InvalidEvent

When = float | int | datetime
"""A point in time: epoch seconds, or an aware `datetime`."""


class Spread(msgspec.Struct, frozen=True, kw_only=True):
    """A distribution over sessions (None when there is no session)."""

    mean: float | None = None
    p50: float | None = None
    p95: float | None = None
    max: float | None = None


class ModelUsage(msgspec.Struct, frozen=True, kw_only=True):
    """What one model (or provider) served in the period."""

    messages: int
    """Messages that carried usage naming it."""
    interactions: int
    """Those messages plus the interactions tracked with it."""
    tokens_in: int
    tokens_out: int


class Period(msgspec.Struct, frozen=True, kw_only=True):
    """Which rows a summary reads: an app (None: all), a user, and a range of UTC days."""

    app_name: str | None
    user_id: str | None
    start: float | None
    end: float | None
    first_day: str | None
    """The first UTC day counted (ISO date; None: from the beginning)."""
    last_day: str | None
    """The last UTC day counted (None: up to now)."""

    def where(self, table: sa.Table) -> list[Any]:
        conditions = []
        if self.app_name is not None:
            conditions.append(table.c.app_name == self.app_name)
        if self.user_id is not None:
            conditions.append(table.c.user_id == self.user_id)
        if self.first_day is not None:
            conditions.append(table.c.day >= self.first_day)
        if self.last_day is not None:
            conditions.append(table.c.day <= self.last_day)
        return conditions


class Summary(msgspec.Struct, frozen=True, kw_only=True):
    """`analytics.summary(...)`: the period, then what happened in it."""

    period: Period
    sessions: int
    """Sessions with a message or a tracked interaction in the period."""
    active_users: int
    """Users (per app) with such a session."""
    messages: int
    messages_by_role: dict[str, int]
    messages_per_session: Spread
    interactions: int
    tokens_in: int
    tokens_out: int
    models: dict[str, ModelUsage]
    """By model name, for usage that names one."""
    providers: dict[str, ModelUsage]
    """By provider, for usage that names one."""
    response_time: ResponseTimes


def epoch(value: When | None, what: str) -> float | None:
    """`value` as epoch seconds: a number, or an aware datetime (a naive one is refused)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidEvent(f"{what} must be an aware datetime (give it a tzinfo, e.g. "
                               f"timezone.utc), not {value!r}")
        value = value.timestamp()
    validation.check_timestamp(value, what)
    return float(value)


def period(app_name: str | None, user_id: str | None, start: When | None,
           end: When | None, day_of: Callable[[float], str]) -> Period:
    """The rows of the period (`day_of`: the UTC day rule of the rows themselves)."""
    validation.check_ids(app_name=app_name, user_id=user_id)
    since, until = epoch(start, "start"), epoch(end, "end")
    if since is not None and until is not None and since > until:
        raise InvalidEvent(f"start ({since}) is after end ({until})")
    return Period(app_name=app_name, user_id=user_id, start=since, end=until,
                  first_day=None if since is None else day_of(since),
                  last_day=None if until is None else day_of(until))


def nearest_rank(ordered: Sequence[int], q: float) -> float:
    """The `q` quantile of sorted values by nearest rank (exact: one of the values)."""
    return float(ordered[max(1, math.ceil(q * len(ordered))) - 1])


def summarize(period: Period, rows: Sequence[Any], models: Sequence[Any],
              providers: Sequence[Any]) -> Summary:
    """The summary of the base rows of the period and its per-model and -provider sums."""
    sessions: dict[tuple[str, str, str], int] = {}
    total = Tally()
    for row in rows:
        tally = Tally.from_row(row)
        key = (row["app_name"], row["user_id"], row["session_id"])
        sessions[key] = sessions.get(key, 0) + tally.messages
        total.merge(tally)
    counts = sorted(sessions.values())
    spread = Spread() if not counts else Spread(
        mean=sum(counts) / len(counts), p50=nearest_rank(counts, 0.50),
        p95=nearest_rank(counts, 0.95), max=float(counts[-1]))
    return Summary(
        period=period, sessions=len(sessions), active_users=len({key[:2] for key in sessions}),
        messages=total.messages, messages_by_role=dict(sorted(total.roles.items())),
        messages_per_session=spread, interactions=total.interactions,
        tokens_in=total.tokens_in, tokens_out=total.tokens_out,
        models=_usage(models, "model"), providers=_usage(providers, "provider"),
        response_time=total.response_times())


def _usage(rows: Sequence[Any], by: str) -> dict[str, ModelUsage]:
    return {row[by]: ModelUsage(messages=int(row["messages"]),
                           interactions=int(row["interactions"]),
                           tokens_in=int(row["tokens_in"]), tokens_out=int(row["tokens_out"]))
            for row in rows}
