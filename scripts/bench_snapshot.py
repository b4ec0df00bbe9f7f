#!/usr/bin/env python3
"""What deep immutability and statistics cost on `get_session` of a long session.

A session of `--events` messages (2,000 by default) with a nested state of `--keys` keys
is read whole with `get_session`, alternating with the same read whose snapshot is built
the old way (the state and metadata wrapped shallowly, not frozen); the medians are
compared, so a busy machine moves both alike. Target: deep freezing adds at most 10 % to
`get_session`. It also prints `statistics()` against the read it follows.

    .venv/bin/python scripts/bench_snapshot.py [--events 2000] [--keys 200] [--runs 30]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import MappingProxyType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from session_store import Event, Session, Usage, open_store  # noqa: E402

TARGET = 1.10


def _shallow(self: Session) -> None:
    """The snapshot's state and metadata as they were wrapped before: one level only."""
    object.__setattr__(self, "state", MappingProxyType(dict(self.state)))
    object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))


async def _run(events: int, keys: int, runs: int) -> float:
    state: dict[str, Any] = {f"k{i}": {"items": list(range(5)), "more": {"x": i}}
                             for i in range(keys)}
    with tempfile.TemporaryDirectory() as folder:
        async with open_store(str(Path(folder) / "bench.db")) as store:
            session = await store.create_session(app_name="bench", user_id="u", state=state)
            batch = [Event(role="assistant" if i % 2 else "user", text=f"message {i}",
                           usage=Usage(tokens_in=3, tokens_out=5), response_time=0.1)
                     for i in range(events)]
            for start in range(0, events, 500):
                await store.append_events(session, batch[start:start + 500])
            frozen_init = Session.__post_init__
            deep: list[float] = []
            shallow: list[float] = []
            stats: list[float] = []
            for _ in range(runs):
                for init, into in ((frozen_init, deep), (_shallow, shallow)):
                    Session.__post_init__ = init  # type: ignore[method-assign]
                    started = time.perf_counter()
                    loaded = await store.get_session(app_name="bench", user_id="u",
                                                     session_id=session.id)
                    into.append(time.perf_counter() - started)
                Session.__post_init__ = frozen_init  # type: ignore[method-assign]
                assert loaded is not None and len(loaded.events) == events
                started = time.perf_counter()
                loaded.statistics()
                stats.append(time.perf_counter() - started)
    ratio = statistics.median(deep) / statistics.median(shallow)
    print(f"get_session of {events:,} messages, state of {keys} nested keys, "
          f"median of {runs} runs each")
    print(f"  deeply frozen  {statistics.median(deep) * 1000:8.2f} ms")
    print(f"  shallow (ref)  {statistics.median(shallow) * 1000:8.2f} ms")
    print(f"  ratio          {ratio:8.3f}  (target <= {TARGET})  "
          f"{'OK' if ratio <= TARGET else 'MISSED'}")
    print(f"  statistics()   {statistics.median(stats) * 1000:8.2f} ms "
          f"({statistics.median(stats) / statistics.median(deep):.2f} of the read)")
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--keys", type=int, default=200)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    asyncio.run(_run(args.events, args.keys, args.runs))


if __name__ == "__main__":
    main()
