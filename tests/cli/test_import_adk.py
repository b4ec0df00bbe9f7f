"""`import-adk` on ADK session databases written by ADK's own services: the --json report
is the importer's, the store then holds ADK's sessions, and a second run imports nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from google.adk.sessions import BaseSessionService
from google.adk.sessions.database_session_service import DatabaseSessionService
from google.adk.sessions.sqlite_session_service import SqliteSessionService

from tests.adapters.test_adk_import import APP, fill
from tests.kit import ok, ok_json, terminal_stderr

SERVICES = {
    "SqliteSessionService": lambda path: SqliteSessionService(str(path)),
    "DatabaseSessionService (SQLite, JSON schema)":
        lambda path: DatabaseSessionService(f"sqlite+aiosqlite:///{path}"),
}


async def adk_database(path: Path, kind: str) -> dict[tuple[str, str], dict[str, Any]]:
    """An ADK database of three sessions written by ADK; ADK's state of each session."""
    service: BaseSessionService = SERVICES[kind](path)
    try:
        states = {}
        for user, sid in await fill(service):
            session = await service.get_session(app_name=APP, user_id=user, session_id=sid)
            assert session is not None
            states[user, sid] = {k: v for k, v in session.state.items()
                                 if not k.startswith("temp:")}
        return states
    finally:
        if isinstance(service, DatabaseSessionService):
            await service.close()


@pytest.mark.parametrize("kind", list(SERVICES))
async def test_import_adk_reports_and_a_second_run_imports_nothing(
        kind: str, store_url: str, tmp_path: Path) -> None:
    source = tmp_path / "adk.db"
    states = await adk_database(source, kind)
    report = ok_json("import-adk", str(source), db=store_url)
    assert report == {"source": kind, "sessions_found": 3, "sessions_created": 3,
                      "events_found": 6, "events_imported": 6, "skipped": [],
                      "state_fixes": report["state_fixes"], "seconds": report["seconds"]}
    assert report["seconds"] > 0
    listed = ok_json("sessions", "--app", APP, db=store_url)
    assert {(s["user_id"], s["id"]): s["state"] for s in listed} == states
    events = ok_json("audit", db=store_url)["events"]

    again = ok_json("import-adk", str(source), db=store_url)
    assert (again["sessions_found"], again["events_found"]) == (3, 6)
    assert (again["sessions_created"], again["events_imported"], again["state_fixes"],
            again["skipped"]) == (0, 0, 0, [])
    audit = ok_json("audit", db=store_url)
    assert (audit["ok"], audit["events"]) == (True, events)
    text = ok("import-adk", str(source), db=store_url).stdout
    assert f"({kind}): 0 new of 3 sessions, 0 new of 6 events" in " ".join(text.split())


async def test_import_adk_progress_counts_sessions_not_calls(tmp_path: Path) -> None:
    source = tmp_path / "adk.db"
    await adk_database(source, "SqliteSessionService")
    shown = terminal_stderr("import-adk", str(source), db=str(tmp_path / "store.db"))
    assert "importing sessions" in shown and "3/3" in shown, shown
    assert "4/" not in shown, shown  # the first call (0 done) is not a session
