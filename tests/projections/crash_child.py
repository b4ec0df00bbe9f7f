"""A catch-up follower that dies: run as `python -m tests.projections.crash_child URL N SIZE`.

It follows the log in batches of SIZE events and, on the N-th batch, exits the
process abruptly (`os._exit`) after history and users have folded the batch
but before analytics has and before the checkpoints are written: the middle
of the batch's transaction. With N = 0 it runs until killed from outside.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from typing import Any

from projections.catchup import Follower
from projections.runtime import ProjectionRuntime
from session_store.domain.events import RecordedEvent
from session_store.log.eventlog import EventLog
from session_store.storage.database import connect
from tests.kit import ALL_CATCHUP

CRASHED = 17


async def main(url: str, crash_at: int, batch_size: int) -> None:
    log = EventLog(connect(url))
    runtime = ProjectionRuntime(log, modes=ALL_CATCHUP)
    analytics = runtime.projections["analytics"]
    fold = analytics.apply
    calls = 0

    def dying_apply(conn: Any, events: Sequence[RecordedEvent]) -> None:
        nonlocal calls
        calls += 1
        if calls == crash_at:
            os._exit(CRASHED)
        fold(conn, events)

    analytics.apply = dying_apply  # type: ignore[method-assign]
    follower = Follower(log, runtime.catchup, batch_size=batch_size, poll_interval=0.05)
    await follower.start()
    while True:
        await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
