"""Errors a user can act on: one line on stderr saying what and what to do, exit 2,
no traceback unless --debug."""

from __future__ import annotations

from pathlib import Path

import pytest

from session_store import SyncSessionStore
from tests.conftest import require_pg
from tests.kit import cli, ok, ok_json


def _refused(result_args: tuple[str, ...], db: str | None, *expected: str,
             cwd: Path | None = None) -> str:
    result = cli(*result_args, db=db, cwd=cwd)
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in expected:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.mark.parametrize("args", [("sessions",), ("replay", "x"), ("audit",), ("rebuild",),
                                  ("analytics",), ("export", "x")])
def test_a_missing_database_file_is_reported_not_created(tmp_path: Path,
                                                         args: tuple[str, ...]) -> None:
    missing = tmp_path / "nope.db"
    _refused(args, str(missing), "no database at", "session-store demo")
    assert not missing.exists()


def test_default_database_is_sessions_db_in_the_working_directory(tmp_path: Path) -> None:
    _refused(("sessions",), None, "sessions.db", cwd=tmp_path)


def test_wrong_urls_and_refusing_servers(tmp_path: Path) -> None:
    _refused(("sessions",), "mysql://me@host/db", "unsupported database", "--db")
    _refused(("sessions",), str(tmp_path / "no-dir" / "x.db"), "no database")
    _refused(("sessions",), "postgresql://postgres@127.0.0.1:1/x", "127.0.0.1:1", "--db")


def test_postgresql_refusing_a_database_or_user() -> None:
    server = require_pg()
    _refused(("sessions",), f"{server}/no_such_database_here", "PostgreSQL",
             "does not exist", "--db")
    host = server.split("@", 1)[1]
    _refused(("sessions",), f"postgresql://no_such_role_here@{host}/postgres", "PostgreSQL",
             "no_such_role_here")


def test_unknown_and_ambiguous_sessions(tmp_path: Path) -> None:
    db = str(tmp_path / "s.db")
    with SyncSessionStore(db) as store:
        store.create_session(app_name="a", user_id="u1", session_id="same")
        store.create_session(app_name="a", user_id="u2", session_id="same")
        store.create_session(app_name="a", user_id="u3", session_id="gone")
        store.delete_session(app_name="a", user_id="u3", session_id="gone")
    _refused(("replay", "nothing"), db, "no session 'nothing'", "session-store sessions")
    _refused(("replay", "gone"), db, "no session 'gone'")
    _refused(("export", "same"), db, "--app", "--user", "a/u1", "a/u2")
    _refused(("replay", "same", "--user", "u9"), db, "of user 'u9'")
    replay = ok_json("replay", "same", "--app", "a", "--user", "u2", db=db)
    assert replay["session"]["user_id"] == "u2"
    _refused(("replay", "same", "--user", "u1", "--to-version", "0"), db, "--to-version")
    debug = cli("--debug", "replay", "nothing", db=db)
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_bad_input_files_and_flags(tmp_path: Path) -> None:
    db = str(tmp_path / "s.db")
    _refused(("import", str(tmp_path / "missing.jsonl")), db, "no file", "export")
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text('{"not": "an event"}\n')
    _refused(("import", str(garbage)), db, "garbage.jsonl:1", "not an exported event")
    _refused(("demo", "--users", "0"), db, "--users")
    usage = cli("frobnicate", db=db)
    assert usage.returncode == 2 and "invalid choice" in usage.stderr


def test_help_and_options_after_the_command(tmp_path: Path) -> None:
    assert "replay" in ok("--help").stdout
    db = str(tmp_path / "s.db")
    with SyncSessionStore(db) as store:
        store.create_session(app_name="a", user_id="u", session_id="s1")
    result = ok("sessions", "--json", "--db", db)
    assert '"s1"' in result.stdout
