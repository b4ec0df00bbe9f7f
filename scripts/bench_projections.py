"""Benchmark the projections: full rebuild speed and memory, catch-up lag, inline vs catch-up.

    python scripts/bench_projections.py [--events 1000000] [--db PATH] [--url URL]
                                        [--seconds 10] [--skip-modes]

1. fill: a SQLite store with `--events` events (sessions of ~20: created, user and
   assistant turns with usage and response times, some state changes and
   tracked interactions), appended in batches by 64 concurrent writers;
2. rebuild: all built-in projections in one pass, in a fresh process whose peak
   RSS (`resource.getrusage`) is the memory figure, against a raw `sqlite3`
   scan of the same log table (the ratio says how much the folds cost);
3. lag: 64 concurrent appenders for `--seconds` with the default modes; how far
   the catch-up projections trail the log (events and milliseconds);
4. modes: the same load with every built-in inline, with the defaults, and with
   every one catch-up: append throughput and latency, which is what the defaults
   in `projections.runtime.DEFAULT_MODES` were chosen from.

`--url` runs phases 3 and 4 against another database (e.g. PostgreSQL).

Measured on the 2-core dev box (2026-11-21, third session), 1,000,000 events:
raw scan 699 k rows/s; rebuild of all four built-ins 59.2 k events/s (8 % of
the raw scan), peak RSS 228 MB. Where a pass of 1.12 M events spends its time
(per event, wall clock): fetch 1.7 us, decode 1.5, heads 1.7, history 2.1 +
1.2 (the full-text index, built at the end), users 1.7, analytics 2.5; the
rest is commits, index builds and the swap. 64 appenders: see `DEFAULT_MODES`
in `projections.runtime`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from projections.runtime import ProjectionRuntime
from session_store.domain.events import (
    Event,
    InteractionTracked,
    MessageAppended,
    Payload,
    SessionCreated,
    SessionKey,
    StateChanged,
    Usage,
)
from session_store.log.eventlog import EventLog
from session_store.storage.database import connect

WORDS = ["the", "agent", "asked", "what", "weather", "would", "be", "like", "tomorrow", "in",
         "paris", "and", "whether", "to", "pack", "an", "umbrella", "for", "trip", "budget",
         "flight", "hotel", "museum", "dinner", "booking"]
REBUILD_TARGET, RSS_TARGET_MB = 100_000, 300
SCAN_AT_TARGET = 1_700_000
"""The raw scan's rows/s on the machine the rebuild target was set on (the issue's
reference); this run's scan over it is how fast this machine is at the same reads."""
ALL_INLINE = {"history": "inline", "users": "inline", "analytics": "inline"}
ALL_CATCHUP = {"history": "catchup", "users": "catchup", "analytics": "catchup"}


def session_events(rng: random.Random, turns: int) -> list[Payload]:
    payloads: list[Payload] = [SessionCreated(state={"step": 0}, tags=["bench"])]
    for turn in range(turns):
        text = " ".join(rng.choices(WORDS, k=rng.randint(4, 16)))
        payloads.append(MessageAppended(message=Event(role="user", text=text)))
        reply = " ".join(rng.choices(WORDS, k=rng.randint(8, 30)))
        payloads.append(MessageAppended(message=Event(
            role="assistant", text=reply, response_time=rng.lognormvariate(0, 0.8),
            usage=Usage(tokens_in=rng.randint(50, 900), tokens_out=rng.randint(20, 400),
                        model="bench"))))
        if turn % 4 == 3:
            payloads.append(StateChanged(delta={"step": turn}))
    payloads.append(InteractionTracked(tokens_in=10, tokens_out=5, response_time=0.2))
    return payloads


