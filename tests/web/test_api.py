"""Every endpoint of the JSON API through the ASGI app, on SQLite and PostgreSQL, checked
against the store's own answers on the demo database."""

from __future__ import annotations

from typing import Any

import msgspec

from session_store.cli import figures, lookup, render
from session_store.domain.events import SessionKey
from session_store.domain.search import fold
from session_store.web import openapi, timetravel
from tests.web.conftest import Served


async def _json(served: Served, path: str, **query: Any) -> Any:
    answer = await served.client.get(path, params=query)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    return answer.json()


def _q(key: SessionKey) -> dict[str, str]:
    return {"app": key.app_name, "user": key.user_id, "session": key.session_id}


async def _a_session(served: Served, status: str = "active") -> SessionKey:
    found = await lookup.all_sessions(served.store, status=status)
    return max(found, key=lambda s: s.version).key


async def test_status_names_the_store_and_its_position(demo: Served) -> None:
    answer = await _json(demo, "/api/status")
    assert answer == {"store": demo.store.display_url, "read_only": True,
                      "position": await demo.store.last_position(),
                      "apps": await demo.store.app_names()}


async def test_sessions_pages_cover_the_store_once_in_its_order(demo: Served) -> None:
    every = await lookup.all_sessions(demo.store)
    seen: list[str] = []
    cursor = None
    while True:
        page = await _json(demo, "/api/sessions", limit=2, **({"cursor": cursor} if cursor else {}))
        assert len(page["sessions"]) <= 2
        seen += [f"{s['app_name']}/{s['user_id']}/{s['id']}" for s in page["sessions"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"{s.app_name}/{s.user_id}/{s.id}" for s in every]
    whole = await _json(demo, "/api/sessions", limit=1000)
    assert whole["sessions"] == [render.session_summary(s) for s in every]
    assert "events" not in whole["sessions"][0]


async def test_sessions_filters_agree_with_list_sessions(demo: Served) -> None:
    store = demo.store
    app = (await store.app_names())[0]
    some = (await store.list_sessions(app_name=app)).sessions
    user, tag = some[0].user_id, some[0].tags[0]
    since = sorted(s.last_update_time for s in some)[len(some) // 2]
    for query, expected in [
        ({"app": app}, await store.list_sessions(app_name=app)),
        ({"app": app, "user": user}, await store.list_sessions(app_name=app, user_id=user)),
        ({"app": app, "status": "active"}, await store.list_sessions(app_name=app,
                                                                   status="active")),
        ({"app": app, "tags": tag}, await store.list_sessions(app_name=app, tags=[tag])),
        ({"app": app, "since": repr(since)}, await store.list_sessions(app_name=app,
                                                                    since=since)),
    ]:
        page = await _json(demo, "/api/sessions", **query)
        assert [s["id"] for s in page["sessions"]] == [s.id for s in expected.sessions], query
    every_ended = await lookup.all_sessions(store, status="ended")
    page = await _json(demo, "/api/sessions", status="ended")
    assert [s["id"] for s in page["sessions"]] == [s.id for s in every_ended] != []


async def test_a_session_is_its_summary_and_its_stream(demo: Served) -> None:
    key = await _a_session(demo)
    answer = await _json(demo, "/api/session", **_q(key))
    now = await demo.store.get_session(app_name=key.app_name, user_id=key.user_id,
                                       session_id=key.session_id)
    head = await demo.store.get_session(app_name=key.app_name, user_id=key.user_id,
                                        session_id=key.session_id, num_recent_events=0)
    assert now is not None and head is not None  # the summary reads no messages: the
    assert answer["session"] == render.session_summary(head)  # timeline carries them
    records = [r async for r in demo.store.read_stream(key)]
    assert answer["timeline"] == msgspec.to_builtins(records)  # as the log holds them
    assert [row["version"] for row in answer["timeline"]] == list(range(1, now.version + 1))
    messages = [row["data"]["message"] for row in answer["timeline"]
                if row["type"] == "MessageAppended"]
    assert [m.get("text") for m in messages] == [m.text for m in now.messages]
    assert answer["timeline"][0]["type"] == "SessionCreated"
    parts = [part for m in messages for part in m.get("parts", [])]
    assert any("function_call" in p for p in parts) and any("function_response" in p
                                                             for p in parts)
    assert set(answer) == {"session", "timeline"}


async def test_time_travel_gives_the_store_state_of_each_version_and_its_diff(
        demo: Served) -> None:
    key = await _a_session(demo)
    now = await demo.store.get_session(app_name=key.app_name, user_id=key.user_id,
                                       session_id=key.session_id)
    assert now is not None
    before: dict[str, Any] = {}
    scopes_seen: set[str] = set()
    for version in range(1, now.version + 1):
        answer = await _json(demo, "/api/session/state", version=version, **_q(key))
        then = await demo.store.get_session(app_name=key.app_name, user_id=key.user_id,
                                            session_id=key.session_id, at_version=version)
        assert then is not None
        assert answer["state"] == timetravel.by_scope(then.state)
        assert answer["version"] == version and answer["status"] == then.status
        applied = dict(before)
        for change in answer["diff"]:
            scopes_seen.add(change["scope"])
            if change["change"] == "removed":
                del applied[change["key"]]
            else:
                assert change.get("before") == before.get(change["key"])
                applied[change["key"]] = change["after"]
        assert applied == dict(then.state)
        before = dict(then.state)
    assert {"session", "app", "user"} <= scopes_seen


def test_a_diff_names_additions_removals_and_changes() -> None:
    assert timetravel.diff({"a": 1, "b": 2, "c": 1}, {"a": 1, "b": 3, "d": 4, "c": True}) == [
        {"key": "b", "scope": "session", "change": "changed", "before": 2, "after": 3},
        {"key": "c", "scope": "session", "change": "changed", "before": 1, "after": True},
        {"key": "d", "scope": "session", "change": "added", "after": 4}]
    assert timetravel.diff({"app:x": 1}, {}) == [
        {"key": "app:x", "scope": "app", "change": "removed", "before": 1}]


async def test_search_finds_what_history_finds_with_the_words_marked(demo: Served) -> None:
    store = demo.store
    answer = await _json(demo, "/api/search", q="FLIGHT next")
    expected = []
    for app in await store.app_names():
        expected += await store.history.search("FLIGHT next", app_name=app)
    expected.sort(key=lambda m: m.position, reverse=True)
    assert [(h["session_id"], h["version"]) for h in answer["hits"]] == [
        (m.session_id, m.version) for m in expected] != []
    for hit in answer["hits"]:
        assert "".join(text for text, _ in hit["fragments"]) == hit["text"]
        marked = {fold(text).casefold() for text, is_hit in hit["fragments"] if is_hit}
        assert marked == {"flight", "next"}
    narrowed = await _json(demo, "/api/search", q="flight", app="travel-agent", role="user",
                           limit=1)
    assert len(narrowed["hits"]) == 1 and narrowed["hits"][0]["role"] == "user"
    assert (await _json(demo, "/api/search", q="zzzzunfound"))["hits"] == []


async def test_verify_reports_what_the_store_reports(demo: Served) -> None:
    whole = await _json(demo, "/api/verify")
    report = await demo.store.verify()
    assert (whole["ok"], whole["events"], whole["streams"], whole["scope"]) == (
        True, report.events, report.streams, "log")
    assert whole["digest"] == str(report.digest)
    key = await _a_session(demo)
    one = await _json(demo, "/api/verify", **_q(key))
    assert one["ok"] and one["scope"] == "session"
    assert one["events"] == (await demo.store.verify(key)).events
    stale = await _json(demo, "/api/verify", digest="1:" + "0" * 64)
    assert not stale["ok"] and stale["problems"]


async def test_analytics_are_the_read_model_with_model_usage(demo: Served) -> None:
    store = demo.store
    app = "travel-agent"
    answer = await _json(demo, "/api/analytics", app=app)
    found = await figures.analytics(store, "day", app_name=app)
    assert answer["days"] == found.as_json()["rows"]
    assert answer["histogram"] == (await figures.analytics(store, "app", app_name=app)).histogram
    by_app = {row.app_name: row for row in await store.analytics.by_app()}
    assert [row["app_name"] for row in answer["apps"]] == sorted(by_app)
    assert answer["response_time"]["p99"] == by_app[app].response_time.p99 is not None
    assert [row["user_id"] for row in answer["users"]] == [
        row.user_id for row in await store.analytics.by_user(app)]
    assert sum(m["tokens_in"] for m in answer["models"]) == by_app[app].tokens_in
    assert sum(m["tokens_out"] for m in answer["models"]) == by_app[app].tokens_out
    assert answer["models"][0]["model"] == "mock-llm-1"
    first = await _json(demo, "/api/analytics")
    assert first["app_name"] == sorted(by_app)[0]


async def test_the_event_stream_catches_up_from_a_position(demo: Served) -> None:
    answer = await demo.client.get("/api/events", params={"after": 0, "limit": 5})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    ids = [int(line[4:]) for line in answer.text.splitlines() if line.startswith("id: ")]
    assert ids == [r.position async for r in demo.store.read_all(limit=5)]
    key = await _a_session(demo)
    one = await demo.client.get("/api/events", headers={"Last-Event-ID": "0"},
                                params={"limit": 2, **_q(key)})
    versions = [line for line in one.text.splitlines() if line.startswith("data: ")]
    assert len(versions) == 2 and all(f'"session_id":"{key.session_id}"' in v for v in versions)


def test_the_openapi_schema_lists_every_route() -> None:
    from session_store.web.app import create_app

    viewer = create_app(None)  # type: ignore[arg-type] # routes only, no store is read
    paths = {route.path for route in viewer.starlette.routes  # type: ignore[attr-defined]
             if route.path.startswith("/api/")}  # type: ignore[attr-defined]
    assert paths == set(openapi.SCHEMA["paths"])
    for path, item in openapi.SCHEMA["paths"].items():
        assert set(item) == {"get"}, path


async def test_the_schema_and_pages_are_served(demo: Served) -> None:
    schema = await _json(demo, "/api/openapi.json")
    assert schema["openapi"].startswith("3.") and "/api/session/state" in schema["paths"]
    for page in ("/", "/session", "/search", "/analytics", "/audit"):
        answer = await demo.client.get(page)
        assert answer.status_code == 200 and "text/html" in answer.headers["content-type"]
        assert '<script type="module" src="/static/app.js">' in answer.text
        assert "<script>" not in answer.text  # no inline script: the CSP allows none
    for name in ("app.js", "api.js", "dom.js", "charts.js", "session.js", "style.css"):
        answer = await demo.client.get(f"/static/{name}")
        assert answer.status_code == 200 and answer.text, name
    assert "javascript" in (await demo.client.get("/static/app.js")).headers["content-type"]
    assert (await demo.client.get("/static/nothing.js")).status_code == 404
