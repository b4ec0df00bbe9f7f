"""Benchmark the web viewer against the reads under it, in the same run.

    python scripts/bench_serve.py            # full sizes: a 2,000-event session, 10,000 sessions
    python scripts/bench_serve.py --quick    # smaller sizes for a fast look
    python scripts/bench_serve.py --db postgresql://postgres@127.0.0.1:5432/bench_serve

Measured in one fresh store (SQLite in a temporary directory unless --db names one):

- the server time of the session page's API call (`GET /api/session`: summary, timeline of
  every event, figures) for a 2,000-event session, beside `get_session` of the same session
  in full (its 2,000 messages);
- the server time of the first sessions page of a user with 10,000 sessions
  (`GET /api/sessions?app=&user=&limit=50`), beside `list_sessions(limit=50)`;
- the latency from an append's commit to its event arriving on an open event stream
  (`GET /api/events` over HTTP from uvicorn), p50 and p95: appended by the server's own
  store (the log wakes the stream at once) and by another store (another process, in
  effect: the log is polled).

Server times are taken inside the ASGI app in process, from the request's call to its last
byte sent (routing, the guard, the queries and the JSON encoding; no sockets, no client).
Target: each page ≤ 2× its read.
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

import httpx
from bench_sessions import TEXT  # scripts/, beside this one

from session_store import Event, SessionStore, Usage, open_store
from session_store.web.app import create_app
from session_store.web.server import free_port, server

TARGET = 2.0


@dataclass
class Sizes:
    events: int = 2_000
    sessions: int = 10_000
    reads: int = 30
    pages: int = 200
    latencies: int = 40


async def fill(store: SessionStore, sizes: Sizes) -> Any:
    session = await store.create_session(app_name="bench", user_id="u")
    for i in range(sizes.events):
        if i % 2:
            await store.append_event(session, Event(
                role="assistant", author="agent", text=TEXT, invocation_id=f"inv-{i // 2}",
                usage=Usage(tokens_in=400, tokens_out=40, model="bench-llm"),
                response_time=0.2, state_delta={"turn": i}))
        else:
            await store.append_event(session, Event(role="user", text=TEXT,
                                                    invocation_id=f"inv-{i // 2}"))
    for start_at in range(0, sizes.sessions, 500):
        await asyncio.gather(*(store.create_session(app_name="bench", user_id="many",
                                                    state={"n": n})
                               for n in range(start_at, min(sizes.sessions, start_at + 500))))
    return session


class Timed:
    """The app, timing each request from its call to its last byte: the server's time,
    without the client's."""

    def __init__(self, app: Any) -> None:
        self.app, self.last_ms = app, 0.0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        start = time.perf_counter()
        await self.app(scope, receive, send)
        self.last_ms = (time.perf_counter() - start) * 1000


async def paired_ms(timed: Timed, page: Callable[[], Awaitable[Any]],
                    read: Callable[[], Awaitable[Any]], repeat: int) -> tuple[float, float]:
    """Medians of the page's server time and of the read under it, taken in turns (so both
    see the same load on a shared machine)."""
    await page()
    await read()  # warm caches and statement compilation
    pages, reads = [], []
    for _ in range(repeat):
        await page()
        pages.append(timed.last_ms)
        start = time.perf_counter()
        await read()
        reads.append((time.perf_counter() - start) * 1000)
    return statistics.median(pages), statistics.median(reads)


