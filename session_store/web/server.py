"""Running the viewer: `serve` in the running event loop (the CLI's `serve`), and
`Background`, a server on its own thread and loop (for scripts and tests)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable
from typing import Any

import uvicorn

from session_store.store import SessionStore, open_store
from session_store.web.app import Viewer, create_app
from session_store.web.security import check_bind

SHUTDOWN_SECONDS = 1
"""How long a stop waits for open event streams before closing them."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def address(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Server(uvicorn.Server):
    """uvicorn's server, ending the viewer's event streams first when it stops (else it
    waits for them: an open page never closes its stream)."""

    def __init__(self, config: uvicorn.Config, viewer: Viewer) -> None:
        super().__init__(config)
        self.viewer = viewer

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self.viewer.close()
        await super().shutdown(sockets)


def server(store: SessionStore, *, host: str, port: int, token: str | None,
           log_level: str = "warning") -> uvicorn.Server:
    """A uvicorn server of the viewer over `store` (`check_bind` first)."""
    check_bind(host, token)
    viewer = create_app(store, token=token, hosts=[host])
    config = uvicorn.Config(viewer.asgi, host=host, port=port, log_level=log_level,
                            lifespan="on", timeout_graceful_shutdown=SHUTDOWN_SECONDS,
                            access_log=False)
    return _Server(config, viewer)


class Background:
    """The viewer of the store at `url` on a thread of its own, at `self.url` once
    `start()` returns; `stop()` ends it. The store is opened (and closed) on that thread's
    loop, as its connections belong to one loop."""

    def __init__(self, url: str, *, host: str = "127.0.0.1", port: int | None = None,
                 token: str | None = None, opened: Callable[[SessionStore], Any] | None = None
                 ) -> None:
        self.db, self.host, self.token = url, host, token
        self.port = port or free_port(host)
        self.url = address(host, self.port)
        self._server: uvicorn.Server | None = None
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self._opened = opened
        self._thread = threading.Thread(target=self._run, name="session-store-web",
                                        daemon=True)

    def start(self, timeout: float = 60.0) -> Background:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"the viewer did not start within {timeout}s")
        if self._failed is not None:
            raise self._failed
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        self._thread.join(30)

    def __enter__(self) -> Background:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        try:
            async with open_store(self.db) as store:
                if self._opened is not None:
                    self._opened(store)
                self._server = server(store, host=self.host, port=self.port, token=self.token)
                task = asyncio.create_task(self._server.serve())
                while not self._server.started and not task.done():
                    await asyncio.sleep(0.01)
                self._ready.set()
                await task
        except BaseException as error:  # noqa: BLE001 - reported by start()
            self._failed = error
            self._ready.set()
