"""Analytics: interactions, messages by role, tokens and response times per session, user,
app and day.

The base table holds one row per session and UTC day (of `recorded_at`); the
per-user, per-app and per-day tables are rollups of it, kept in the same
transaction. Each row is a `Tally` (exact integer sums, response times in
microseconds, a mergeable log-bucket histogram for p50/p95/p99).

A message counts as an interaction when it carries usage or a response time;
every `InteractionTracked` counts (its response time when above zero). A retracted
message (`MessageRetracted`) stops counting: its session's row for its day is folded again
from the log without it and the rollups it touched are recomputed (`projections.retraction`;
work in the size of the session and of the app's rows, as for a purge).
A deleted session is hidden from the per-session queries but stays in the
rollups; a purged session is forgotten: its base rows go and the rollups it
touched are recomputed from the base rows that remain (min and max cannot be
subtracted), which is exactly what a fold of the erased log gives.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from projections import model_usage, retraction, summary
from projections.protocol import Projection, Queries, Ready
from projections.summary import Summary
from projections.tally import ResponseTimes, Tally, day_of
from session_store.domain import validation
from session_store.domain.events import (
    InteractionTracked,
    MessageAppended,
    MessageRetracted,
    RecordedEvent,
)
from session_store.errors import InvalidEvent
from session_store.storage.database import Database, dialect_of

_TALLY = ["interactions", "messages", "roles", "tokens_in", "tokens_out", "rt_count", "rt_sum",
          "rt_min", "rt_max", "rt_hist", "last_update_time"]
_SEGMENT_ENDS = frozenset({"SessionDeleted", "SessionPurged"})
Key = tuple[str, ...]


class Stats(msgspec.Struct, frozen=True, kw_only=True):
    """Usage of one session, user, app or day (the key fields that apply are set)."""

    app_name: str
    user_id: str | None = None
    session_id: str | None = None
    day: str | None = None
    """UTC date, ISO format."""
    interactions: int
    messages: int
    messages_by_role: dict[str, int]
    tokens_in: int
    tokens_out: int
    response_time: ResponseTimes
    last_update_time: float


def _tally_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("interactions", sa.BigInteger, nullable=False),
        sa.Column("messages", sa.BigInteger, nullable=False),
        sa.Column("roles", sa.Text, nullable=False),
        sa.Column("tokens_in", sa.BigInteger, nullable=False),
        sa.Column("tokens_out", sa.BigInteger, nullable=False),
        sa.Column("rt_count", sa.BigInteger, nullable=False),
        sa.Column("rt_sum", sa.BigInteger, nullable=False),
        sa.Column("rt_min", sa.BigInteger),
        sa.Column("rt_max", sa.BigInteger),
        sa.Column("rt_hist", sa.Text, nullable=False),
        sa.Column("last_update_time", sa.Float(precision=53), nullable=False),
    ]


def make_tables(suffix: str = "") -> tuple[sa.Table, sa.Table, sa.Table, sa.Table, sa.Table]:
    metadata = sa.MetaData()

    def key(name: str) -> sa.Column[Any]:
        return sa.Column(name, sa.String, primary_key=True)

    sessions = sa.Table(f"ss_analytics_sessions{suffix}", metadata, key("app_name"),
                        key("user_id"), key("session_id"), key("day"),
                        sa.Column("deleted", sa.Boolean, nullable=False), *_tally_columns(),
                        sa.Index(f"ss_analytics_sessions{suffix}_day", "app_name", "day"))
    users = sa.Table(f"ss_analytics_users{suffix}", metadata, key("app_name"), key("user_id"),
                     *_tally_columns())
    apps = sa.Table(f"ss_analytics_apps{suffix}", metadata, key("app_name"), *_tally_columns())
    days = sa.Table(f"ss_analytics_days{suffix}", metadata, key("app_name"), key("day"),
                    *_tally_columns())
    return sessions, users, apps, days, model_usage.make_table(metadata, suffix)


class AnalyticsProjection(Projection):
    """The analytics read model (name `analytics`)."""

    name = "analytics"
    version = 2  # 2: retracted messages no longer count; usage per model and provider
    #                (ss_analytics_models), sessions by day

    def __init__(self, suffix: str = "") -> None:
        self.sessions, self.users, self.apps, self.days, self.models = make_tables(suffix)

    def tables(self) -> Sequence[sa.Table]:
        return (self.sessions, self.users, self.apps, self.days, self.models)

    def for_rebuild(self, suffix: str) -> AnalyticsProjection:
        return AnalyticsProjection(suffix)

    def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        deltas: dict[Key, Tally] = {}
        models: dict[model_usage.Key, list[int]] = {}
        for event in events:
            if not event.session_id:
                continue
            data = event.data
            if isinstance(data, (MessageAppended, InteractionTracked)):
                count(_delta(deltas, event), models, event)
            elif isinstance(data, MessageRetracted):
                self._flush(conn, deltas)
                model_usage.flush(conn, self.models, models)
                deltas, models = {}, {}
                self._retract(conn, event)
            elif event.type in _SEGMENT_ENDS:
                self._flush(conn, deltas)
                model_usage.flush(conn, self.models, models)
                deltas, models = {}, {}
                if event.type == "SessionDeleted":
                    self._hide(conn, event)
                else:
                    self._forget(conn, event)
        self._flush(conn, deltas)
        model_usage.flush(conn, self.models, models)

    # --- writing -----------------------------------------------------------------------

    def _flush(self, conn: Connection, deltas: dict[Key, Tally]) -> None:
        if not deltas:
            return
        users: dict[Key, Tally] = {}
        apps: dict[Key, Tally] = {}
        days: dict[Key, Tally] = {}
        for (app, user, _session, day), tally in deltas.items():
            for rollup, key in ((users, (app, user)), (apps, (app,)), (days, (app, day))):
                found = rollup.get(key)
                if found is None:
                    rollup[key] = found = Tally()
                found.merge(tally)
        for table, changes in ((self.sessions, deltas), (self.users, users), (self.apps, apps),
                               (self.days, days)):
            self._merge_into(conn, table, changes)

    def _merge_into(self, conn: Connection, table: sa.Table, changes: dict[Key, Tally]) -> None:
        """Each changed row's stored tally plus its change, written back in one upsert."""
        dialect = dialect_of(conn)
        names = [c.name for c in table.primary_key.columns]
        columns = [c.name for c in table.columns]
        width = len(names)
        stored = {tuple(found[:width]): dict(zip(columns, found, strict=True))
                  for found in dialect.select_keyed(conn, table, columns, list(changes))}
        merged = _merged(changes, stored, names, table is self.sessions)
        dialect.upsert(conn, table, [tuple(row[c] for c in columns) for row in merged])

    def _hide(self, conn: Connection, event: RecordedEvent) -> None:
        s = self.sessions
        conn.execute(s.update().where(s.c.app_name == event.app_name,
                                      s.c.user_id == event.user_id,
                                      s.c.session_id == event.session_id).values(deleted=True))

    def _forget(self, conn: Connection, event: RecordedEvent) -> None:
        s = self.sessions
        app, user = event.app_name, event.user_id
        mine = (s.c.app_name == app, s.c.user_id == user, s.c.session_id == event.session_id)
        model_usage.forget(conn, self.models, app, user, event.session_id)
        days = [row[0] for row in conn.execute(sa.select(s.c.day).where(*mine))]
        if not days:
            return
        conn.execute(s.delete().where(*mine))
        self._recompute(conn, self.users, (app, user), (s.c.app_name == app,
                                                        s.c.user_id == user))
        self._recompute(conn, self.apps, (app,), (s.c.app_name == app,))
        for day in days:
            self._recompute(conn, self.days, (app, day), (s.c.app_name == app, s.c.day == day))

    def _retract(self, conn: Connection, event: RecordedEvent) -> None:
        """A retracted message no longer counts: the rows of its session and day (tally and
        usage per model) are folded again from the log without it, and the rollups it
        touched are recomputed."""
        day = retraction.refolded_day(conn, event, count)
        if day is None:
            return  # it names no message of the session (a log written before the check)
        when, tally, models = day
        s = self.sessions
        app, user = event.app_name, event.user_id
        mine = (s.c.app_name == app, s.c.user_id == user, s.c.session_id == event.session_id,
                s.c.day == when)
        hidden = conn.execute(sa.select(s.c.deleted).where(*mine)).scalar()
        conn.execute(s.delete().where(*mine))
        model_usage.forget(conn, self.models, app, user, event.session_id, day=when)
        model_usage.flush(conn, self.models, models)
        conn.execute(s.insert().values(app_name=app, user_id=user, day=when,
                                       session_id=event.session_id, deleted=bool(hidden),
                                       **tally.values()))
        self._recompute(conn, self.users, (app, user), (s.c.app_name == app,
                                                        s.c.user_id == user))
        self._recompute(conn, self.apps, (app,), (s.c.app_name == app,))
        self._recompute(conn, self.days, (app, when), (s.c.app_name == app, s.c.day == when))

    def _recompute(self, conn: Connection, table: sa.Table, key: Key, where: Any) -> None:
        columns = [self.sessions.c[name] for name in _TALLY]
        rows = conn.execute(sa.select(*columns).where(*where)).mappings().all()
        total = Tally.merged(Tally.from_row(row) for row in rows)
        pk = list(table.primary_key.columns)
        conn.execute(table.delete().where(*(c == v for c, v in zip(pk, key, strict=True))))
        if rows:
            conn.execute(table.insert().values(
                **{c.name: v for c, v in zip(pk, key, strict=True)}, **total.values()))


