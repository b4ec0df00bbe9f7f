"""Finds the PostgreSQL server the tests run against, or starts a throwaway one.

Order: `$SESSION_STORE_TEST_PG` (a server URL without database), then
127.0.0.1:5432 as user postgres, then a temporary cluster made with the
PostgreSQL binaries when they are installed. `None` when there is none.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time

DEFAULT = "postgresql://postgres@127.0.0.1:5432"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _binaries() -> str | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(candidate, "initdb")):
            return candidate
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(args: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return args
    return ["runuser", "-u", "postgres", "--", *args]


def _start_throwaway() -> str | None:
    bindir = _binaries()
    if bindir is None:
        return None
    root = tempfile.mkdtemp(prefix="session-store-pg-")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    data, port = os.path.join(root, "data"), _free_port()
    subprocess.run(_as_postgres([f"{bindir}/initdb", "-D", data, "-U", "postgres",
                                 "--auth=trust", "-E", "UTF8"]),
                   check=True, capture_output=True)
    subprocess.run(_as_postgres([f"{bindir}/pg_ctl", "-D", data, "-l", f"{root}/log", "-w",
                                 "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1",
                                 "start"]), check=True, capture_output=True)
    atexit.register(lambda: subprocess.run(
        _as_postgres([f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "stop"]),
        capture_output=True))
    deadline = time.monotonic() + 30
    while not _reachable("127.0.0.1", port) and time.monotonic() < deadline:
        time.sleep(0.2)
    return f"postgresql://postgres@127.0.0.1:{port}"


def find_server() -> str | None:
    explicit = os.environ.get("SESSION_STORE_TEST_PG")
    if explicit:
        return explicit
    if _reachable("127.0.0.1", 5432):
        return DEFAULT
    return _start_throwaway()
