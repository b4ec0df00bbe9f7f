"""`session-store export --format json|jsonl` and `import` go through the library's
export_session / import_events: times kept, a second import adds nothing."""

from __future__ import annotations

import json
from pathlib import Path

from session_store import SyncSessionStore
from tests.kit import in_process


def test_cli_export_and_import_keep_times(tmp_path: Path) -> None:
    source, target = str(tmp_path / "a.db"), str(tmp_path / "b.db")
    with SyncSessionStore(source) as store:
        session = store.create_session(app_name="app", user_id="u", session_id="s")
        store.add_message(session, "user", "hello", metadata={"k": 1})
        original = store.get_session(app_name="app", user_id="u", session_id="s")
    assert original is not None
    for form in ("json", "jsonl"):
        out = tmp_path / f"s.{form}"
        code, _, err = in_process("export", "s", "--format", form, "-o", str(out), db=source)
        assert code == 0, err
        if form == "json":
            assert json.loads(out.read_text())["format"] == "session-store/session"
        code, text, err = in_process("--json", "import", str(out), db=target)
        assert code == 0, err
        assert json.loads(text)["added"] == (2 if form == "json" else 0)
    with SyncSessionStore(target) as store:
        copy = store.get_session(app_name="app", user_id="u", session_id="s")
    assert copy is not None
    assert (copy.created_at, copy.last_update_time) == (original.created_at,
                                                        original.last_update_time)
    assert copy.messages[0].metadata == {"k": 1}
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{}\n")
    code, _, err = in_process("import", str(bad), db=target)
    assert code == 2 and "bad.jsonl:1" in err
