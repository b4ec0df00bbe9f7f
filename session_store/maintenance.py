"""The store's background maintenance: `enforce_retention` every `maintenance_interval`.

`open_store(..., maintenance_interval=seconds)` starts it on the store's event loop;
`close()` stops it. A failed run is logged (`maintenance.failed`) and counted, never
raised: the next run tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from session_store.domain import validation
from session_store.logs import get_logger

log = get_logger(__name__)


class Maintenance:
    """Runs `job` every `interval` seconds until stopped."""

    def __init__(self, job: Callable[[], Awaitable[Any]], interval: float | timedelta) -> None:
        seconds = validation.timeout_of(interval, "maintenance_interval")
        assert seconds is not None, "an interval is given"
        self.job, self.interval = job, seconds
        self.runs = 0
        """Runs that finished."""
        self.failures = 0
        """Runs that raised (logged, not raised)."""
        self.last_result: Any = None
        self.last_error: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._serve(),
                                                            name="session-store-maintenance")

    async def _serve(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.last_result = await self.job()
            except Exception as error:  # noqa: BLE001 - logged; the next run tries again
                self.failures += 1
                self.last_error = error
                log.error("maintenance.failed", error=repr(error), failures=self.failures)
                continue
            self.runs += 1
            log.debug("maintenance.ran", runs=self.runs, result=repr(self.last_result))

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
