"""The viewer is safe by default: a token on every request when set (event stream
included), loopback only without one, Host checked, message text never markup, a strict
CSP, nothing written; wrong input is a 400 naming it; events appended by another store
reach an open stream."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator

import httpx
import pytest

from session_store.store import SessionStore, open_store
from session_store.sync import SyncSessionStore
from session_store.web import security
from session_store.web.security import CONTENT_SECURITY_POLICY, check_bind, token_matches
from tests.kit import in_process
from tests.web.conftest import BASE, Served, served

TOKEN = "correct-horse-battery"
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
async def guarded(sqlite_url: str) -> AsyncIterator[Served]:
    async with open_store(sqlite_url) as store:
        session = await store.create_session(app_name="app", user_id="u", session_id="s")
        await store.add_message(session, "user", XSS)
        async for one in served(store, token=TOKEN):
            yield one


async def test_every_request_needs_the_token(guarded: Served) -> None:
    client = guarded.client
    for path in ("/api/status", "/api/sessions", "/api/events", "/", "/static/app.js",
                 "/api/openapi.json"):
        refused = await client.get(path)
        assert refused.status_code == 401, path
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert "sessions" not in refused.text
    for wrong in ("wrong", TOKEN[:-1], TOKEN + "x", "", "é" * 20):
        assert (await client.get("/api/status", params={"token": wrong})).status_code == 401
        assert (await client.get("/api/status", headers={
            "Authorization": f"Bearer {wrong}".encode()})).status_code == 401
    assert (await client.get("/api/status", headers={
        "Authorization": f"Bearer {TOKEN}"})).status_code == 200
    assert (await client.get("/api/status", headers={
        "Authorization": f"Basic {TOKEN}"})).status_code == 401


async def test_a_token_in_the_query_sets_a_cookie_for_the_page(guarded: Served) -> None:
    page = await guarded.client.get("/", params={"token": TOKEN})
    assert page.status_code == 200
    cookie = page.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=guarded.viewer.asgi),
                                 base_url=BASE) as fresh:
        fresh.cookies.set(security.COOKIE, TOKEN)
        assert (await fresh.get("/static/app.js")).status_code == 200
        fresh.cookies.set(security.COOKIE, "stolen?")
        assert (await fresh.get("/static/app.js")).status_code == 401


async def test_the_event_stream_needs_the_token(guarded: Served) -> None:
    refused = await guarded.client.get("/api/events", params={"after": 0, "limit": 1})
    assert refused.status_code == 401
    allowed = await guarded.client.get("/api/events", params={"after": 0, "limit": 1,
                                                              "token": TOKEN})
    assert allowed.status_code == 200 and "id: 1" in allowed.text


def test_tokens_compare_whole() -> None:
    assert token_matches(TOKEN, ["nope", TOKEN])
    assert not token_matches(TOKEN, [])
    assert not token_matches(TOKEN, [TOKEN.upper(), TOKEN + " "])


def test_a_host_beyond_this_machine_needs_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        check_bind(host, None)
    for host in ("0.0.0.0", "192.168.1.4", "::", "example.com"):
        with pytest.raises(security.InvalidEvent, match="token"):
            check_bind(host, None)
        check_bind(host, TOKEN)
    monkeypatch.setenv(security.TOKEN_ENV, TOKEN)
    assert security.resolve_token(None) == TOKEN
    assert security.resolve_token("given-token-1") == "given-token-1"
    with pytest.raises(security.InvalidEvent, match="8 characters"):
        security.resolve_token("short")
    monkeypatch.setenv(security.TOKEN_ENV, "   ")
    with pytest.raises(security.InvalidEvent):
        security.resolve_token(None)


def test_serve_refuses_a_public_host_without_a_token(sqlite_url: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(security.TOKEN_ENV, raising=False)
    SyncSessionStore(sqlite_url).close()
    code, _, err = in_process("serve", "--host", "0.0.0.0", "--port", "0", db=sqlite_url)
    assert code == 2
    assert "without a token" in err and "--token" in err
    code, _, err = in_process("serve", "--host", "::", "--token", "short", db=sqlite_url)
    assert code == 2 and "8 characters" in err


def test_the_core_and_the_cli_do_not_import_starlette() -> None:
    code = ("import sys, session_store, session_store.cli.main, session_store.cli.parser; "
            "session_store.cli.parser.build_parser(); "
            "assert not [m for m in sys.modules if m.startswith(('starlette', 'uvicorn'))]")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr


async def test_headers_host_and_methods(fresh: Served) -> None:
    client = fresh.client
    answer = await client.get("/")
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert answer.headers["x-content-type-options"] == "nosniff"
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        refused = await client.request(method, "/api/sessions")
        assert refused.status_code == 405 and refused.headers["allow"] == "GET, HEAD"
    assert (await client.get("/api/status", headers={"Host": "evil.example"})).status_code == 421
    for host in ("localhost:8765", "[::1]:8765", "127.0.0.1"):
        assert (await client.get("/api/status", headers={"Host": host})).status_code == 200
    assert await fresh.store.last_position() == 0  # nothing was written


async def test_message_text_is_data_never_markup(guarded: Served) -> None:
    answer = await guarded.client.get("/api/session", params={
        "app": "app", "user": "u", "session": "s", "token": TOKEN})
    rows = [row for row in answer.json()["timeline"] if row["type"] == "MessageAppended"]
    assert rows[0]["data"]["message"]["text"] == XSS  # data in JSON; the page uses textContent
    assert answer.headers["content-type"].startswith("application/json")
    scripts = ""
    for name in ("app.js", "session.js", "sessions.js", "search.js", "analytics.js",
                 "audit.js", "dom.js", "charts.js", "api.js"):
        scripts += (await guarded.client.get(f"/static/{name}", params={"token": TOKEN})).text
    assert "innerHTML" not in scripts and "insertAdjacentHTML" not in scripts
    assert "eval(" not in scripts and "document.write" not in scripts


@pytest.mark.parametrize(("path", "query", "status", "words"), [
    ("/api/sessions", {"limit": "0"}, 400, "limit"),
    ("/api/sessions", {"limit": "x"}, 400, "limit"),
    ("/api/sessions", {"limit": "1001"}, 400, "limit"),
    ("/api/sessions", {"status": "gone"}, 400, "status"),
    ("/api/sessions", {"since": "yesterday"}, 400, "since"),
    ("/api/sessions", {"since": "nan"}, 400, "since"),
    ("/api/sessions", {"cursor": "garbage"}, 400, "cursor"),
    ("/api/sessions", {"app": "a\x00b"}, 400, "app"),
    ("/api/session", {"app": "app", "user": "u"}, 400, "session"),
    ("/api/session", {"app": "app", "user": "u", "session": "nope"}, 404, "nope"),
    ("/api/session", {"app": "app", "user": "ü🙂", "session": "s"}, 404, "no session"),
    ("/api/session/state", {"app": "app", "user": "u", "session": "s"}, 400, "version"),
    ("/api/session/state", {"app": "app", "user": "u", "session": "s", "version": "0"},
     400, "version"),
    ("/api/session/state", {"app": "app", "user": "u", "session": "s", "version": "99"},
     400, "past"),
    ("/api/session/state", {"app": "app", "user": "u", "session": "x", "version": "1"},
     404, "no session"),
    ("/api/search", {}, 400, "q"),
    ("/api/analytics", {"app": "nope"}, 404, "nope"),
    ("/api/events", {"after": "-1"}, 400, "after"),
    ("/api/verify", {"app": "app"}, 400, "missing"),
])
async def test_wrong_input_is_named(sqlite_url: str, path: str, query: dict[str, str],
                                    status: int, words: str) -> None:
    async with open_store(sqlite_url) as store:
        session = await store.create_session(app_name="app", user_id="u", session_id="s")
        await store.add_message(session, "user", "hi", usage=None)
        async for one in served(store):
            answer = await one.client.get(path, params=query)
            assert answer.status_code == status, answer.text
            assert words in answer.json()["error"]


async def _lines(response: httpx.Response, count: int) -> list[str]:
    found: list[str] = []
    async for line in response.aiter_lines():
        if line.startswith("data: "):
            found.append(line)
            if len(found) == count:
                break
    return found


async def test_events_appended_by_another_store_reach_an_open_stream(
        fresh: Served, store_url: str) -> None:
    session = await fresh.store.create_session(app_name="app", user_id="u", session_id="s")
    stream = asyncio.create_task(fresh.client.get("/api/events", params={
        "app": "app", "user": "u", "session": "s", "limit": 2}))
    await asyncio.sleep(0.3)  # the stream is open and following before the appends
    async with open_store(store_url) as other:  # another store: no wake-up, the log is polled
        await other.add_message(session.key, "user", "from elsewhere")
        await other.add_message(session.key, "assistant", "seen live")
    answer = await asyncio.wait_for(stream, 30)
    data = [line for line in answer.text.splitlines() if line.startswith("data: ")]
    assert len(data) == 2 and "from elsewhere" in data[0] and "seen live" in data[1]


async def test_a_resumed_stream_sends_nothing_twice(fresh: Served) -> None:
    store: SessionStore = fresh.store
    session = await store.create_session(app_name="app", user_id="u", session_id="s")
    for n in range(3):
        await store.add_message(session, "user", f"m{n}")
    answer = await fresh.client.get("/api/events", headers={"Last-Event-ID": "2"},
                                    params={"limit": 2})
    ids = [int(line[4:]) for line in answer.text.splitlines() if line.startswith("id: ")]
    positions = [r.position async for r in store.read_all()]
    assert ids == [p for p in positions if p > 2][:2]