def count(tally: Tally, models: dict[model_usage.Key, list[int]], event: RecordedEvent
          ) -> None:
    """Add what a `MessageAppended` or `InteractionTracked` event counts to `tally`, and
    its usage per model and provider to `models`."""
    data = event.data
    if isinstance(data, MessageAppended):
        m = data.message
        usage = m.usage
        if usage is not None:
            tally.add(event.recorded_at, role=m.role, interaction=True,
                      tokens_in=usage.tokens_in, tokens_out=usage.tokens_out,
                      response_time=m.response_time)
            model_usage.count(models, _key(event), usage.model, usage.provider,
                              message=True, tokens_in=usage.tokens_in,
                              tokens_out=usage.tokens_out)
        else:
            tally.add(event.recorded_at, role=m.role, interaction=m.response_time is not None,
                      response_time=m.response_time)
    elif isinstance(data, InteractionTracked):  # with a `turn`, that message counted it
        tally.add(event.recorded_at, interaction=data.turn is None, tokens_in=data.tokens_in,
                  tokens_out=data.tokens_out,
                  response_time=data.response_time if data.response_time > 0 else None)
        model_usage.count(models, _key(event), data.model, data.provider, message=False,
                          interaction=data.turn is None, tokens_in=data.tokens_in,
                          tokens_out=data.tokens_out)


