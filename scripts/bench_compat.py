"""Benchmark the compat modules' bare-id lookups (LG-ADK's `session_exists(id)`,
`get_session(id)`): resolved through the heads' index by session id, their cost must not
grow with the number of sessions.

    python scripts/bench_compat.py            # 1,000 and 50,000 sessions
    python scripts/bench_compat.py --quick    # 1,000 and 10,000

Measured in the same run, each size in a fresh SQLite file: the time of one
`find_sessions(id, app_name=...)` (what every id-only compat call does first) and of one
`SessionManager.get_session(id)`, at the small and the large size; then, at the large size,
the same lookup with the index dropped (the scan it replaces). Ratios, not times, are the
result: large/small near 1 is O(log n); the scan's ratio shows what the index saves.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from session_store import open_store
from session_store.compat.lg_adk import SessionManager
from session_store.domain.events import SessionCreated

APP = "lg_adk"
LOOKUPS = 300


async def fill(path: str, sessions: int) -> list[str]:
    """`sessions` sessions of 1,000 users in the app."""
    ids = [f"s{n:07d}" for n in range(sessions)]
    async with open_store(path) as store:
        for start in range(0, sessions, 1000):
            await asyncio.gather(*(
                store.append_payloads((APP, f"u{n % 1000}", ids[n]), [SessionCreated()],
                                      expected_version=0)
                for n in range(start, min(start + 1000, sessions))))
    return ids


async def timed(call: Callable[[str], Awaitable[object]], ids: list[str]) -> float:
    """Median seconds of one call, over random ids."""
    samples = []
    for session_id in random.Random(7).choices(ids, k=LOOKUPS):
        started = time.perf_counter()
        await call(session_id)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


async def measure(path: str, ids: list[str]) -> tuple[float, float]:
    async with open_store(path) as store:
        manager = SessionManager(store)
        find = await timed(lambda i: store.find_sessions(i, app_name=APP), ids)
        get = await timed(manager.aget_session, ids)
    return find, get


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 and 10,000 sessions")
    args = parser.parse_args()
    small, large = 1_000, 10_000 if args.quick else 50_000
    with tempfile.TemporaryDirectory() as directory:
        results = {}
        for size in (small, large):
            path = str(Path(directory) / f"bench_{size}.db")
            ids = asyncio.run(fill(path, size))
            results[size] = asyncio.run(measure(path, ids))
        with sqlite3.connect(path) as conn:
            conn.execute("DROP INDEX ss_heads_session")
        scan = asyncio.run(measure(path, ids))
    (find_s, get_s), (find_l, get_l) = results[small], results[large]
    print(f"{'lookup':<36}{small:>10,}{large:>12,}{'large/small':>13}")
    print(f"{'find_sessions(id) (ms)':<36}{find_s * 1e3:>10.3f}{find_l * 1e3:>12.3f}"
          f"{find_l / find_s:>13.2f}")
    print(f"{'SessionManager.get_session(id) (ms)':<36}{get_s * 1e3:>10.3f}{get_l * 1e3:>12.3f}"
          f"{get_l / get_s:>13.2f}")
    print(f"without the index, at {large:,}: find_sessions {scan[0] * 1e3:.3f} ms "
          f"({scan[0] / find_l:.1f}x the indexed lookup), get_session {scan[1] * 1e3:.3f} ms "
          f"({scan[1] / get_l:.1f}x)")
    print("target: large/small ≤ 2 for both (O(log n), not O(n))")


if __name__ == "__main__":
    main()
