"""The library prints nothing unless the application configures logging; then its events
reach the standard library's `logging`, under the `session_store` logger."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_CHILD = textwrap.dedent("""
    import asyncio, logging, sys
    from session_store import open_store

    if sys.argv[2] == "debug":
        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s %(message)s")

    async def main(url):
        async with open_store(url) as store:
            if sys.argv[3] == "failing hook":
                store.on("*", lambda event: 1 / 0)
            session = await store.create_session(app_name="app", user_id="u")
            await store.add_message(session, "user", "hello")
            assert (await store.verify()).problems == []

    asyncio.run(main(sys.argv[1]))
""")


def _child(tmp_path: Path, logging: str, hook: str = "") -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PYTHON", "SESSION_STORE"))}
    return subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path / "sessions.db"),
                           logging, hook], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=120, check=False)


def test_a_store_prints_nothing_when_the_application_configured_no_logging(
        tmp_path: Path) -> None:
    """Open, append, verify, close: not a byte on stdout or stderr (before: structlog's
    default printed debug lines to stdout on every open and verify)."""
    result = _child(tmp_path, "none")
    assert result.returncode == 0, result.stderr
    assert (result.stdout, result.stderr) == ("", "")


def test_its_warnings_reach_stderr_as_any_librarys_do(tmp_path: Path) -> None:
    """With no logging configured, `logging.lastResort` shows warnings (a hook that raised),
    and still nothing on stdout."""
    result = _child(tmp_path, "none", "failing hook")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "session_store.hook_failed" in result.stderr
    assert "ZeroDivisionError" in result.stderr
    assert "projections.mode_changed" not in result.stderr  # debug stays quiet


@pytest.mark.parametrize("event", ["projections.mode_changed", "projections.verified"])
def test_the_debug_events_appear_once_logging_is_configured(tmp_path: Path, event: str) -> None:
    result = _child(tmp_path, "debug")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if event in line]
    assert lines, result.stderr
    assert all(line.startswith("DEBUG session_store.projections.") for line in lines), lines
