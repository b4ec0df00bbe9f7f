"""What keeps the viewer safe: a bearer token checked on every request, a strict
Content-Security-Policy, Host checks against DNS rebinding, and a refusal to bind a
non-loopback address without a token.

The token is accepted three ways: `Authorization: Bearer TOKEN` (API clients),
`?token=TOKEN` (a link to a page, an `EventSource`, which cannot send headers), and a
cookie the server sets once a request carried a right token in its query, so that the
page's own scripts and styles load. Every comparison is constant-time
(`hmac.compare_digest`).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Iterable
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from session_store.errors import InvalidEvent

TOKEN_ENV = "SESSION_STORE_TOKEN"
COOKIE = "session_store_token"

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'")
"""No inline script or style, nothing from another origin: message text cannot run."""

HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the server on this machine."""
    name = host.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def resolve_token(token: str | None) -> str | None:
    """The token to require: `token` when given, else `$SESSION_STORE_TOKEN`; None for none.
    A blank token is refused (it would protect nothing)."""
    chosen = token if token is not None else os.environ.get(TOKEN_ENV)
    if chosen is None:
        return None
    if not chosen.strip() or len(chosen) < 8:
        raise InvalidEvent(f"a token must be at least 8 characters (set --token or ${TOKEN_ENV})")
    return chosen


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond this machine without a token (`InvalidEvent`)."""
    if not is_loopback(host) and token is None:
        raise InvalidEvent(
            f"refusing to serve on {host!r} without a token: anyone who can reach it could "
            f"read every conversation. Give --token TOKEN (or set ${TOKEN_ENV}), or bind "
            "127.0.0.1")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def presented_tokens(scope: Scope) -> tuple[list[str], bool]:
    """The tokens a request carries (header, query, cookie), and whether one came in the
    query (then the response sets the cookie)."""
    found: list[str] = []
    authorization = _header(scope, b"authorization")
    if authorization and authorization[:7].lower() == "bearer ":
        found.append(authorization[7:].strip())
    query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [])
    found.extend(query)
    cookie_header = _header(scope, b"cookie")
    if cookie_header:
        cookies: SimpleCookie = SimpleCookie()
        try:
            cookies.load(cookie_header)
        except Exception:  # noqa: BLE001 - a malformed cookie header carries no token
            cookies = SimpleCookie()
        if COOKIE in cookies:
            found.append(cookies[COOKIE].value)
    return found, bool(query)


def token_matches(expected: str, presented: Iterable[str]) -> bool:
    """Constant-time: each presented token is compared whole, whatever its length."""
    want = expected.encode()
    matched = False
    for candidate in presented:
        matched |= hmac.compare_digest(want, candidate.encode("utf-8", "replace"))
    return matched


class Guard:
    """ASGI middleware: security headers on every response, the Host check, the token, and
    only GET/HEAD (the viewer reads; an unknown method is 405 before any route runs)."""

    def __init__(self, app: ASGIApp, *, token: str | None, hosts: Iterable[str] = ()) -> None:
        self.app, self.token = app, token
        self.hosts = {h.lower() for h in (*LOOPBACK_NAMES, *hosts)}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        set_cookie = False
        if self.token is None and not self._host_allowed(scope):
            await _refuse(send, 421, "unknown Host: open the viewer at 127.0.0.1 or localhost")
            return
        if scope["method"] not in ("GET", "HEAD"):
            await _refuse(send, 405, "the viewer is read-only: GET only", allow=b"GET, HEAD")
            return
        if self.token is not None:
            presented, in_query = presented_tokens(scope)
            if not token_matches(self.token, presented):
                await _refuse(send, 401, "a token is required: ?token=TOKEN or the header "
                                         "Authorization: Bearer TOKEN",
                              authenticate=True)
                return
            set_cookie = in_query

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend(HEADERS)
                if set_cookie and self.token is not None:
                    headers.append((b"set-cookie", _cookie(self.token)))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, secured)

    def _host_allowed(self, scope: Scope) -> bool:
        host = _header(scope, b"host")
        if host is None:
            return True  # HTTP/1.0 without Host: nothing to rebind
        if host.startswith("["):  # [::1]:8765
            name = host[1:host.find("]")] if "]" in host else host
        else:
            name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        return name.lower() in self.hosts


def _cookie(token: str) -> bytes:
    cookie: SimpleCookie = SimpleCookie()
    cookie[COOKIE] = token
    cookie[COOKIE]["httponly"] = True
    cookie[COOKIE]["samesite"] = "Strict"
    cookie[COOKIE]["path"] = "/"
    return cookie[COOKIE].OutputString().encode("latin-1")


async def _refuse(send: Send, status: int, text: str, *, allow: bytes | None = None,
                  authenticate: bool = False) -> None:
    import json

    body = json.dumps({"error": text, "status": status}).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode()), *HEADERS]
    if allow is not None:
        headers.append((b"allow", allow))
    if authenticate:
        headers.append((b"www-authenticate", b'Bearer realm="session-store"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
