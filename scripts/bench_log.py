"""Benchmark the event log: append and read rates on SQLite and (when reachable) PostgreSQL.

    python scripts/bench_log.py            # full run (fills a 1M-event log for the flatness check)
    python scripts/bench_log.py --quick    # smaller sizes, a minute or so
    python scripts/bench_log.py --pg postgresql://postgres@127.0.0.1:5432   # server, no database

Each backend gets a fresh database. The raw-sqlite3 lines write the same rows without
session-store (same WAL journal and synchronous=NORMAL), as the floor to compare against: one
event per transaction (sequential), 64 events of 64 sessions per transaction (what a wave of
the concurrent workload commits) and 1,000 per transaction (batch).

The targets were set on another machine, where Google ADK's DatabaseSessionService
appended ~280 events/s on SQLite and ~400 on PostgreSQL. Each backend's run starts with that
workload (google-adk installed: the `dev` or `bench` extra); the ratio of its rate here to
the targets' machine is this machine's speed, and every target is shown both as written and
scaled by it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from session_store.domain.events import Event, MessageAppended, SessionKey
from session_store.domain.ids import new_ids
from session_store.log.eventlog import EventLog
from session_store.storage.codec import encode_payload
from session_store.storage.database import connect

TARGETS = {
    ("sqlite", "sequential"): 4_000,
    ("sqlite", "concurrent (64 sessions)"): 40_000,
    ("sqlite", "batch of 1,000"): 150_000,
    ("sqlite", "read_all"): 300_000,
    ("postgresql", "sequential"): 1_200,
    ("postgresql", "concurrent (64 sessions)"): 10_000,
}
ADK_AT_TARGETS = {"sqlite": 280, "postgresql": 400}
"""ADK's DatabaseSessionService, sequential appends/s on the machine the targets were set on
(the issue's reference). This run measures it too: its rate over this figure is how fast this
machine is, and each target is also shown scaled by it."""
TEXT = "The quick brown fox jumps over the lazy dog. " * 4  # ~180 bytes, a short chat turn


def payload(i: int) -> MessageAppended:
    return MessageAppended(message=Event(role="user" if i % 2 else "assistant", text=TEXT,
                                         invocation_id=f"inv-{i // 2}"))


@dataclass
class Sizes:
    sequential: int
    concurrent_per_session: int
    batches: int
    flat_small: int
    flat_large: int
    flat_probe: int
    adk: int


QUICK = Sizes(sequential=2_000, concurrent_per_session=100, batches=20, flat_small=10_000,
              flat_large=200_000, flat_probe=2_000, adk=200)
FULL = Sizes(sequential=10_000, concurrent_per_session=300, batches=100, flat_small=10_000,
             flat_large=1_000_000, flat_probe=5_000, adk=1_000)


@dataclass
class Results:
    rows: list[tuple[str, str, float, str]] = field(default_factory=list)
    speed: dict[str, float] = field(default_factory=dict)
    """Per backend: this machine's speed relative to the targets' machine (ADK reference)."""

    def add(self, backend: str, name: str, rate: float, note: str = "") -> None:
        target = TARGETS.get((backend, name))
        if target is not None:
            verdict = "ok" if rate >= target else "BELOW"
            speed = self.speed.get(backend)
            if speed is not None:
                scaled = target * speed
                verdict += (f" (scaled to this machine: {scaled:,.0f} "
                            f"{'ok' if rate >= scaled else 'BELOW'})")
            note = f"target {target:,} {verdict}" + (f"; {note}" if note else "")
        self.rows.append((backend, name, rate, note))
        print(f"  {backend:<10} {name:<28} {rate:>12,.0f} ev/s  {note}", flush=True)


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[EventLog]:
    db = connect(url)
    log = EventLog(db)
    try:
        await log.prepare()
        yield log
    finally:
        await log.close()
        await db.dispose()


async def sequential(log: EventLog, count: int, session: str = "seq") -> float:
    key = SessionKey("bench", "user", session)
    events = [payload(i) for i in range(count)]
    await log.append(key, [events[0]])  # warm the writer and the connections
    start = time.perf_counter()
    for event in events[1:]:
        await log.append(key, [event])
    return rate(count - 1, time.perf_counter() - start)


async def concurrent(log: EventLog, per_session: int, sessions: int = 64,
                     prefix: str = "conc") -> float:
    events = [payload(i) for i in range(per_session)]

    async def one(s: int) -> None:
        key = SessionKey("bench", f"user{s % 8}", f"{prefix}-{s}")
        for event in events:
            await log.append(key, [event])

    start = time.perf_counter()
    await asyncio.gather(*(one(s) for s in range(sessions)))
    return rate(sessions * per_session, time.perf_counter() - start)


async def batches(log: EventLog, count: int, size: int = 1_000, prefix: str = "batch") -> float:
    """Appends of `size` events each; the caller's event objects are built before timing."""
    events = [[payload(i) for i in range(size)] for _ in range(min(count, 10))]
    start = time.perf_counter()
    for b in range(count):
        key = SessionKey("bench", "user", f"{prefix}-{b % 50}")
        await log.append(key, events[b % len(events)])
    return rate(count * size, time.perf_counter() - start)


async def read_all(log: EventLog) -> tuple[float, int]:
    gc.collect()
    start = time.perf_counter()
    count = 0
    async for _ in log.read_all():
        count += 1
    return rate(count, time.perf_counter() - start), count


def raw_sqlite(count: int, batch: int = 1, sessions: int = 1) -> float:
    """The same rows on bare sqlite3, `batch` INSERTs per transaction, nothing else: the floor.

    With `sessions`, consecutive rows go to different sessions in turn (a transaction of 64
    rows over 64 sessions is what a wave of 64 concurrent one-event appends writes).
    """
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(Path(tmp) / "raw.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA cache_size = -65536")  # the rest as session-store's writer has it
        conn.execute("PRAGMA wal_autocheckpoint = 10000")
        conn.execute("CREATE TABLE ss_events (position INTEGER PRIMARY KEY, app_name TEXT, "
                     "user_id TEXT, session_id TEXT, version INTEGER, type TEXT, schema INTEGER, "
                     "data BLOB, event_id TEXT UNIQUE, recorded_at REAL, hash TEXT, "
                     "UNIQUE (app_name, user_id, session_id, version))")
        ids = new_ids(count)  # time-ordered, as session-store's own: the id index grows at its end
        rows = [(i + 1, "bench", f"user{i % sessions % 8}", f"raw-{i % sessions}",
                 i // sessions + 1, "MessageAppended", 1, encode_payload(payload(i)),
                 ids[i], time.time(), "0" * 64)
                for i in range(count)]
        start = time.perf_counter()
        for first in range(0, count, batch):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT INTO ss_events VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                             rows[first:first + batch])
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - start
        conn.close()
        return rate(count, elapsed)