def _key(event: RecordedEvent) -> tuple[str, str, str, str]:
    """The base row an event adds to: its session and UTC day."""
    return (event.app_name, event.user_id, event.session_id, day_of(event.recorded_at))


def _delta(deltas: dict[Key, Tally], event: RecordedEvent) -> Tally:
    key = _key(event)
    tally = deltas.get(key)
    if tally is None:
        tally = deltas[key] = Tally()
    return tally


class Analytics(Queries):
    """Queries over the analytics read model."""

    def __init__(self, db: Database, projection: AnalyticsProjection | None = None,
                 ready: Ready | None = None) -> None:
        super().__init__(db, ready)
        self.projection = projection or AnalyticsProjection()

    async def by_session(self, app_name: str, user_id: str, session_id: str) -> Stats | None:
        """One session's usage over all its days; `None` when missing or deleted."""
        found = await self.sessions(app_name, user_id=user_id, session_id=session_id)
        return found[0] if found else None

    async def sessions(self, app_name: str, *, user_id: str | None = None,
                       session_id: str | None = None) -> list[Stats]:
        """Per-session usage of an app (or of one user), most recently active first."""
        validation.check_id(app_name, "app_name")
        validation.check_ids(user_id=user_id, session_id=session_id)
        s = self.projection.sessions
        query = sa.select(s).where(s.c.app_name == app_name, sa.not_(s.c.deleted))
        if user_id is not None:
            query = query.where(s.c.user_id == user_id)
        if session_id is not None:
            query = query.where(s.c.session_id == session_id)
        merged: dict[Key, Tally] = {}
        for row in await self.rows(query):
            key = (row["user_id"], row["session_id"])
            tally = merged.get(key)
            if tally is None:
                tally = merged[key] = Tally()
            tally.merge(Tally.from_row(row))
        found = [_stats(tally, app_name=app_name, user_id=u, session_id=sid)
                 for (u, sid), tally in merged.items()]
        return sorted(found, key=lambda stats: (-stats.last_update_time, stats.user_id or "",
                                                 stats.session_id or ""))

    async def by_user(self, app_name: str) -> list[Stats]:
        validation.check_id(app_name, "app_name")
        u = self.projection.users
        rows = await self.rows(sa.select(u).where(u.c.app_name == app_name)
                                 .order_by(u.c.user_id))
        return [_stats(Tally.from_row(r), app_name=app_name, user_id=r["user_id"]) for r in rows]

    async def by_app(self) -> list[Stats]:
        a = self.projection.apps
        rows = await self.rows(sa.select(a).order_by(a.c.app_name))
        return [_stats(Tally.from_row(r), app_name=r["app_name"]) for r in rows]

    async def by_day(self, app_name: str, *, since: str | None = None,
                     until: str | None = None) -> list[Stats]:
        """Per UTC day (ISO dates; `since`/`until` inclusive), oldest first."""
        validation.check_id(app_name, "app_name")
        validation.check_ids(since=since, until=until)
        d = self.projection.days
        query = sa.select(d).where(d.c.app_name == app_name)
        if since is not None:
            query = query.where(d.c.day >= since)
        if until is not None:
            query = query.where(d.c.day <= until)
        rows = await self.rows(query.order_by(d.c.day))
        return [_stats(Tally.from_row(r), app_name=app_name, day=r["day"]) for r in rows]

    async def histogram(self, by: str, app_names: Sequence[str]) -> dict[int, int]:
        """The merged log-bucket histogram (`Tally.hist`) of the rows `by` ('session',
        'user', 'app' or 'day') of these apps, with the same filters as their queries."""
        if by not in ("session", "user", "app", "day"):
            raise InvalidEvent(f"by must be 'session', 'user', 'app' or 'day', not {by!r}")
        if isinstance(app_names, str):
            raise InvalidEvent(f"app_names must be a list of app names, not {app_names!r}")
        for app_name in app_names:
            validation.check_id(app_name, "app_names[]")
        if not app_names:
            return {}
        model = self.projection
        table = {"session": model.sessions, "user": model.users, "app": model.apps,
                 "day": model.days}[by]
        query = sa.select(table).where(table.c.app_name.in_(list(app_names)))
        if by == "session":
            query = query.where(sa.not_(table.c.deleted))
        return Tally.merged(Tally.from_row(row) for row in await self.rows(query)).hist

    async def summary(self, *, app_name: str | None = None, user_id: str | None = None,
                      start: summary.When | None = None, end: summary.When | None = None
                      ) -> Summary:
        """A manager's view of a period (every UTC day from `start`'s through `end`'s; epoch
        seconds or aware datetimes) of an app (default: all) or one user, in one call:
        sessions, active users, messages per session, usage per model and provider, and
        response times. Deleted sessions count (their usage happened); purged ones do not."""
        period = summary.period(app_name, user_id, start, end, day_of)
        model = self.projection
        where = period.where(model.sessions)
        rows = await self.rows(sa.select(model.sessions).where(*where))
        by = {name: await self.rows(model_usage.usage_query(model.models, name,
                                                            period.where(model.models)))
              for name in ("model", "provider")}
        return summary.summarize(period, rows, by["model"], by["provider"])


def _stats(tally: Tally, **key: Any) -> Stats:
    return Stats(**key, interactions=tally.interactions, messages=tally.messages,
                 messages_by_role=dict(sorted(tally.roles.items())), tokens_in=tally.tokens_in,
                 tokens_out=tally.tokens_out, response_time=tally.response_times(),
                 last_update_time=tally.last_update_time)


def _merged(changes: dict[Key, Tally], stored: Mapping[Key, Any], names: list[str],
            sessions: bool) -> list[dict[str, Any]]:
    """Each changed key's stored tally plus its change, as column values to upsert."""
    rows = []
    for key, change in changes.items():
        row = stored.get(key)
        total = change
        if row is not None:
            total = Tally.from_row(row)
            total.merge(change)
        values = {**dict(zip(names, key, strict=True)), **total.values()}
        if sessions:
            values["deleted"] = bool(row["deleted"]) if row is not None else False
        rows.append(values)
    return rows
