"""Benchmark the LangGraph checkpointer against LangGraph's own SQLite and PostgreSQL savers.

    python scripts/bench_langgraph.py             # 1,000 checkpoints in one thread, 100 threads
    python scripts/bench_langgraph.py --quick     # smaller, for a smoke run
    python scripts/bench_langgraph.py --pg postgresql://postgres@127.0.0.1:5432
    python scripts/bench_langgraph.py --json

In one run, each saver on a fresh database (a SQLite file in one temporary directory, a
new PostgreSQL database when `--pg` or $SESSION_STORE_TEST_PG names a reachable server):
`EventSourcedCheckpointSaver` on SQLite and PostgreSQL, `AsyncSqliteSaver`
(langgraph-checkpoint-sqlite), `AsyncPostgresSaver` (langgraph-checkpoint-postgres).

- direct: `aput` of 1,000 checkpoints one after the other in one thread (each changes two
  small channels and keeps a 2 kB channel set at the start), the median `aget_tuple` of
  the latest checkpoint after the 10th and after the 1,000th, `alist` of the whole thread;
  then 100 threads of 10 checkpoints put concurrently;
- graph: a `StateGraph` (no model: a node appends a message) over turns on 20 threads;
- storage: what the database grew by, per checkpoint written (SQLite: the file and its WAL
  after a checkpoint of it; PostgreSQL: the tables with their indexes and TOAST); the
  store's figure includes its read models (heads, history, analytics).

Ratios are the saver's figure over the reference's (higher is better for rates, lower
for times and bytes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver, empty_checkpoint
from langgraph.checkpoint.base.id import uuid6
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages

from session_store.adapters.langgraph import EventSourcedCheckpointSaver
from session_store.store import open_store

PROFILE = {"bio": "x" * 2000, "prefs": list(range(20))}

Factory = Callable[[], AbstractAsyncContextManager[tuple[BaseCheckpointSaver[Any], Any]]]


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def reply(state: State) -> dict[str, Any]:
    return {"messages": [AIMessage(content=f"echo: {state['messages'][-1].content}")]}


def graph_builder() -> StateGraph[State]:
    builder = StateGraph(State)
    builder.add_node("reply", reply)
    builder.add_edge(START, "reply")
    return builder


async def put_chain(saver: BaseCheckpointSaver[Any], thread: str, n: int,
                    at: dict[int, Callable[[], Any]] | None = None) -> float:
    """Put `n` checkpoints in `thread`, one after the other; returns the seconds taken (the
    callbacks of `at` run after checkpoint i, outside the timing)."""
    parent: str | None = None
    taken = 0.0
    for i in range(1, n + 1):
        checkpoint = empty_checkpoint()
        checkpoint["id"] = str(uuid6(clock_seq=i))
        checkpoint["channel_values"] = {"step": i, "last": f"message {i} " * 10, "profile": PROFILE}
        checkpoint["channel_versions"] = {"step": i, "last": i, "profile": 1}
        new_versions: dict[str, Any] = {"step": i, "last": i}
        if i == 1:
            new_versions["profile"] = 1
        config: Any = {"configurable": {"thread_id": thread, "checkpoint_ns": "",
                                        **({"checkpoint_id": parent} if parent else {})}}
        start = time.perf_counter()
        stored = await saver.aput(config, checkpoint, {"source": "loop", "step": i, "parents": {}},
                                  new_versions)
        taken += time.perf_counter() - start
        parent = stored["configurable"]["checkpoint_id"]
        if at and i in at:
            await at[i]()
    return taken


async def median_get(saver: BaseCheckpointSaver[Any], thread: str, reads: int) -> float:
    config: Any = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
    times = []
    for _ in range(reads):
        start = time.perf_counter()
        found = await saver.aget_tuple(config)
        times.append(time.perf_counter() - start)
        assert found is not None
    return statistics.median(times)


async def run_saver(factory: Factory, checkpoints: int, threads: int, turns: int,
                    reads: int) -> dict[str, float]:
    result: dict[str, float] = {}
    async with factory() as (saver, size_of):
        empty = await size_of()
        gets: dict[int, float] = {}

        async def probe(i: int) -> None:
            gets[i] = await median_get(saver, "one", reads)

        marks = {i: (lambda i=i: probe(i)) for i in (10, checkpoints)}
        taken = await put_chain(saver, "one", checkpoints, marks)
        result["aput/s"] = checkpoints / taken
        result["get@10 ms"] = gets[10] * 1000
        result[f"get@{checkpoints} ms"] = gets[checkpoints] * 1000
        start = time.perf_counter()
        listed = [t async for t in saver.alist({"configurable": {"thread_id": "one"}})]
        result["alist ms"] = (time.perf_counter() - start) * 1000
        assert len(listed) == checkpoints
        start = time.perf_counter()
        await asyncio.gather(*(put_chain(saver, f"t{k}", 10) for k in range(threads)))
        result["100 threads aput/s"] = threads * 10 / (time.perf_counter() - start)
        written = checkpoints + threads * 10
        result["bytes/checkpoint"] = (await size_of() - empty) / written
        graph = graph_builder().compile(checkpointer=saver)
        start = time.perf_counter()
        for turn in range(turns):
            await asyncio.gather(*(graph.ainvoke(
                {"messages": [HumanMessage(content=f"turn {turn}")]},
                {"configurable": {"thread_id": f"g{k}"}}) for k in range(20)))
        result["graph turns/s"] = turns * 20 / (time.perf_counter() - start)
    return result


def sqlite_size(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    wal = Path(f"{path}-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


async def pg_size(url: str) -> int:
    import asyncpg
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'r'"))
    finally:
        await conn.close()


@asynccontextmanager
async def pg_database(server: str) -> AsyncIterator[str]:
    import asyncpg
    name = f"bench_lg_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(f"{server}/postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    try:
        yield f"{server}/{name}"
    finally:
        admin = await asyncpg.connect(f"{server}/postgres")
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def factories(folder: Path, server: str | None) -> dict[str, Factory]:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    @asynccontextmanager
    async def ours_sqlite() -> AsyncIterator[tuple[BaseCheckpointSaver[Any], Any]]:
        path = folder / "store.db"
        async with open_store(str(path)) as store:
            async def size() -> int:
                return sqlite_size(path)
            yield EventSourcedCheckpointSaver(store), size

    @asynccontextmanager
    async def theirs_sqlite() -> AsyncIterator[tuple[BaseCheckpointSaver[Any], Any]]:
        path = folder / "langgraph.db"
        async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
            await saver.setup()

            async def size() -> int:
                await saver.conn.commit()
                return sqlite_size(path)
            yield saver, size

    found: dict[str, Factory] = {"store/sqlite": ours_sqlite, "AsyncSqliteSaver": theirs_sqlite}
    if server is None:
        return found
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    @asynccontextmanager
    async def ours_pg() -> AsyncIterator[tuple[BaseCheckpointSaver[Any], Any]]:
        async with pg_database(server) as url, open_store(url) as store:
            async def size() -> int:
                return await pg_size(url)
            yield EventSourcedCheckpointSaver(store), size

    @asynccontextmanager
    async def theirs_pg() -> AsyncIterator[tuple[BaseCheckpointSaver[Any], Any]]:
        async with pg_database(server) as url, AsyncPostgresSaver.from_conn_string(url) as saver:
            await saver.setup()

            async def size() -> int:
                return await pg_size(url)
            yield saver, size

    found.update({"store/postgresql": ours_pg, "AsyncPostgresSaver": theirs_pg})
    return found


def reachable(server: str | None) -> str | None:
    if not server:
        return None
    import asyncpg

    async def probe() -> bool:
        try:
            conn = await asyncpg.connect(f"{server}/postgres", timeout=3)
        except (OSError, asyncpg.PostgresError):
            return False
        await conn.close()
        return True

    return server if asyncio.run(probe()) else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 checkpoints, 20 threads")
    parser.add_argument("--pg", default=os.environ.get("SESSION_STORE_TEST_PG",
                                                       "postgresql://postgres@127.0.0.1:5432"),
                        help="a PostgreSQL server URL without a database ('' for none)")
    parser.add_argument("--json", action="store_true", help="machine-readable results")
    args = parser.parse_args()
    checkpoints, threads, turns, reads = (200, 20, 3, 20) if args.quick else (1000, 100, 10, 50)
    server = reachable(args.pg)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, factory in factories(Path(folder), server).items():
            results[name] = asyncio.run(run_saver(factory, checkpoints, threads, turns, reads))
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        print()
        return
    names = list(results)
    metrics = list(results[names[0]])
    print(f"{'':22}" + "".join(f"{n:>20}" for n in names))
    for metric in metrics:
        print(f"{metric:22}" + "".join(f"{results[n][metric]:>20.3f}" for n in names))
    print("\nratios (saver / reference)")
    pairs = [("store/sqlite", "AsyncSqliteSaver"), ("store/postgresql", "AsyncPostgresSaver"),
             ("store/sqlite", "AsyncPostgresSaver")]
    for ours, theirs in pairs:
        if ours in results and theirs in results:
            print(f"  {ours} vs {theirs}: " + ", ".join(
                f"{m} {results[ours][m] / results[theirs][m]:.2f}x" for m in metrics))
    for name in names:
        flat = results[name][f"get@{checkpoints} ms"] / results[name]["get@10 ms"]
        print(f"  {name}: get_tuple at checkpoint {checkpoints} / at 10 = {flat:.2f}")
    if server is None:
        print("\n(PostgreSQL not reachable: its savers were not measured)")


if __name__ == "__main__":
    main()
