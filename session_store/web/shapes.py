"""The JSON forms the API answers with, built from the store's own answers.

Summaries are the CLI's (`render.session_summary`, `Session.to_dict` without events). A
timeline entry is the event as the log holds it, in the form `session-store export`
writes (position, version, type, its payload whole, recorded_at, hash): msgspec encodes
the records as they are read, so a 2,000-event timeline costs about what reading it does,
and the page draws who, what, tool calls and results, tokens, latency and lifecycle events
from it.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from projections.analytics import Stats
from session_store.audit import Report
from session_store.cli import render
from session_store.domain.snapshot import Session


def summary(session: Session) -> dict[str, Any]:
    return render.session_summary(session)


def stats(row: Stats | None) -> dict[str, Any] | None:
    return None if row is None else msgspec.to_builtins(row)


def report(found: Report, seconds: float) -> dict[str, Any]:
    return {"ok": found.ok, "events": found.events, "streams": found.streams,
            "problems": list(found.problems), "seconds": seconds,
            "digest": None if found.digest is None else str(found.digest),
            "checked_at": time.time()}
