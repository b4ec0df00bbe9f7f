"""The viewer's ASGI app: the API, the event stream, the pages, behind the `Guard`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from session_store.errors import InvalidEvent, SessionNotFound, SessionStoreError
from session_store.store import SessionStore
from session_store.web import api, events, openapi, pages
from session_store.web.models import ModelUsage
from session_store.web.security import Guard


def _status(error: Exception) -> int:
    if isinstance(error, SessionNotFound):
        return 404
    if isinstance(error, InvalidEvent):
        return 400
    return 503  # StoreUnavailable and the store's other troubles


async def _error(request: Request, error: Exception) -> Response:
    status = _status(error)
    return api.Json({"error": str(error), "kind": type(error).__name__, "status": status},
                    status_code=status)


class Viewer:
    """The app and what it holds: `asgi` (what a server runs), `starlette`, `hub`."""

    def __init__(self, store: SessionStore, *, token: str | None = None,
                 hosts: Iterable[str] = ()) -> None:
        self.store = store
        self.hub = events.Hub(store)

        @asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            yield
            await self.hub.close()

        routes = [*api.ROUTES, Route("/api/events", events.events, name="api_events"),
                  Route("/api/openapi.json", openapi.openapi, name="api_openapi"),
                  *pages.ROUTES]
        self.starlette = Starlette(routes=routes, lifespan=lifespan,
                                   exception_handlers={SessionStoreError: _error})
        self.starlette.state.store = store
        self.starlette.state.hub = self.hub
        self.starlette.state.model_usage = ModelUsage(store)
        self.asgi: ASGIApp = Guard(self.starlette, token=token, hosts=hosts)

    async def close(self) -> None:
        await self.hub.close()


def create_app(store: SessionStore, *, token: str | None = None,
               hosts: Iterable[str] = ()) -> Viewer:
    """The viewer over an open `store`; with a `token`, every request must carry it."""
    return Viewer(store, token=token, hosts=hosts)