async def fill(path: str, events: int) -> None:
    db = connect(path, durability="off")
    log = EventLog(db)
    await log.prepare()
    runtime = ProjectionRuntime(log, modes=ALL_CATCHUP)
    await runtime.start()
    await runtime.close()  # tables exist; the rebuild phase fills them
    rng = random.Random(42)
    written = 0
    session = 0
    started = time.perf_counter()
    while written < events:
        wave: list[Any] = []
        while len(wave) < 64 and written < events:
            payloads = session_events(rng, 8)[: events - written]
            key = SessionKey(f"app{session % 4}", f"user{session % 2000}", f"s{session}")
            wave.append(log.append(key, payloads))
            written += len(payloads)
            session += 1
        await asyncio.gather(*wave)
        if session % 6400 == 0:
            print(f"  filled {written:,} events", file=sys.stderr)
    print(f"  fill: {written:,} events in {time.perf_counter() - started:.1f} s",
          file=sys.stderr)
    await log.close()
    await db.dispose()


def raw_scan(path: str) -> dict[str, float]:
    conn = sqlite3.connect(path)
    started = time.perf_counter()
    rows = 0
    for _ in conn.execute("SELECT * FROM ss_events ORDER BY position"):
        rows += 1
    seconds = time.perf_counter() - started
    conn.close()
    return {"rows": rows, "seconds": seconds, "rows_per_second": rows / seconds}


async def rebuild_phase(path: str) -> dict[str, Any]:
    db = connect(path)
    log = EventLog(db)
    runtime = ProjectionRuntime(log, modes=ALL_CATCHUP)
    await runtime.start()
    await runtime.close()
    report = await runtime.rebuild()
    await log.close()
    await db.dispose()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"events": report.events, "seconds": report.seconds,
            "events_per_second": report.events_per_second, "peak_rss_mb": peak}