async def fill(log: EventLog, target: int, per_session: int = 20) -> None:
    """Grow the log to `target` events in sessions of `per_session` events, 1,000 events
    per commit: the store grows in sessions as a real one does (50,000 at 1M events)."""
    have = await log.last_position()
    events = [payload(i) for i in range(per_session)]
    while have < target:
        sessions = max(1, min(1_000, target - have) // per_session)
        await log.commit([log.prepare_append(SessionKey("bench", f"fill{have % 97}",
                                                        f"f-{have + s}"), events)
                          for s in range(sessions)])
        have += sessions * per_session


async def adk_sequential(url: str, count: int) -> float | None:
    """ADK's DatabaseSessionService appending `count` events one awaited call after another
    (the issue's reference workload); None when google-adk is not installed."""
    try:
        from bench_sessions import adk_appends
        from google.adk.sessions.database_session_service import DatabaseSessionService
    except ImportError as error:
        print(f"  google-adk is not importable ({error}): no ADK reference")
        return None
    service = DatabaseSessionService(url)
    try:
        _, rate = await adk_appends(service, count)
    finally:
        engine = getattr(service, "db_engine", None)
        if engine is not None:
            await engine.dispose()
    return float(rate)


async def run_backend(backend: str, url: str, sizes: Sizes, results: Results) -> None:
    adk_url = url if backend == "postgresql" else f"sqlite+aiosqlite:///{url}.adk"
    adk = await adk_sequential(adk_url, sizes.adk)
    if adk is not None:
        results.speed[backend] = adk / ADK_AT_TARGETS[backend]
        results.add(backend, "ADK Database sequential", adk,
                    f"the targets' machine: ~{ADK_AT_TARGETS[backend]}, so this one runs at "
                    f"{results.speed[backend]:.2f}x its speed")
    async with opened(url) as log:
        seq = await sequential(log, sizes.sequential)
        results.add(backend, "sequential", seq)
        if backend == "sqlite":
            raw = raw_sqlite(sizes.sequential)
            results.add(backend, "raw sqlite3 sequential", raw,
                        f"session-store reaches {seq / raw:.0%} of it")
        many = await concurrent(log, sizes.concurrent_per_session)
        results.add(backend, "concurrent (64 sessions)", many)
        if backend == "sqlite":
            raw = raw_sqlite(64 * sizes.concurrent_per_session, batch=64, sessions=64)
            results.add(backend, "raw sqlite3 64 per commit", raw,
                        f"session-store reaches {many / raw:.0%} of it")
        batch = await batches(log, sizes.batches)
        results.add(backend, "batch of 1,000", batch)
        if backend == "sqlite":
            raw = raw_sqlite(sizes.batches * 1_000, batch=1_000)
            results.add(backend, "raw sqlite3 batch of 1,000", raw,
                        f"session-store reaches {batch / raw:.0%} of it")
        read_rate, count = await read_all(log)
        results.add(backend, "read_all", read_rate, f"{count:,} events")
    flat_url = url if backend == "postgresql" else url + ".flat"
    async with opened(flat_url) as log:
        await fill(log, sizes.flat_small)
        small = await sequential(log, sizes.flat_probe, "flat-small")
        # ~8x the sequential probe's events: a short probe is at the mercy of one checkpoint
        small_many = await concurrent(log, sizes.flat_probe // 8, prefix="flat-small")
        await fill(log, sizes.flat_large)
        large = await sequential(log, sizes.flat_probe, "flat-large")
        large_many = await concurrent(log, sizes.flat_probe // 8, prefix="flat-large")
        for name, at_small, at_large in (("sequential", small, large),
                                         ("concurrent", small_many, large_many)):
            results.add(backend, f"{name} at {sizes.flat_small // 1000}k", at_small)
            verdict = "ok" if at_large >= 0.8 * at_small else "BELOW 80%"
            results.add(backend, f"{name} at {sizes.flat_large / 1e6:g}M", at_large,
                        f"{at_large / at_small:.0%} of the rate at "
                        f"{sizes.flat_small // 1000}k ({verdict})")


@asynccontextmanager
async def postgres_database(server: str) -> AsyncIterator[str | None]:
    try:
        import asyncpg  # type: ignore[import-untyped]
    except ImportError:
        yield None
        return
    name = f"ss_bench_{uuid.uuid4().hex[:8]}"
    try:
        admin = await asyncpg.connect(f"{server}/postgres", timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        print(f"PostgreSQL at {server} is not reachable ({error}); skipped")
        yield None
        return
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    try:
        yield f"{server.replace('postgresql://', 'postgresql+asyncpg://')}/{name}"
    finally:
        admin = await asyncpg.connect(f"{server}/postgres")
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--pg", default=os.environ.get("SESSION_STORE_BENCH_PG",
                                                      "postgresql://postgres@127.0.0.1:5432"),
                        help="PostgreSQL server URL without a database ('' to skip)")
    parser.add_argument("--only", choices=["sqlite", "postgresql"], default=None)
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    results = Results()
    print(f"session-store log benchmark ({'quick' if args.quick else 'full'}), "
          f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    if args.only in (None, "sqlite"):
        with tempfile.TemporaryDirectory() as tmp:
            await run_backend("sqlite", str(Path(tmp) / "bench.db"), sizes, results)
    if args.only in (None, "postgresql") and args.pg:
        async with postgres_database(args.pg) as url:
            if url is not None:
                await run_backend("postgresql", url, sizes, results)
    if args.json:
        print(json.dumps([dict(zip(("backend", "workload", "events_per_second", "note"), row,
                                   strict=True)) for row in results.rows], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
