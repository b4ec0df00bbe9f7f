"""Benchmark the ADK adapter against ADK's own SQLite-backed session services.

    python scripts/bench_adk.py            # 8 sessions x 250 events, a 2,000-event session
    python scripts/bench_adk.py --quick    # smaller, for a smoke run
    python scripts/bench_adk.py --json     # machine-readable results

One workload (ADK events with text, a state delta and usage metadata) runs
through `DatabaseSessionService` (sqlite+aiosqlite), `SqliteSessionService` and
`EventSourcedSessionService`, in the same process, each on a fresh file in the
same temporary directory. Reported: appends/s one session at a time and with
the sessions appending concurrently (as a server with many users does), and
the median `get_session` time for a 2,000-event session, full and last 20.

Most of a full read is pydantic building ADK `Event`s, the same work for every
service. The adapter keeps decoded events (they never change) and hands out
deep copies, so a long-running server re-reading its sessions turn after turn
pays less; the "cold" line is a service with that cache off.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.adk.events import Event as AdkEvent
from google.adk.events import EventActions
from google.adk.sessions.base_session_service import BaseSessionService, GetSessionConfig
from google.adk.sessions.database_session_service import DatabaseSessionService
from google.adk.sessions.sqlite_session_service import SqliteSessionService
from google.genai import types

from session_store.adapters.adk import EventSourcedSessionService

APP = "bench"
TEXT = "The quick brown fox jumps over the lazy dog. " * 4  # ~180 bytes, a short chat turn


@dataclass(frozen=True)
class Sizes:
    sessions: int
    events_per_session: int
    long_session: int
    reads: int


FULL = Sizes(sessions=8, events_per_session=250, long_session=2_000, reads=15)
QUICK = Sizes(sessions=8, events_per_session=50, long_session=2_000, reads=5)


def make_event(i: int) -> AdkEvent:
    user = i % 2 == 0
    return AdkEvent(
        author="user" if user else "assistant",
        invocation_id=f"inv-{i // 2}",
        content=types.Content(role="user" if user else "model", parts=[types.Part(text=TEXT)]),
        actions=EventActions(state_delta={"turn": i, "user:last_turn": i, "temp:scratch": i}),
        usage_metadata=None if user else types.GenerateContentResponseUsageMetadata(
            prompt_token_count=100 + i, candidates_token_count=40),
    )


async def fill(service: BaseSessionService, user: str, session_id: str, count: int) -> None:
    session = await service.create_session(app_name=APP, user_id=user, session_id=session_id)
    for i in range(count):
        await service.append_event(session, make_event(i))


async def timed(work: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await work()
    return time.perf_counter() - started


async def median_read(service: BaseSessionService, session_id: str, reads: int,
                      config: GetSessionConfig | None, expect: int) -> tuple[float, float]:
    """(median, best) seconds of `reads` reads; the best is the least disturbed by GC/load."""
    times = []
    for _ in range(reads):
        started = time.perf_counter()
        got = await service.get_session(app_name=APP, user_id="reader", session_id=session_id,
                                        config=config)
        times.append(time.perf_counter() - started)
        assert got is not None and len(got.events) == expect, "incomplete read"
    return statistics.median(times), min(times)


async def measure(name: str, service: BaseSessionService, sizes: Sizes) -> dict[str, float]:
    n = sizes.events_per_session
    await fill(service, "warmup", "warmup", 10)
    one = await timed(lambda: fill(service, "seq", "seq", n))
    try:
        many = await timed(lambda: asyncio.gather(*(
            fill(service, f"u{s}", f"s{s}", n) for s in range(sizes.sessions))))
    except Exception as error:  # noqa: BLE001 - ADK's SQLite services can fail under concurrency
        print(f"{name}: concurrent appends failed: {type(error).__name__}: "
              f"{str(error).splitlines()[0]}", file=sys.stderr)
        many = float("inf")
    await fill(service, "reader", "long", sizes.long_session)
    full, full_best = await median_read(service, "long", sizes.reads, None, sizes.long_session)
    last, _ = await median_read(service, "long", sizes.reads,
                                GetSessionConfig(num_recent_events=20), 20)
    return {
        "sequential_appends_per_s": n / one,
        "concurrent_appends_per_s": sizes.sessions * n / many,
        "get_full_ms": full * 1000,
        "get_full_best_ms": full_best * 1000,
        "get_last20_ms": last * 1000,
    }


async def run(sizes: Sizes, directory: Path) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    database = DatabaseSessionService(f"sqlite+aiosqlite:///{directory / 'adk_database.db'}")
    try:
        results["DatabaseSessionService"] = await measure("database", database, sizes)
    finally:
        await database.close()
    sqlite = SqliteSessionService(str(directory / "adk_sqlite.db"))
    results["SqliteSessionService"] = await measure("sqlite", sqlite, sizes)
    async with EventSourcedSessionService(str(directory / "session_store.db")) as adapter:
        results["EventSourcedSessionService"] = await measure("adapter", adapter, sizes)
        # Cold reads: a service that has decoded nothing yet (cache off), on the same store.
        cold = EventSourcedSessionService(store=await adapter.store(), event_cache_size=0)
        full, best = await median_read(cold, "long", sizes.reads, None, sizes.long_session)
        results["EventSourcedSessionService"]["get_full_cold_ms"] = full * 1000
        results["EventSourcedSessionService"]["get_full_cold_best_ms"] = best * 1000
    return results


def report(results: dict[str, dict[str, float]], sizes: Sizes) -> None:
    ours = results["EventSourcedSessionService"]
    print(f"workload: {sizes.sessions} sessions x {sizes.events_per_session} events "
          f"(text, state delta, usage); get_session of a {sizes.long_session:,}-event session")
    header = (f"{'service':28} {'seq app/s':>10} {'conc app/s':>11} "
              f"{'get full ms':>12} {'(best)':>7} {'get last20 ms':>14}")
    print(header)
    print("-" * len(header))
    for name, row in results.items():
        print(f"{name:28} {row['sequential_appends_per_s']:>10,.0f} "
              f"{row['concurrent_appends_per_s']:>11,.0f} {row['get_full_ms']:>12.1f} "
              f"{row['get_full_best_ms']:>7.1f} {row['get_last20_ms']:>14.2f}")
    print(f"{'  cold (decoded cache off)':28} {'':>10} {'':>11} "
          f"{ours['get_full_cold_ms']:>12.1f} {ours['get_full_cold_best_ms']:>7.1f}")
    print()
    for name in ("DatabaseSessionService", "SqliteSessionService"):
        row = results[name]
        print(f"adapter vs {name}: "
              f"sequential appends {ours['sequential_appends_per_s'] / row['sequential_appends_per_s']:.1f}x, "  # noqa: E501
              f"concurrent appends {ours['concurrent_appends_per_s'] / row['concurrent_appends_per_s']:.1f}x, "  # noqa: E501
              f"get full {row['get_full_ms'] / ours['get_full_ms']:.1f}x faster "
              f"(best {row['get_full_best_ms'] / ours['get_full_best_ms']:.1f}x, "
              f"cold {row['get_full_best_ms'] / ours['get_full_cold_best_ms']:.1f}x), "
              f"get last-20 {row['get_last20_ms'] / ours['get_last20_ms']:.1f}x faster")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    with tempfile.TemporaryDirectory(prefix="bench-adk-") as directory:
        results = asyncio.run(run(sizes, Path(directory)))
    if args.json:
        print(json.dumps({"sizes": sizes.__dict__, "results": results}, indent=2))
    else:
        report(results, sizes)


if __name__ == "__main__":
    main()
