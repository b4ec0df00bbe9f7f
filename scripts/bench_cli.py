#!/usr/bin/env python3
"""How fast `session-store` starts, as ratios to a bare `python -c pass` in the same run.

Targets (issue #16): `--help` and `--version` within 2x a bare interpreter, `sessions`
on a small store within 4x. Each command runs `--runs` times, alternating with the bare
interpreter; the medians are compared, so a busy machine moves both alike.

    .venv/bin/python scripts/bench_cli.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPT = Path(sys.executable).with_name("session-store")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "session_store.cli"]
TARGETS = {"--help": 2.0, "--version": 2.0, "sessions": 4.0}


def _env() -> dict[str, str]:
    # Bytecode caches as a user has them (this sandbox sets PYTHONDONTWRITEBYTECODE, which
    # would compile every module of the project from source on every start).
    env = {k: v for k, v in os.environ.items()
           if k not in ("SESSION_STORE_URL", "PYTHONDONTWRITEBYTECODE")}
    env.update(COLUMNS="100", NO_COLOR="1")
    return env


def _seconds(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(),
                   check=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "small.db")
        subprocess.run([*COMMAND, "--db", db, "demo", "--users", "2", "--sessions", "4",
                        "--turns", "2", "--latency-ms", "0"], stdout=subprocess.DEVNULL,
                       env=_env(), check=True)
        cases = {"--help": [*COMMAND, "--help"], "--version": [*COMMAND, "--version"],
                 "sessions": [*COMMAND, "--db", db, "sessions"]}
        bare = [sys.executable, "-c", "pass"]
        for argv in [bare, *cases.values()]:
            _seconds(argv)  # warm the file cache
        times: dict[str, list[float]] = {"python -c pass": []} | {name: [] for name in cases}
        for _ in range(args.runs):
            for name, argv in cases.items():
                times["python -c pass"].append(_seconds(bare))
                times[name].append(_seconds(argv))
    base = statistics.median(times["python -c pass"])
    print(f"{'command':<16} {'median':>9} {'ratio':>7} {'target':>7}")
    print(f"{'python -c pass':<16} {base * 1000:>7.1f}ms {1.0:>6.2f}x")
    failed = False
    for name in cases:
        median = statistics.median(times[name])
        ratio = median / base
        met = ratio <= TARGETS[name]
        failed |= not met
        print(f"{name:<16} {median * 1000:>7.1f}ms {ratio:>6.2f}x {TARGETS[name]:>6.1f}x"
              f"  {'ok' if met else 'over'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