async def server_times(store: SessionStore, session: Any, sizes: Sizes
                       ) -> list[tuple[str, float, float]]:
    viewer = create_app(store)
    timed = Timed(viewer.asgi)
    transport = httpx.ASGITransport(app=timed)
    query = {"app": "bench", "user": "u", "session": session.id}
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            async def page() -> None:
                answer = await client.get("/api/session", params=query)
                assert answer.status_code == 200 and len(answer.json()["timeline"]) == (
                    sizes.events + 1)

            async def read() -> None:
                found = await store.get_session(app_name="bench", user_id="u",
                                                session_id=session.id)
                assert found is not None and len(found.events) == sizes.events

            async def sessions_page() -> None:
                answer = await client.get("/api/sessions", params={
                    "app": "bench", "user": "many", "limit": 50})
                assert answer.status_code == 200 and len(answer.json()["sessions"]) == 50

            async def listing() -> None:
                found = await store.list_sessions(app_name="bench", user_id="many", limit=50)
                assert len(found.sessions) == 50

            rows = []
            for name, served, under, repeat in (
                    (f"session page, {sizes.events:,} events", page, read, sizes.reads),
                    (f"first sessions page of {sizes.sessions:,}", sessions_page, listing,
                     sizes.pages)):
                page_ms, read_ms = await paired_ms(timed, served, under, repeat)
                rows.append((name, page_ms, read_ms))
            return rows
    finally:
        await viewer.close()


async def latencies(store: SessionStore, url: str, session: Any, sizes: Sizes
                    ) -> dict[str, list[float]]:
    port = free_port()
    running = server(store, host="127.0.0.1", port=port, token=None)
    task = asyncio.create_task(running.serve())
    while not running.started:
        await asyncio.sleep(0.01)
    found: dict[str, list[float]] = {}
    try:
        async with open_store(url) as other, httpx.AsyncClient(timeout=30) as client:
            for name, writer in (("the server's store (woken)", store),
                                 ("another store (polled)", other)):
                found[name] = await _stream_latency(client, port, writer, session, sizes)
    finally:
        running.should_exit = True
        await task
    return found


async def _stream_latency(client: httpx.AsyncClient, port: int, writer: SessionStore,
                          session: Any, sizes: Sizes) -> list[float]:
    samples: list[float] = []
    params = {"app": "bench", "user": "u", "session": session.id, "limit": sizes.latencies}
    async with client.stream("GET", f"http://127.0.0.1:{port}/api/events",
                             params=params) as stream:
        lines = stream.aiter_lines()
        async for line in lines:  # the stream is open once its first comment arrives
            if line.startswith(": connected"):
                break
        for n in range(sizes.latencies):
            await writer.add_message(session, "user", f"live {n}")
            committed = time.perf_counter()
            async for line in lines:
                if line.startswith("data: ") and f"live {n}" in line:
                    samples.append((time.perf_counter() - committed) * 1000)
                    break
            await asyncio.sleep(0.01)
    return samples


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def run(url: str, sizes: Sizes) -> dict[str, Any]:
    async with open_store(url) as store:
        started = time.perf_counter()
        session = await fill(store, sizes)
        print(f"wrote {sizes.events:,} events and {sizes.sessions:,} sessions in "
              f"{time.perf_counter() - started:.1f}s to {store.display_url}", file=sys.stderr)
        rows = await server_times(store, session, sizes)
        streams = await latencies(store, url, session, sizes)
    return {"pages": rows, "latency": streams}


def report(found: dict[str, Any]) -> None:
    print(f"{'server time':<36} {'page ms':>9} {'read ms':>9} {'ratio':>7}  target ≤ {TARGET:g}×")
    for name, page_ms, read_ms in found["pages"]:
        ratio = page_ms / read_ms
        verdict = "ok" if ratio <= TARGET else "MISSED"
        print(f"{name:<36} {page_ms:>9.2f} {read_ms:>9.2f} {ratio:>6.2f}×  {verdict}")
    print(f"\n{'commit → event on the stream':<36} {'p50 ms':>9} {'p95 ms':>9} {'n':>5}")
    for name, samples in found["latency"].items():
        print(f"{name:<36} {quantile(samples, 0.5):>9.1f} {quantile(samples, 0.95):>9.1f} "
              f"{len(samples):>5}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a fast look")
    parser.add_argument("--db", help="an empty database to fill (default: a temporary SQLite)")
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = parser.parse_args()
    sizes = Sizes(events=200, sessions=1_000, reads=5, pages=20, latencies=10) if args.quick \
        else Sizes()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or str(Path(tmp) / "bench.db")
        found = asyncio.run(run(url, sizes))
    if args.json:
        print(json.dumps(found, indent=2))
    else:
        report(found)
    return 0


if __name__ == "__main__":
    sys.exit(main())
