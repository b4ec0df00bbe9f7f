"""The OpenAPI 3.1 description of the JSON API, written by hand next to the routes (a test
checks that every route of the app is in it, and nothing else)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response


def _param(name: str, text: str, *, kind: str = "string", required: bool = False,
           where: str = "query") -> dict[str, Any]:
    return {"name": name, "in": where, "required": required, "description": text,
            "schema": {"type": kind}}


_KEY = [_param("app", "the session's app", required=True),
        _param("user", "the session's user", required=True),
        _param("session", "the session's id", required=True)]
_APP = _param("app", "only this app")
_USER = _param("user", "only this user")
_LIMIT = _param("limit", "at most this many (1 to 1000)", kind="integer")
_SINCE = _param("since", "only since: epoch seconds or an ISO date or time (UTC)")
_ERRORS = {"400": {"description": "a wrong parameter (the error names it)"},
           "401": {"description": "a token is required (Authorization: Bearer, ?token=)"},
           "404": {"description": "no such session or app"},
           "503": {"description": "the store is unavailable"}}


def _get(summary: str, parameters: list[dict[str, Any]], answer: str,
         media: str = "application/json") -> dict[str, Any]:
    return {"get": {"summary": summary, "parameters": parameters,
                    "responses": {"200": {"description": answer,
                                          "content": {media: {"schema": {"type": "object"}
                                                              if media == "application/json"
                                                              else {"type": "string"}}}},
                                  **_ERRORS}}}


PATHS: dict[str, Any] = {
    "/api/status": _get("the store the viewer reads and the log's last position", [],
                        "store, position, apps, read_only"),
    "/api/sessions": _get(
        "a page of sessions (apps in order, oldest activity first within an app)",
        [_APP, _USER, _param("status", "active, archived, ended or expired"),
         _param("tags", "sessions holding every tag (comma-separated, or repeated)"),
         _SINCE, _LIMIT, _param("cursor", "the next_cursor of the page before")],
        "sessions (summaries, no events), next_cursor (null after the last page), position"),
    "/api/session": _get(
        "a session now: its summary and the timeline of every event", _KEY,
        "session, timeline (each event as `export` writes it: position, version, type, "
        "data, event_id, recorded_at, hash)"),
    "/api/session/state": _get(
        "time travel: the state as of a version, by scope, and the diff from the one before",
        [*_KEY, _param("version", "1 to the session's version", kind="integer",
                       required=True)],
        "version, status, metadata, tags, state {session, app, user}, diff [{key, scope, "
        "change: added|removed|changed, before, after}]"),
    "/api/search": _get(
        "messages holding every word of q (case and accents ignored), newest first",
        [_param("q", "the words to find", required=True), _APP, _USER,
         _param("session", "only this session id"), _param("role", "only this role"),
         _SINCE, _LIMIT],
        "query, hits [{app_name, user_id, session_id, version, role, author, timestamp, "
        "text, fragments [[text, is_hit]]}]"),
    "/api/verify": _get(
        "the integrity check of the whole log, or of one session (app, user, session)",
        [_param("app", "with user and session: only that session"), _USER,
         _param("session", "with app and user: only that session"),
         _param("digest", "also check that the log still extends this digest")],
        "ok, events, streams, problems, digest, seconds, scope"),
    "/api/analytics": _get(
        "an app's figures (the first app when none is named) and every app's totals",
        [_APP],
        "app_name, apps, users, days (tokens in/out and messages per UTC day), histogram, "
        "response_time (count, mean, p50, p95, p99, ...), models [{model, calls, tokens_in, "
        "tokens_out}]"),
    "/api/events": _get(
        "server-sent events: one `appended` event per committed event, id = log position",
        [_APP, _USER, _param("session", "only this session id"),
         _param("after", "first catch up on the events after this log position (as "
                         "Last-Event-ID does)", kind="integer"),
         _param("limit", "end the stream after this many events", kind="integer")],
        "text/event-stream: data = the event as `export` writes it", media="text/event-stream"),
    "/api/openapi.json": _get("this description", [], "OpenAPI 3.1"),
}

SCHEMA: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "session-store viewer", "version": "1",
             "description": "Read-only JSON API over a session store: sessions, timelines, "
                            "time travel, search, verify, analytics and live events."},
    "components": {"securitySchemes": {
        "bearer": {"type": "http", "scheme": "bearer",
                   "description": "when the server was started with a token"},
        "query": {"type": "apiKey", "in": "query", "name": "token"}}},
    "security": [{}, {"bearer": []}, {"query": []}],
    "paths": PATHS,
}


async def openapi(request: Request) -> Response:
    return JSONResponse(SCHEMA)
