"""`show`, `search`, `delete`, `cleanup`, `tail`, `sessions` paging and `--version`: each
through the real console script once per backend (exit code, --json checked against the
store), the rest of their logic in-process."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from session_store import SyncSessionStore
from tests.kit import COMMAND, _env, cli, in_process, ok, ok_json


def _store_with_sessions(url: str) -> None:
    with SyncSessionStore(url) as store:
        for i in range(3):
            session = store.create_session(app_name="help" if i else "alpha", user_id="ann",
                                           session_id=f"s-{i}")
            store.add_message(session, "user", f"Where is parcel {i}? The blue kettle.")
            store.add_message(session, "assistant", "It left Oslo this morning " * 8,
                              state_delta={"step": i})
        store.create_session(app_name="help", user_id="bob", session_id="idle", timeout=0.05)


def test_every_new_command_through_the_console_script(store_url: str) -> None:
    _store_with_sessions(store_url)
    assert ok("--version").stdout.startswith("session-store ")

    shown = ok_json("show", "s-1", db=store_url)
    assert shown["session"]["id"] == "s-1" and len(shown["messages"]) == 2
    markdown = ok("show", "s-1", db=store_url).stdout  # piped: Markdown, every word whole
    assert markdown.startswith("# help / ann / s-1") and "It left Oslo this morning " * 8 \
        in markdown.replace("\n", " ")

    found = ok_json("search", "kettle", "--role", "user", db=store_url)
    assert sorted(m["session_id"] for m in found) == ["s-0", "s-1", "s-2"]
    assert ok_json("search", "kettle", "--app", "alpha", db=store_url)[0]["session_id"] == "s-0"

    first = cli("sessions", "--limit", "2", "--json", db=store_url)
    assert first.returncode == 0 and len(json.loads(first.stdout)) == 2
    cursor = first.stderr.strip().split("--cursor ")[1]
    rest = ok_json("sessions", "--limit", "2", "--cursor", cursor, db=store_url)
    every = ok_json("sessions", "--all", db=store_url)
    assert [r["id"] for r in json.loads(first.stdout) + rest] == [r["id"] for r in every]
    assert len(every) == 4

    time.sleep(0.1)  # `idle` passes its 50 ms timeout
    assert ok_json("cleanup", db=store_url) == {"expired": 1}
    deleted = ok_json("delete", "s-2", "--purge", db=store_url)
    assert deleted == {"app_name": "help", "user_id": "ann", "session_id": "s-2",
                       "purged": True}
    with SyncSessionStore(store_url) as store:
        assert store.get_session(app_name="help", user_id="ann", session_id="s-2") is None
        idle = store.get_session(app_name="help", user_id="bob", session_id="idle")
        assert idle is not None and idle.status == "expired"
        records = store.read_all()
    lines = ok("tail", "--from-position", "1", "--limit", "5", "--json", db=store_url).stdout
    tailed = [json.loads(line) for line in lines.splitlines()]
    assert [t["position"] for t in tailed] == [r.position for r in records[:5]]
    assert [t["event_id"] for t in tailed] == [r.event_id for r in records[:5]]


def test_tail_follows_what_another_process_appends(tmp_path: Path) -> None:
    url = str(tmp_path / "s.db")
    _store_with_sessions(url)
    follower = subprocess.Popen([*COMMAND, "--db", url, "tail", "--from-now", "--limit", "1",
                                 "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=_env())
    try:
        with SyncSessionStore(url) as store:
            deadline = time.monotonic() + 60
            while follower.poll() is None and time.monotonic() < deadline:
                store.add_message(("help", "ann", "s-1"), "user", "still there?")
                time.sleep(0.3)
        out, err = follower.communicate(timeout=60)
    finally:
        follower.kill()
    assert follower.returncode == 0, err
    event = json.loads(out.splitlines()[0])
    assert event["type"] == "MessageAppended" and event["session_id"] == "s-1"


def test_tail_interrupted_says_where_to_resume(tmp_path: Path) -> None:
    url = str(tmp_path / "s.db")
    _store_with_sessions(url)
    follower = subprocess.Popen([*COMMAND, "--db", url, "tail", "--from-position", "3"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=_env())
    try:
        assert follower.stdout is not None
        shown = [follower.stdout.readline() for _ in range(2)]  # positions 3 and 4
        follower.send_signal(signal.SIGINT)
        out, err = follower.communicate(timeout=60)
    finally:
        follower.kill()
    assert follower.returncode == 130, err
    assert [int(text.split()[0]) for text in shown] == [3, 4]
    last = int((shown + out.splitlines())[-1].split()[0])
    assert f"resume with `session-store tail --from-position {last + 1}`" in err


def test_sessions_pages_in_process(tmp_path: Path) -> None:
    url = str(tmp_path / "s.db")
    _store_with_sessions(url)
    code, out, _ = in_process("sessions", "--limit", "3", db=url, width=80)
    assert code == 0 and "More: session-store sessions --cursor " in out
    cursor = out.split("--cursor ")[1].split()[0]
    code, rest, _ = in_process("sessions", "--cursor", cursor, db=url, width=80)
    assert code == 0 and "More:" not in rest
    assert in_process("sessions", "--limit", "-1", db=url)[0] == 2
    assert in_process("sessions", "--limit", "x", db=url)[0] == 2
    assert in_process("sessions", "--cursor", "nonsense", db=url)[0] == 2


def test_show_formats(tmp_path: Path) -> None:
    url = str(tmp_path / "s.db")
    _store_with_sessions(url)
    code, text, _ = in_process("show", "s-0", "--format", "text", db=url, width=80)
    assert code == 0 and "Where is parcel 0? The blue kettle." in text
    code, data, _ = in_process("show", "s-0", "--format", "json", db=url)
    document: dict[str, Any] = json.loads(data)
    assert [m["role"] for m in document["messages"]] == ["user", "assistant"]
    assert in_process("show", "nope", db=url)[0] == 2
    code, none, _ = in_process("search", "zebra", db=url)
    assert code == 0 and "No message contains" in none
    assert in_process("search", "kettle", "--since", "yesterday", db=url)[0] == 2
    code, recent, _ = in_process("search", "kettle", "--since", "2020-01-01", "--json", db=url)
    assert code == 0 and len(json.loads(recent)) == 3
