"""`serve`: the web viewer over the store (`session_store.web`, the `web` extra), until
Ctrl-C. Starlette and uvicorn are imported here only, when the command runs."""

from __future__ import annotations

import argparse
import secrets

from session_store.cli import render
from session_store.errors import SessionStoreError
from session_store.store import SessionStore


async def serve(store: SessionStore, args: argparse.Namespace) -> int:
    try:
        from session_store.web import security
        from session_store.web.server import address, server
    except ImportError as error:
        raise SessionStoreError(f"serve needs the web extra: pip install "
                                f"'session-store[web]' ({error})") from None
    token = security.resolve_token(secrets.token_urlsafe(24) if args.token == "" else args.token)
    security.check_bind(args.host, token)
    running = server(store, host=args.host, port=args.port, token=token)
    where = address(args.host, args.port) + "/"
    shown = f"{where}?token={token}" if token is not None and args.token == "" else where
    render.out.print(f"Viewing {store.display_url} at {shown} (read-only; Ctrl-C stops)",
                     markup=False, soft_wrap=True)
    if token is not None and args.token != "":
        render.out.print("Every request needs the token: open the page with ?token=TOKEN or "
                         "send Authorization: Bearer TOKEN", markup=False)
    await running.serve()
    return 0
