"""LangSwarm's upkeep calls on the native API: its cleanups are `store.cleanup`,
`optimize_storage` is `store.optimize`. Its analytics (`_summary`) keep LangSwarm's own
meaning (sessions alive in the period, users who wrote in it, replies per model), read
from the sessions of the period; `store.analytics.summary` counts by whole UTC days and
sessions with activity, which is not the same figure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from session_store.compat._lookup import local
from session_store.domain.snapshot import Session
from session_store.store import SessionStore


@dataclass(frozen=True)
class SessionAnalytics:
    """`get_analytics(start_date, end_date)`: sessions with activity in the period (created
    before its end, active since its start), the users who wrote in it, and the messages
    whose time is in it."""

    start_date: datetime | None
    end_date: datetime | None
    total_sessions: int
    active_users: int
    total_messages: int
    avg_messages_per_session: float
    model_usage: Mapping[str, int]
    """Replies per model."""
    provider_usage: Mapping[str, int]
    """Replies per provider."""
    tokens_in: int
    tokens_out: int


async def _sessions(store: SessionStore, app_name: str, *, user_id: str | None = None,
                    status: str | None = None, since: float | None = None,
                    until: float | None = None) -> list[Session]:
    """Summaries of the app's sessions, oldest activity first, stopping at `until`."""
    found: list[Session] = []
    cursor: str | None = None
    while True:
        page = await store.list_sessions(app_name=app_name, user_id=user_id, status=status,
                                         since=since, limit=500, cursor=cursor)
        for session in page.sessions:
            if until is not None and session.last_update_time >= until:
                return found
            found.append(session)
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


async def _summary(store: SessionStore, app_name: str, start: float | None,
                   end: float | None) -> SessionAnalytics:
    """Each session alive in the period, read whole."""
    sessions = [s for s in await _sessions(store, app_name, since=start)
                if end is None or s.created_at <= end]
    users: set[str] = set()
    models: dict[str, int] = {}
    providers: dict[str, int] = {}
    messages = tokens_in = tokens_out = 0
    for summary in sessions:
        session = await store.get_session(app_name=app_name, user_id=summary.user_id,
                                          session_id=summary.id)
        for message in session.messages if session is not None else ():
            if (start is not None and message.timestamp < start) or (
                    end is not None and message.timestamp > end):
                continue
            messages += 1
            if message.role == "user":
                users.add(summary.user_id)
            if message.usage is not None:
                tokens_in += message.usage.tokens_in
                tokens_out += message.usage.tokens_out
                if message.usage.model:
                    models[message.usage.model] = models.get(message.usage.model, 0) + 1
            provider = (message.native or {}).get("provider") if isinstance(
                message.native, dict) else None
            if isinstance(provider, str):
                providers[provider] = providers.get(provider, 0) + 1
    return SessionAnalytics(
        start_date=None if start is None else local(start),
        end_date=None if end is None else local(end), total_sessions=len(sessions),
        active_users=len(users), total_messages=messages,
        avg_messages_per_session=messages / len(sessions) if sessions else 0.0,
        model_usage=models, provider_usage=providers, tokens_in=tokens_in,
        tokens_out=tokens_out)


async def _cleanup(store: SessionStore, app_name: str, now: float, *,
                   inactive_for: float | None = None, archived_for: float | None = None,
                   deleted_for: float | None = None) -> int:
    """`store.cleanup`: archive idle sessions, delete long-archived ones, purge
    long-deleted ones; how many it touched."""
    report = await store.cleanup(app_name=app_name, inactive_for=inactive_for,
                                 archived_for=archived_for, deleted_for=deleted_for, now=now)
    return report.total


async def _optimize(store: SessionStore) -> None:
    """`store.optimize()`: checkpoint, analyse, vacuum (SQLite) or VACUUM ANALYZE (PostgreSQL)."""
    await store.optimize()