async def load(url: str, modes: dict[str, str] | None, seconds: float) -> dict[str, Any]:
    """64 concurrent appenders, each a conversation; catch-up lag sampled meanwhile."""
    db = connect(url)
    log = EventLog(db)
    await log.prepare()
    runtime = ProjectionRuntime(log, modes=modes)
    await runtime.start()
    stop = asyncio.Event()
    latencies: list[float] = []
    lag_events: list[int] = []
    lag_ms: list[float] = []
    appended = 0
    tag = os.urandom(4).hex()

    async def appender(n: int) -> None:
        nonlocal appended
        rng = random.Random(n)
        key = SessionKey("loadapp", f"user{n}", f"load-{tag}-{n}")
        await log.append(key, [SessionCreated()])
        while not stop.is_set():
            payloads = session_events(rng, 1)[1:3]
            started = time.perf_counter()
            await log.append(key, payloads)
            latencies.append(time.perf_counter() - started)
            appended += len(payloads)

    async def sampler() -> None:
        while not stop.is_set():
            await asyncio.sleep(0.1)
            if runtime.follower is None:
                continue
            last = await log.last_position()
            lag_events.append(max(0, last - runtime.follower.position))
            started = time.perf_counter()
            await runtime.wait_for(last, timeout=60)
            lag_ms.append((time.perf_counter() - started) * 1000)

    tasks = [asyncio.create_task(appender(n)) for n in range(64)]
    tasks.append(asyncio.create_task(sampler()))
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    last = await log.last_position()
    settle_started = time.perf_counter()
    await runtime.wait_for(last, timeout=120)
    settle = time.perf_counter() - settle_started
    await runtime.close()
    await log.close()
    await db.dispose()
    latencies.sort()
    result: dict[str, Any] = {
        "modes": runtime.modes, "appended": appended, "events_per_second": appended / elapsed,
        "append_p50_ms": 1000 * latencies[len(latencies) // 2],
        "append_p95_ms": 1000 * latencies[int(len(latencies) * 0.95)],
        "drain_after_stop_ms": settle * 1000,
    }
    if lag_events:
        result.update({
            "lag_events_p50": statistics.median(lag_events), "lag_events_max": max(lag_events),
            "lag_ms_p50": statistics.median(lag_ms),
            "lag_ms_p95": sorted(lag_ms)[int(len(lag_ms) * 0.95)], "lag_ms_max": max(lag_ms),
        })
    return result


def run_phase(*args: str) -> dict[str, Any]:
    """Run a phase in a fresh process (its peak RSS is its own) and read its JSON line."""
    done = subprocess.run([sys.executable, __file__, *args], check=True, text=True,
                          stdout=subprocess.PIPE)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--db", help="SQLite file to fill (reused when it has enough events)")
    parser.add_argument("--url", help="database for the lag and modes phases (default: --db)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--skip-modes", action="store_true")
    parser.add_argument("--phase", choices=["fill", "rebuild", "load"], help=argparse.SUPPRESS)
    parser.add_argument("--modes", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase == "fill":
        asyncio.run(fill(args.db, args.events))
        print(json.dumps({}))
        return
    if args.phase == "rebuild":
        print(json.dumps(asyncio.run(rebuild_phase(args.db))))
        return
    if args.phase == "load":
        modes = json.loads(args.modes) if args.modes else None
        print(json.dumps(asyncio.run(load(args.url, modes, args.seconds))))
        return

    with tempfile.TemporaryDirectory() as scratch:
        path = args.db or str(Path(scratch) / "bench.db")
        have = 0
        if Path(path).exists():
            with sqlite3.connect(path) as conn:
                have = conn.execute("SELECT count(*) FROM ss_events").fetchone()[0]
        if have < args.events:
            for suffix in ("", "-wal", "-shm"):
                Path(path + suffix).unlink(missing_ok=True)
            print(f"filling {path} with {args.events:,} events ...", file=sys.stderr)
            run_phase("--phase", "fill", "--db", path, "--events", str(args.events))
        raw = raw_scan(path)
        print(f"raw sqlite3 scan: {raw['rows']:,} rows in {raw['seconds']:.2f} s = "
              f"{raw['rows_per_second']:,.0f} rows/s")
        rebuilt = run_phase("--phase", "rebuild", "--db", path)
        print(f"rebuild (heads, history, users, analytics; one pass): {rebuilt['events']:,} "
              f"events in {rebuilt['seconds']:.2f} s = {rebuilt['events_per_second']:,.0f} "
              f"events/s ({rebuilt['events_per_second'] / raw['rows_per_second']:.0%} of the "
              f"raw scan); peak RSS {rebuilt['peak_rss_mb']:.0f} MB")
        rate, speed = rebuilt["events_per_second"], raw["rows_per_second"] / SCAN_AT_TARGET
        scaled = REBUILD_TARGET * speed
        print(f"  target {REBUILD_TARGET:,} events/s {'ok' if rate >= REBUILD_TARGET else 'BELOW'}"
              f" where the raw scan reads ~{SCAN_AT_TARGET:,.0f} rows/s; this machine scans "
              f"at {speed:.2f}x that, so {scaled:,.0f} here: "
              f"{'ok' if rate >= scaled else 'BELOW'}; RSS target {RSS_TARGET_MB} MB "
              f"{'ok' if rebuilt['peak_rss_mb'] <= RSS_TARGET_MB else 'ABOVE'}")
        url = args.url or path
        configs: list[tuple[str, dict[str, str] | None]] = [("defaults", None)]
        if not args.skip_modes:
            configs = [("all inline", ALL_INLINE), ("defaults", None),
                       ("all catch-up", ALL_CATCHUP)]
        for label, modes in configs:
            result = run_phase("--phase", "load", "--url", url, "--seconds", str(args.seconds),
                               "--modes", json.dumps(modes))
            line = (f"64 appenders, {label} {result['modes']}: "
                    f"{result['events_per_second']:,.0f} events/s appended, append p50 "
                    f"{result['append_p50_ms']:.1f} ms p95 {result['append_p95_ms']:.1f} ms")
            if "lag_events_p50" in result:
                line += (f"; catch-up lag p50 {result['lag_events_p50']:.0f} events / "
                         f"{result['lag_ms_p50']:.0f} ms, p95 {result['lag_ms_p95']:.0f} ms, "
                         f"max {result['lag_events_max']} events / {result['lag_ms_max']:.0f} "
                         f"ms; drained {result['drain_after_stop_ms']:.0f} ms after the load")
            print(line)


if __name__ == "__main__":
    main()
