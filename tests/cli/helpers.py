"""Run the real `session-store` console script in a subprocess."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

_SCRIPT = Path(sys.executable).with_name("session-store")
COMMAND = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "session_store.cli"]
SMALL_DEMO = ("demo", "--users", "3", "--sessions", "7", "--turns", "3", "--latency-ms", "0.5")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SESSION_STORE_URL"}
    env.update(COLUMNS="200", NO_COLOR="1", PYTHONWARNINGS="ignore")
    return env


def _argv(args: tuple[str, ...], db: str | None) -> list[str]:
    return [*COMMAND, *(["--db", db] if db is not None else []), *args]


def cli(*args: str, db: str | None = None, cwd: Path | None = None,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_argv(args, db), capture_output=True, text=True, env=_env(),
                          cwd=cwd, input=stdin, timeout=120, check=False)


def terminal_stderr(*args: str, db: str | None = None) -> str:
    """What the command writes to stderr when stderr is a terminal (progress bars show)."""
    parent, child = pty.openpty()
    try:
        process = subprocess.Popen(_argv(args, db), stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=child, env=_env())
        os.close(child)
        chunks = []
        while True:
            try:
                chunk = os.read(parent, 65536)
            except OSError:  # EIO: the command closed its end
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(timeout=120) == 0, b"".join(chunks).decode(errors="replace")
    finally:
        os.close(parent)
    return b"".join(chunks).decode(errors="replace")


def ok(*args: str, db: str | None = None, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = cli(*args, db=db, **kwargs)
    assert result.returncode == 0, (result.returncode, result.stdout[-3000:], result.stderr)
    return result


def ok_json(*args: str, db: str | None = None) -> Any:
    return json.loads(ok(*args, "--json", db=db).stdout)
