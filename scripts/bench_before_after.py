"""Run `bench_log.py` and `bench_sessions.py` on an older revision and on this tree, in turns,
and print every workload's rate after / before.

    python scripts/bench_before_after.py --base 4ebdeb4            # quick sizes, two rounds
    python scripts/bench_before_after.py --base 4ebdeb4 --rounds 3 --full

The older revision is checked out in a temporary git worktree and imported from there
(PYTHONPATH), with the same interpreter and packages. Rounds alternate which tree goes
first, so a machine that slows down during the run does not favour one side. On a
shared machine compare the ratios' spread, not single numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SESSION_METRICS = ("appends/s", "get_session full (ms)", "get_session last 20 (ms)",
                   "list_sessions first page (ms)")
"""bench_sessions.py's rows (rates: higher is better; times in ms: lower is better)."""


def _run(tree: Path, script: str, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, str(tree / "scripts" / script), *args], env=env,
                          cwd=tree, capture_output=True, text=True, timeout=3600, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{script} in {tree} failed:\n{done.stdout[-2000:]}{done.stderr[-4000:]}")
    return done.stdout


def log_rates(tree: Path, full: bool) -> dict[str, float]:
    out = _run(tree, "bench_log.py", "--json", *([] if full else ["--quick"]))
    rows = json.loads(out[out.rindex("\n[") + 1:])
    return {f"log {r['backend']}: {r['workload']}": float(r["events_per_second"])
            for r in rows if r["backend"] in ("sqlite", "postgresql")}


def session_numbers(tree: Path, full: bool) -> dict[str, float]:
    out = _run(tree, "bench_sessions.py", "--no-adk", *([] if full else ["--quick"]))
    found: dict[str, float] = {}
    for metric in SESSION_METRICS:
        match = re.search(rf"^{re.escape(metric)}\s+([\d,.]+)", out, re.MULTILINE)
        if match is not None:
            found[f"sessions: {metric}"] = float(match.group(1).replace(",", ""))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the older revision (a commit or tag)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--full", action="store_true", help="the benchmarks' full sizes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-base-") as tmp:
        base = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base),
                        args.base], check=True, capture_output=True)
        try:
            runs: dict[str, dict[str, list[float]]] = {"before": {}, "after": {}}
            for round_ in range(args.rounds):
                sides = [("before", base), ("after", ROOT)]
                for side, tree in sides if round_ % 2 == 0 else reversed(sides):
                    print(f"round {round_ + 1}: {side} ({tree})", file=sys.stderr)
                    numbers = {**log_rates(tree, args.full), **session_numbers(tree, args.full)}
                    for name, value in numbers.items():
                        runs[side].setdefault(name, []).append(value)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)],
                           check=False, capture_output=True)
    print(f"{'workload':<58} {'before':>12} {'after':>12} {'after/before':>14}  per round")
    for name, before in runs["before"].items():
        after = runs["after"].get(name)
        if not after:
            continue
        lower_is_better = name.endswith("(ms)")
        ratios = [(b / a if lower_is_better else a / b) for a, b in zip(after, before,
                                                                         strict=False)]
        print(f"{name:<58} {statistics.median(before):>12,.2f} {statistics.median(after):>12,.2f}"
              f" {statistics.median(ratios):>13.2f}x  "
              + " ".join(f"{r:.2f}" for r in ratios))
    print("after/before > 1 means this tree is faster (for times: takes less).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
