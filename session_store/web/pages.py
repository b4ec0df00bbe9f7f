"""The pages: one HTML shell for every page of the viewer, and the static files it loads.

The shell holds no data and no inline script: `app.js` reads the address, asks the API
and draws the page with `textContent` (message text is never parsed as HTML).
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).with_name("static")
PAGES = ("/", "/session", "/search", "/analytics", "/audit")


async def shell(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers={"cache-control": "no-store"})


ROUTES = [*(Route(path, shell, name=f"page_{path.strip('/') or 'sessions'}") for path in PAGES),
          Mount("/static", StaticFiles(directory=STATIC), name="static")]
