"""The JSON API under /api/: sessions, one session with its timeline, time travel,
search, verify, analytics, the viewer's status. Every route reads; none writes.

Each answer is built from the store's own answers (`shapes`, `timetravel`); a wrong
parameter is a 400 naming it, an unknown session a 404, a store in trouble a 503.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from session_store.cli import figures, lookup
from session_store.domain.events import SessionKey
from session_store.errors import InvalidEvent, SessionNotFound
from session_store.store import SessionStore
from session_store.web import highlight, params, shapes, timetravel
from session_store.web.models import ModelUsage

CATCH_UP_SECONDS = 5.0
"""How long analytics waits for the read models to fold what other processes appended."""


class Json(JSONResponse):
    """JSON with non-ASCII text as is, and no caching: answers change as the log grows."""

    def render(self, content: Any) -> bytes:
        return msgspec.json.encode(content)

    def __init__(self, content: Any, status_code: int = 200) -> None:
        super().__init__(content, status_code, headers={"cache-control": "no-store"})


def store_of(request: Request) -> SessionStore:
    found: SessionStore = request.app.state.store
    return found


def session_key(request: Request) -> SessionKey:
    """The session the query names: `app`, `user` and `session` (ids as the store takes)."""
    parts = [params.an_id(request, name) for name in ("app", "user", "session")]
    missing = [name for name, value in zip(("app", "user", "session"), parts, strict=True)
               if value is None]
    if missing:
        raise InvalidEvent(f"name the session: {', '.join(missing)} missing (give app, user "
                           "and session)")
    return SessionKey(*(str(part) for part in parts))


async def status(request: Request) -> Response:
    store = store_of(request)
    return Json({"store": store.display_url, "position": await store.last_position(),
                 "apps": await store.app_names(), "read_only": True})


async def sessions(request: Request) -> Response:
    """A page of sessions, oldest activity first within an app, apps in order."""
    store = store_of(request)
    position = await store.last_position()
    found, following = await lookup.page_of_sessions(
        store, app_name=params.an_id(request, "app"), user_id=params.an_id(request, "user"),
        status=params.status(request), limit=params.limit(request),
        cursor=params.text(request, "cursor"), tags=params.tags(request),
        since=params.since(request))
    return Json({"sessions": [shapes.summary(s) for s in found], "next_cursor": following,
                 "position": position})


async def session(request: Request) -> Response:
    """The session now: its summary and its timeline, every event of its stream as the log
    holds it (a page follows it live from the last one's position)."""
    store, key = store_of(request), session_key(request)
    now = await store.get_session(app_name=key.app_name, user_id=key.user_id,
                                  session_id=key.session_id, num_recent_events=0)
    if now is None:
        raise SessionNotFound(f"no session {key.session_id!r} of user {key.user_id!r} in app "
                              f"{key.app_name!r}")
    records = [r async for r in store.read_stream(key, to_version=now.version)]
    return Json({"session": shapes.summary(now), "timeline": records})


async def state(request: Request) -> Response:
    version = params.whole(request, "version", low=1)
    if version is None:
        raise InvalidEvent("give version=N: the session's state as of its event N")
    return Json(await timetravel.state_at(store_of(request), session_key(request), version))


async def search(request: Request) -> Response:
    """Messages holding every word of `q`, newest first, the matched words marked."""
    store = store_of(request)
    query = params.text(request, "q")
    if query is None:
        raise InvalidEvent("give q=WORDS: the words to find")
    app_name, user_id = params.an_id(request, "app"), params.an_id(request, "user")
    session_id, role = params.an_id(request, "session"), params.an_id(request, "role")
    count = params.limit(request)
    apps = [app_name] if app_name is not None else await store.app_names()
    found = []
    for app in apps:
        found.extend(await store.history.search(
            query, app_name=app, user_id=user_id, session_id=session_id,
            roles=[role] if role else None, since=params.since(request), limit=count))
    found.sort(key=lambda m: m.position, reverse=True)
    wanted = highlight.words(query)
    hits = [{"app_name": m.app_name, "user_id": m.user_id, "session_id": m.session_id,
             "version": m.version, "position": m.position, "role": m.role, "author": m.author,
             "timestamp": m.timestamp, "text": m.text,
             "fragments": highlight.fragments(m.text, wanted)} for m in found[:count]]
    return Json({"query": query, "hits": hits})


async def verify(request: Request) -> Response:
    """`verify` of one session (app, user and session given) or of the whole log."""
    store = store_of(request)
    named = any(params.text(request, name) for name in ("app", "user", "session"))
    key = session_key(request) if named else None
    digest = params.text(request, "digest")
    started = time.perf_counter()
    report = await store.verify(key, digest=digest)
    answer = shapes.report(report, time.perf_counter() - started)
    answer["scope"] = "log" if key is None else "session"
    return Json(answer)


async def analytics(request: Request) -> Response:
    """Figures of one app (the first app when none is named): per day, per user, the
    response-time distribution with p50/p95/p99 and model usage; and every app's totals."""
    store = store_of(request)
    with contextlib.suppress(TimeoutError):  # figures a moment behind rather than none
        await store.wait_for(await store.last_position(), CATCH_UP_SECONDS)
    apps = await store.analytics.by_app()
    app_name = params.an_id(request, "app") or (apps[0].app_name if apps else None)
    if app_name is None:
        return Json({"app_name": None, "apps": [], "users": [], "days": [], "histogram": [],
                     "response_time": None, "models": []})
    chosen = next((row for row in apps if row.app_name == app_name), None)
    if chosen is None:
        raise SessionNotFound(f"no app {app_name!r} in this store")
    usage: ModelUsage = request.app.state.model_usage
    return Json({
        "app_name": app_name, "apps": [shapes.stats(row) for row in apps],
        "users": [shapes.stats(row) for row in await store.analytics.by_user(app_name)],
        "days": [shapes.stats(row) for row in await store.analytics.by_day(app_name)],
        "histogram": figures.buckets(await store.analytics.histogram("app", [app_name])),
        "response_time": msgspec.to_builtins(chosen.response_time),
        "models": await usage.of(app_name)})


ROUTES = [
    Route("/api/status", status, name="api_status"),
    Route("/api/sessions", sessions, name="api_sessions"),
    Route("/api/session", session, name="api_session"),
    Route("/api/session/state", state, name="api_state"),
    Route("/api/search", search, name="api_search"),
    Route("/api/verify", verify, name="api_verify"),
    Route("/api/analytics", analytics, name="api_analytics"),
]
