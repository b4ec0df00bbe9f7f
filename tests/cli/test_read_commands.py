"""`sessions`, `replay`, `audit`, `export` against a demo database."""

from __future__ import annotations

import json
from typing import Any

from session_store import SessionKey, open_store
from session_store.domain.events import InteractionTracked, MessageAppended
from tests.kit import cli, ok, ok_json


async def test_sessions_json_matches_the_store(demo_url: str) -> None:
    listed = ok_json("sessions", db=demo_url)
    assert len(listed) == 6  # seven written, one deleted
    async with open_store(demo_url) as store:
        for row in listed:
            session = await store.get_session(app_name=row["app_name"], user_id=row["user_id"],
                                              session_id=row["id"])
            assert session is not None
            assert (session.status, session.version, dict(session.metadata)) == (
                row["status"], row["version"], row["metadata"])
        app, user = listed[0]["app_name"], listed[0]["user_id"]
        page = await store.list_sessions(app_name=app, user_id=user)
    filtered = ok_json("sessions", "--app", app, "--user", user, db=demo_url)
    assert {r["id"] for r in filtered} == {s.id for s in page.sessions}
    archived = ok_json("sessions", "--status", "archived", db=demo_url)
    assert [r["status"] for r in archived] == ["archived"]
    assert ok_json("sessions", "--app", "no-such-app", db=demo_url) == []
    table = ok("sessions", db=demo_url).stdout
    assert all(row["id"] in table for row in listed)


def _active(demo_url: str) -> dict[str, Any]:
    rows: list[dict[str, Any]] = ok_json("sessions", "--status", "active", db=demo_url)
    return rows[0]


async def test_replay_matches_the_log(demo_url: str) -> None:
    row = _active(demo_url)
    key = SessionKey(row["app_name"], row["user_id"], row["id"])
    replay = ok_json("replay", row["id"], db=demo_url)
    async with open_store(demo_url) as store:
        records = [r async for r in store.read_stream(key)]
        folded = await store.replay(key)
        then = await store.get_session(app_name=key.app_name, user_id=key.user_id,
                                       session_id=key.session_id, at_version=4)
    assert replay["session"]["state"] == dict(folded.state)
    assert [t["version"] for t in replay["timeline"]] == [r.version for r in records]
    assert [t["type"] for t in replay["timeline"]] == [r.type for r in records]
    messages = [r.data.message for r in records if isinstance(r.data, MessageAppended)]
    tracked = [r.data for r in records if isinstance(r.data, InteractionTracked)]
    tokens = sum(m.usage.tokens_in for m in messages if m.usage) + sum(
        t.tokens_in for t in tracked)
    assert replay["statistics"]["tokens_in"] == tokens
    assert replay["statistics"]["messages"] == len(messages)

    old = ok_json("replay", row["id"], "--to-version", "4", db=demo_url)
    assert then is not None
    assert old["session"]["version"] == 4 and len(old["timeline"]) == 4
    assert old["session"]["state"] == dict(then.state)

    text = ok("replay", row["id"], "--app", key.app_name, "--user", key.user_id,
              db=demo_url).stdout
    first_prompt = messages[0].text
    assert first_prompt is not None and first_prompt[:30] in " ".join(text.split())
    assert "tokens in" in text and "ms" in text and "State at v" in text


def test_audit_passes_on_a_clean_log(demo_url: str) -> None:
    for command in ("audit", "verify"):
        report = ok_json(command, db=demo_url)
        assert report["ok"] is True and report["problems"] == []
        assert report["events"] > 0
    assert "integrity OK" in ok("audit", db=demo_url).stdout
    one = ok_json("audit", _active(demo_url)["id"], db=demo_url)
    assert one["ok"] and one["streams"] == 1


async def test_export_is_the_stream_as_json_lines(demo_url: str) -> None:
    row = _active(demo_url)
    lines = ok("export", row["id"], db=demo_url).stdout.splitlines()
    exported = [json.loads(line) for line in lines]
    async with open_store(demo_url) as store:
        records = [r async for r in store.read_stream(
            SessionKey(row["app_name"], row["user_id"], row["id"]))]
    assert [e["event_id"] for e in exported] == [r.event_id for r in records]
    assert [e["data"]["type"] for e in exported] == [r.type for r in records]
    assert all(e["hash"] == r.hash for e, r in zip(exported, records, strict=True))


def test_log_lines_are_json_with_log_format_json(demo_url: str, tmp_path: Any) -> None:
    result = cli("--log-format", "json", "-v", "export", _active(demo_url)["id"], "-o",
                 str(tmp_path / "out.jsonl"), db=demo_url)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert any(line.get("event") == "exported" for line in lines)
