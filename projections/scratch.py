"""Scratch tables of rebuilds and verifies: registered while their pass runs, swept by the
next pass once their owner is gone.

A pass (`projections.rebuild`) folds the log into fresh tables named with a suffix
(`_rb…` for a rebuild, `_vf…` for a verify). It registers the suffix in `ss_scratch`
(host, process id, start time) in the transaction that creates the tables, and
unregisters it in the one that swaps or drops them; a killed pass leaves both behind.
Every pass first sweeps: a registered suffix whose process is gone (same host), or
that is older than `STALE_SECONDS` (another host, where a process id means nothing),
and any suffixed table nobody registered (left by a release before this one), are
dropped. A pass that is still running elsewhere keeps its tables.
"""

from __future__ import annotations

import os
import re
import socket
import time

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Connection

log = structlog.get_logger(__name__)

STALE_SECONDS = 24 * 3600.0
"""A pass registered from another host this long ago is taken as dead."""
SUFFIX = re.compile(r"_(?:rb|vf)[0-9a-f]{10}(?=_|$)")
"""What a pass's suffix looks like inside a table name (`projections.rebuild`)."""

_metadata = sa.MetaData()
scratch = sa.Table(
    "ss_scratch", _metadata,
    sa.Column("suffix", sa.String, primary_key=True),
    sa.Column("host", sa.String, nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started_at", sa.Float(precision=53), nullable=False),
)


def register(conn: Connection, suffix: str) -> None:
    """Record that this process's pass owns the tables named with `suffix`."""
    _metadata.create_all(conn)
    conn.execute(scratch.insert().values(suffix=suffix, host=socket.gethostname(),
                                         pid=os.getpid(), started_at=time.time()))


def forget(conn: Connection, suffix: str) -> None:
    """The pass's tables are gone (swapped in or dropped) in this transaction."""
    conn.execute(scratch.delete().where(scratch.c.suffix == suffix))


def sweep(conn: Connection) -> list[str]:
    """Drop the tables of passes that are no longer running; returns their suffixes."""
    _metadata.create_all(conn)
    owners = {suffix: (host, pid, started) for suffix, host, pid, started in
              conn.execute(sa.select(scratch.c.suffix, scratch.c.host, scratch.c.pid,
                                     scratch.c.started_at))}
    tables: dict[str, list[str]] = {}
    for name in sa.inspect(conn).get_table_names():
        found = SUFFIX.search(name)
        if found is not None:
            tables.setdefault(found[0], []).append(name)
    dead = [suffix for suffix in {*owners, *tables}
            if suffix not in owners or _gone(*owners[suffix])]
    for suffix in dead:
        # Shortest first: a full-text table drops its own shadow tables (`…_data`) with it.
        for name in sorted(tables.get(suffix, []), key=len):
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
        forget(conn, suffix)
    if dead:
        log.warning("projections.scratch_swept", suffixes=sorted(dead))
    return dead


def _gone(host: str, pid: int, started_at: float) -> bool:
    if host != socket.gethostname():
        return time.time() - started_at > STALE_SECONDS
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
