"""Run the real `session-store` console script in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

_SCRIPT = Path(sys.executable).with_name("session-store")
COMMAND = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "session_store.cli"]
SMALL_DEMO = ("demo", "--users", "3", "--sessions", "7", "--turns", "3", "--latency-ms", "0.5")


def cli(*args: str, db: str | None = None, cwd: Path | None = None,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SESSION_STORE_URL"}
    env.update(COLUMNS="200", NO_COLOR="1", PYTHONWARNINGS="ignore")
    prefix = ["--db", db] if db is not None else []
    return subprocess.run([*COMMAND, *prefix, *args], capture_output=True, text=True, env=env,
                          cwd=cwd, input=stdin, timeout=120, check=False)


def ok(*args: str, db: str | None = None, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = cli(*args, db=db, **kwargs)
    assert result.returncode == 0, (result.returncode, result.stdout[-3000:], result.stderr)
    return result


def ok_json(*args: str, db: str | None = None) -> Any:
    return json.loads(ok(*args, "--json", db=db).stdout)
