"""Where LangSwarm's manager maps calls onto today's native API because the native feature
is coming (analytics summary, cleanup, optimize): each `_...` function here is the one
place to re-point (docs/MIGRATING.md, the † rows)."""

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
    """Today: each session active in the period, read whole. Re-point to
    `store.analytics.summary(start=, end=, app_name=)`."""
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
    """Today: archive, delete or purge from session pages (and, for purges, the log's
    deletions). Re-point to `store.cleanup(inactive_for=, archived_for=, deleted_for=)`."""
    done = 0
    if inactive_for is not None:
        for session in await _sessions(store, app_name, status="active",
                                       until=now - inactive_for):
            await store.archive_session(session.key)
            done += 1
    if archived_for is not None:
        for session in await _sessions(store, app_name, status="archived",
                                       until=now - archived_for):
            await store.delete_session(app_name=app_name, user_id=session.user_id,
                                       session_id=session.id)
            done += 1
    if deleted_for is not None:
        purged = {r.key async for r in store.read_all(types=["SessionPurged"],
                                                         app_name=app_name)}
        async for record in store.read_all(types=["SessionDeleted"], app_name=app_name):
            if record.recorded_at < now - deleted_for and record.key not in purged:
                await store.delete_session(app_name=app_name, user_id=record.user_id,
                                           session_id=record.session_id, purge=True)
                purged.add(record.key)
                done += 1
    return done


async def _optimize(store: SessionStore) -> None:
    """Today: the read models rebuilt from the log (fresh tables and indexes). Re-point to
    `store.optimize()`."""
    await store.rebuild()
