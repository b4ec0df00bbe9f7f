"""Benchmark the session API on SQLite against Google ADK's session services, same workload.

    python scripts/bench_sessions.py            # full sizes (10,000 sessions for the page)
    python scripts/bench_sessions.py --quick    # smaller sizes for a fast look

Measured, each in a fresh SQLite file of its own:

- appends/s through `append_event`, one awaited call after another, into one session;
- `get_session` of that 2,000-event session, in full and with the last 20 events;
- the first page of `list_sessions` for a user with 10,000 sessions (ADK has no paging:
  its `list_sessions` returns every session of the user, which is what a caller gets);
- upkeep at scale (`--upkeep-only` for just this): `analytics.summary` of an app of 10,000
  sessions and `enforce_retention` archiving 10,000 due sessions (then again, with none
  due), in a store of 10,000 sessions and in one of 100,000 (the 90,000 more are in
  another app and not due): both O(touched rows), so the two stores should take about
  the same time per call.
- `get_session` of a 20,000-message session before and after `compact(keep_recent=20)`
  (a summary and 20 recent messages), same store, same run (`--compaction` runs only this).

ADK's `DatabaseSessionService` (sqlite+aiosqlite URL) and `SqliteSessionService` run in
the same process when google-adk is importable (`pip install 'session-store[bench]'`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from session_store import Event, RetentionPolicy, Usage, open_store
from session_store.domain.events import MessageAppended, SessionCreated

TEXT = "The quick brown fox jumps over the lazy dog. " * 4  # ~180 bytes, a short chat turn
TARGETS = {"appends/s": "≥ 10× ADK Database", "get_session full (ms)": "≤ 15 ms",
           "get_session last 20 (ms)": "≤ 0.5 ms", "list_sessions first page (ms)": "≤ 5 ms"}


@dataclass
class Sizes:
    events: int = 2_000
    sessions: int = 10_000
    full_reads: int = 30
    recent_reads: int = 500
    page_reads: int = 200
    long_messages: int = 20_000
    long_reads: int = 10


@dataclass
class Result:
    name: str
    numbers: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


async def median_ms(call: Callable[[], Awaitable[Any]], repeat: int) -> float:
    await call()  # warm caches and statement compilation
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


# --- session-store -----------------------------------------------------------------------

async def bench_store(folder: Path, sizes: Sizes) -> Result:
    result = Result("session-store")
    async with open_store(str(folder / "store.db")) as store:
        session = await store.create_session(app_name="bench", user_id="u")
        gc.collect()
        start = time.perf_counter()
        for i in range(sizes.events):
            await store.append_event(session, Event(
                role="user" if i % 2 else "assistant", text=TEXT, invocation_id=f"inv-{i // 2}"))
        result.numbers["appends/s"] = sizes.events / (time.perf_counter() - start)

        async def full() -> None:
            found = await store.get_session(app_name="bench", user_id="u", session_id=session.id)
            assert found is not None and len(found.events) == sizes.events

        async def recent() -> None:
            found = await store.get_session(app_name="bench", user_id="u", session_id=session.id,
                                            num_recent_events=20)
            assert found is not None and len(found.events) == 20

        result.numbers["get_session full (ms)"] = await median_ms(full, sizes.full_reads)
        result.numbers["get_session last 20 (ms)"] = await median_ms(recent, sizes.recent_reads)

        for start_at in range(0, sizes.sessions, 500):
            await asyncio.gather(*(store.create_session(app_name="bench", user_id="many",
                                                        state={"n": n})
                                   for n in range(start_at, min(sizes.sessions, start_at + 500))))

        async def page() -> None:
            found = await store.list_sessions(app_name="bench", user_id="many", limit=100)
            assert len(found.sessions) == 100 and found.next_cursor is not None

        result.numbers["list_sessions first page (ms)"] = await median_ms(page, sizes.page_reads)
    result.notes.append("list_sessions: first page of 100 (cursor paging)")
    return result


async def bench_compaction(folder: Path, sizes: Sizes) -> dict[str, float]:
    """`get_session` (in full) of a long session, then of the same session compacted."""
    numbers: dict[str, float] = {}
    async with open_store(str(folder / "compaction.db")) as store:
        session = await store.create_session(app_name="bench", user_id="long")
        for start in range(0, sizes.long_messages, 5_000):
            await store.append_events(session, [
                Event(role="user" if i % 2 else "assistant", text=TEXT)
                for i in range(start, min(sizes.long_messages, start + 5_000))])

        def read(count: int) -> Callable[[], Awaitable[None]]:
            async def call() -> None:
                found = await store.get_session(app_name="bench", user_id="long",
                                                session_id=session.id)
                assert found is not None and len(found.events) == count
            return call

        numbers["uncompacted"] = await median_ms(read(sizes.long_messages), sizes.long_reads)
        await store.compact(session, "A summary of the older turns. " * 8, keep_recent=20)
        numbers["compacted"] = await median_ms(read(21), sizes.long_reads * 20)
    return numbers


def report_compaction(numbers: dict[str, float], messages: int) -> None:
    print(f"get_session of a {messages:,}-message session (SQLite, same run): "
          f"uncompacted {_fmt(numbers['uncompacted'])} ms, compacted to a summary and 20 "
          f"recent {_fmt(numbers['compacted'])} ms: "
          f"{numbers['uncompacted'] / numbers['compacted']:,.0f}× faster")


# --- Google ADK ----------------------------------------------------------------------------

async def adk_appends(service: Any, events: int) -> tuple[Any, float]:
    """A new session of `service` with `events` text turns appended one awaited call after
    another; returns the session and the appends per second."""
    from google.adk.events import Event as AdkEvent
    from google.genai import types

    session = await service.create_session(app_name="bench", user_id="u")
    gc.collect()
    start = time.perf_counter()
    for i in range(events):  # the event is built in the loop, as session-store's is
        role = "user" if i % 2 else "model"
        await service.append_event(session, AdkEvent(
            author=role, invocation_id=f"inv-{i // 2}",
            content=types.Content(role=role, parts=[types.Part(text=TEXT)])))
    return session, events / (time.perf_counter() - start)


async def bench_adk(name: str, service: Any, sizes: Sizes) -> Result:
    from google.adk.sessions.base_session_service import GetSessionConfig

    result = Result(name)
    session, result.numbers["appends/s"] = await adk_appends(service, sizes.events)

    async def full() -> None:
        found = await service.get_session(app_name="bench", user_id="u", session_id=session.id)
        assert found is not None and len(found.events) == sizes.events

    async def recent() -> None:
        found = await service.get_session(app_name="bench", user_id="u", session_id=session.id,
                                          config=GetSessionConfig(num_recent_events=20))
        assert found is not None and len(found.events) == 20

    result.numbers["get_session full (ms)"] = await median_ms(full, max(5, sizes.full_reads // 3))
    result.numbers["get_session last 20 (ms)"] = await median_ms(recent, sizes.recent_reads // 5)
    for n in range(sizes.sessions):  # one at a time: ADK's SQLite services have one writer
        await service.create_session(app_name="bench", user_id="many", state={"n": n})

    async def page() -> None:
        found = await service.list_sessions(app_name="bench", user_id="many")
        assert len(found.sessions) == sizes.sessions

    result.numbers["list_sessions first page (ms)"] = await median_ms(
        page, max(5, sizes.page_reads // 20))
    result.notes.append(f"{name}: list_sessions returns all {sizes.sessions:,} (no paging)")
    return result


async def adk_results(folder: Path, sizes: Sizes) -> list[Result]:
    try:
        from google.adk.sessions.database_session_service import DatabaseSessionService
        from google.adk.sessions.sqlite_session_service import SqliteSessionService
    except ImportError as error:
        print(f"google-adk is not importable ({error}): ADK columns skipped; "
              "pip install 'session-store[bench]' to compare.")
        return []
    database = DatabaseSessionService(f"sqlite+aiosqlite:///{folder / 'adk_database.db'}")
    results = [await bench_adk("ADK Database", database, sizes)]
    engine = getattr(database, "db_engine", None)
    if engine is not None:
        await engine.dispose()
    sqlite_service = SqliteSessionService(str(folder / "adk_sqlite.db"))
    results.append(await bench_adk("ADK Sqlite", sqlite_service, sizes))
    return results


# --- upkeep at scale ----------------------------------------------------------------------

async def _seed(store: Any, app: str, first: int, count: int, turns: int) -> None:
    """`count` sessions of `app`, each created with `turns` message pairs in one append."""
    async def one(n: int) -> None:
        payloads: list[Any] = [SessionCreated()]
        for t in range(turns):
            payloads.append(MessageAppended(message=Event(role="user", text=f"q{t}")))
            payloads.append(MessageAppended(message=Event(
                role="assistant", text=f"a{t}", response_time=0.2 + (n % 50) / 100,
                usage=Usage(tokens_in=100 + n % 7, tokens_out=20, model=f"m{n % 3}",
                            provider="p"))))
        await store.append_payloads((app, f"u{n % 500}", f"s{n}"), payloads,
                                    expected_version=0)

    for start in range(first, first + count, 1000):
        await asyncio.gather(*(one(n) for n in range(start, min(first + count, start + 1000))))


async def seed_upkeep(store: Any, total: int, due: int) -> tuple[float, float]:
    """`due` sessions of app `bench`, then `total - due` of app `other` (created after the
    returned cut, so not idle at it); both apps with a policy. (cut, seconds taken)."""
    start = time.perf_counter()
    await _seed(store, "bench", 0, due, turns=1)
    await asyncio.sleep(0.01)
    cut = time.time()
    await asyncio.sleep(0.01)
    await _seed(store, "other", due, total - due, turns=1)
    for app in ("bench", "other"):
        await store.set_retention(app_name=app, policy=RetentionPolicy(archive_after=3600.0))
    await store.wait_for(await store.last_position())
    return cut, time.perf_counter() - start


def checkpoint(path: Path) -> float:
    """Checkpoint and truncate the WAL of the seeded file (what `optimize()` starts with);
    returns the WAL's size in MB before. Seeding with readers about can leave a WAL of
    hundreds of MB, and every page read looks through its index: that would measure the
    seeding, not the calls."""
    wal = Path(f"{path}-wal")
    size = wal.stat().st_size / 1e6 if wal.exists() else 0.0
    conn = sqlite3.connect(path, timeout=60)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return size


async def bench_upkeep(folder: Path, sizes: list[int], rounds: int = 15
                       ) -> dict[int, dict[str, float]]:
    """The upkeep calls over the `sizes[0]` sessions of app `bench` in a store of each size,
    measured in turns (store by store, round by round) so load drifts hit all alike."""
    due = sizes[0]
    numbers: dict[int, dict[str, float]] = {n: {} for n in sizes}
    samples: dict[tuple[int, str], list[float]] = {}
    async with contextlib.AsyncExitStack() as stack:
        stores = {n: await stack.enter_async_context(open_store(str(folder / f"up-{n}.db")))
                  for n in sizes}
        cuts = {}
        for n, store in stores.items():
            cuts[n], numbers[n]["seed (s)"] = await seed_upkeep(store, n, due)
            numbers[n]["WAL after seed (MB)"] = checkpoint(folder / f"up-{n}.db")

        async def timed(n: int, metric: str, call: Callable[[], Awaitable[Any]]) -> Any:
            start = time.perf_counter()
            result = await call()
            samples.setdefault((n, metric), []).append((time.perf_counter() - start) * 1000)
            return result

        for store in stores.values():  # warm-up
            await store.analytics.summary(app_name="bench")
        for _ in range(rounds):
            for n, store in stores.items():
                found = await timed(n, "analytics.summary (ms)",
                                    lambda s=store: s.analytics.summary(app_name="bench"))
                assert found.sessions == due and found.messages == 2 * due
        for n, store in stores.items():
            gc.collect()
            report = await timed(n, "enforce_retention, all due (ms)",
                                 lambda s=store, c=cuts[n]: s.enforce_retention(now=c + 3600))
            assert len(report.archived) == due, report.counts
        for n, store in stores.items():  # warm-up: the follower folds the archive facts
            await store.enforce_retention(now=cuts[n] + 3600)
        for _ in range(rounds):
            for n, store in stores.items():
                report = await timed(n, "enforce_retention, none due (ms)",
                                     lambda s=store, c=cuts[n]: s.enforce_retention(
                                         now=c + 3600))
                assert report.total == 0
    for (n, metric), found in samples.items():
        numbers[n][metric] = statistics.median(found)
    return numbers


def report_upkeep(results: dict[int, dict[str, float]]) -> None:
    sizes = sorted(results)
    print(f"\nupkeep at scale: {sizes[0]:,} sessions summed and due, in a store of "
          f"{' and '.join(f'{n:,}' for n in sizes)} sessions")
    setup = ("seed (s)", "WAL after seed (MB)")
    metrics = sorted(m for m in results[sizes[0]] if m not in setup)
    width = max(len(m) for m in metrics)
    print(f"{'metric':<{width}}  " + "  ".join(f"{n:>10,}" for n in sizes)
          + f"  {sizes[-1] // sizes[0]}x store: time x")
    for metric in [*metrics, *setup]:
        cells = "  ".join(f"{_fmt(results[n][metric]):>10}" for n in sizes)
        ratio = results[sizes[-1]][metric] / results[sizes[0]][metric]
        print(f"{metric:<{width}}  {cells}  {ratio:.2f}")
    print("  target: time x ~1 for the upkeep calls (O(touched rows)), while the seed "
          "grows with the store; medians of calls taken in turns (all due: one call)")


# --- report -------------------------------------------------------------------------------

def report(ours: Result, others: list[Result]) -> None:
    headers = ["metric", ours.name, *(o.name for o in others),
               *(f"vs {o.name}" for o in others), "target"]
    rows = []
    for metric, target in TARGETS.items():
        mine = ours.numbers[metric]
        cells = [metric, _fmt(mine), *(_fmt(o.numbers[metric]) for o in others)]
        for other in others:
            theirs = other.numbers[metric]
            ratio = mine / theirs if metric == "appends/s" else theirs / mine
            cells.append(f"{ratio:,.1f}× {'more' if metric == 'appends/s' else 'faster'}")
        cells.append(target)
        rows.append(cells)
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*headers))
    print(line.format(*("-" * w for w in widths)))
    for row in rows:
        print(line.format(*row))
    for result in [ours, *others]:
        for note in result.notes:
            print(f"  note: {note}")


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3f}" if value < 1 else f"{value:.2f}"


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--no-adk", action="store_true", help="skip the ADK services")
    parser.add_argument("--upkeep-only", action="store_true",
                        help="only the upkeep-at-scale part (summary, enforce_retention)")
    parser.add_argument("--upkeep-sizes", default="10000,100000",
                        help="store sizes in sessions for the upkeep part (default "
                             "10000,100000; the first is also how many are due)")
    parser.add_argument("--compaction", action="store_true",
                        help="only the compacted vs uncompacted get_session")
    args = parser.parse_args(argv)
    upkeep_sizes = [int(n) for n in args.upkeep_sizes.split(",")]
    sizes = Sizes(events=2_000, sessions=2_000, full_reads=15, recent_reads=300,
                  page_reads=100, long_reads=5) if args.quick else Sizes()
    if args.compaction:
        with tempfile.TemporaryDirectory(prefix="bench-compaction-") as tmp:
            report_compaction(await bench_compaction(Path(tmp), sizes), sizes.long_messages)
        return
    print(f"session-store vs Google ADK on SQLite: {sizes.events:,}-event session, "
          f"{sizes.sessions:,} sessions for one user, python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory(prefix=f"bench-sessions-{uuid.uuid4().hex[:6]}-") as tmp:
        folder = Path(tmp)
        if not args.upkeep_only:
            ours = await bench_store(folder, sizes)
            others = [] if args.no_adk else await adk_results(folder, sizes)
            report(ours, others)
            compaction = await bench_compaction(folder, sizes)
            report_compaction(compaction, sizes.long_messages)
        upkeep = await bench_upkeep(folder, upkeep_sizes)
    report_upkeep(upkeep)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
