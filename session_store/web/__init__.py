"""The web viewer (`session-store serve`, the `web` extra): a read-only ASGI app on Starlette
over one open store.

`session_store.web.app.create_app(store, token=None)` builds it; the JSON API lives under
`/api/` (`/api/openapi.json` describes it), the pages are its clients (static JavaScript,
no build step), and `/api/events` streams committed events as server-sent events. Nothing
here writes to the store. This package imports Starlette: nothing else in session_store
imports it, so the core and the command line start without it.
"""
