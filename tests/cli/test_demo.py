"""`demo`: what it reports matches what the store holds; the mock model is deterministic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from session_store import open_store
from session_store.domain.events import MessageAppended
from tests.kit import SMALL_DEMO, ok, ok_json


async def test_demo_writes_what_it_reports(demo_url: str, demo_summary: dict[str, Any]) -> None:
    summary = demo_summary
    assert summary["verify"]["ok"] is True, summary["verify"]
    fates = summary["fates"]
    assert sorted(fates.values()) == ["archived", "deleted", "ended", "expired"]
    async with open_store(demo_url) as store:
        records = [r async for r in store.read_all()]
        assert len(records) == summary["events_written"]
        assert summary["verify"]["events"] == len(records)
        by_id = {s["id"]: s for s in summary["sessions"]}
        for session_id, fate in fates.items():
            owner = next(r.key for r in records if r.session_id == session_id)
            session = await store.get_session(app_name=owner.app_name, user_id=owner.user_id,
                                              session_id=session_id)
            if fate == "deleted":
                assert session is None and session_id not in by_id
            else:
                assert session is not None and session.status == fate == by_id[session_id][
                    "status"]
        for listed in summary["sessions"]:
            session = await store.get_session(app_name=listed["app_name"],
                                              user_id=listed["user_id"],
                                              session_id=listed["id"])
            assert session is not None
            assert session.version == listed["version"]
            assert dict(session.state) == listed["state"]
    messages = [r.data.message for r in records if isinstance(r.data, MessageAppended)]
    roles = {m.role for m in messages}
    assert roles == {"user", "assistant", "tool"}
    assert any(m.parts and "function_call" in m.parts[0] for m in messages)
    assert all(m.usage is not None and m.response_time is not None
               for m in messages if m.role == "assistant")
    assert any(m.state_delta and any(k.startswith("user:") for k in m.state_delta)
               for m in messages)
    assert not any(m.state_delta and any(k.startswith("temp:") for k in m.state_delta)
                   for m in messages), "temp: keys must never reach the log"
    scopes = {(r.user_id == "", r.session_id == "") for r in records}
    assert (True, True) in scopes and (False, True) in scopes  # app: and user: state streams
    apps = {r.app_name for r in records}
    users = {r.user_id for r in records if r.user_id}
    assert len(apps) == 3 and len(users) == 3


def test_same_seed_same_conversations(tmp_path: Path) -> None:
    def texts(db: str) -> list[list[str]]:
        summary = ok_json(*SMALL_DEMO, "--seed", "11", db=db)
        ids = sorted(s["id"] for s in summary["sessions"])
        conversations = []
        for session_id in ids:
            replay = ok_json("replay", session_id, db=db)
            conversations.append([row["what"] for row in replay["timeline"]
                                  if "role" in row])
        return conversations

    assert texts(str(tmp_path / "a.db")) == texts(str(tmp_path / "b.db"))


def test_demo_text_output_shows_everything(tmp_path: Path) -> None:
    result = ok(*SMALL_DEMO, db=str(tmp_path / "s.db"))
    for heading in ("Sessions per user", "One conversation, replayed", "Analytics by app",
                    "Response time distribution", "integrity OK"):
        assert heading in result.stdout, heading
    assert "Traceback" not in result.stderr
