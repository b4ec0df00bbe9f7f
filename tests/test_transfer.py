"""Export and import in the API, lossless: every original time kept, only what is missing
added, into any store (the one it came from included); Session.from_dict."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from session_store import Event, Session, Usage
from session_store.errors import InvalidEvent, SessionNotFound
from session_store.store import SessionStore, open_store

KEY = {"app_name": "app", "user_id": "u", "session_id": "s"}


async def _conversation(store: SessionStore) -> Session:
    session = await store.create_session(**KEY, state={"city": "Oslo"}, tags=["t"],
                                         metadata={"m": 1}, timeout=3600)
    await store.append_event(session, Event(role="user", text="hello", timestamp=1_000.0,
                                            metadata={"k": "v"},
                                            state_delta={"user:home": "Oslo", "n": 1}))
    await store.append_event(session, Event(role="assistant", text="hi", timestamp=1_001.0,
                                            usage=Usage(tokens_in=3, tokens_out=4),
                                            response_time=0.5))
    await store.track_interaction(session, tokens_in=1, response_time=2.0)
    found = await store.get_session(**KEY)
    assert found is not None
    return found


def _facts(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What a lossless copy keeps: everything but this log's own position, hash, anchor."""
    return [(r["version"], r["type"], r["event_id"], r["recorded_at"],
             json.dumps(r["data"], sort_keys=True)) for r in records]


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


async def test_export_then_import_anywhere_keeps_every_time(store: SessionStore,
                                                           tmp_path: Path) -> None:
    original = await _conversation(store)
    lines = await store.export_session(**KEY)
    document = await store.export_session(**KEY, format="json")
    exported = _lines(lines)
    assert len(exported) == original.version == 4
    parsed = json.loads(document)
    assert parsed["format"] == "session-store/session"
    assert _facts(parsed["events"]) == _facts(exported)
    assert parsed["session"]["created_at"] == original.created_at
    assert parsed["session"]["expires_at"] == original.expires_at

    # into the store it came from: nothing is missing, nothing is added
    again = await store.import_events(lines)
    assert (again.events, again.added, again.present, again.sessions_added) == (4, 0, 4, 0)
    assert (await store.import_events(document)).added == 0

    for source in (lines, document.encode(), parsed, [parsed]):
        async with open_store(str(tmp_path / f"copy-{type(source).__name__}.db")) as other:
            report = await other.import_events(source)
            assert (report.added, report.sessions_added) == (4, 1)
            copy = await other.get_session(**KEY)
            assert copy is not None
            for field in ("created_at", "last_update_time", "expires_at", "version", "status",
                          "tags"):
                assert getattr(copy, field) == getattr(original, field), field
            assert dict(copy.state) == dict(original.state) == {"city": "Oslo", "n": 1,
                                                                 "user:home": "Oslo"}
            assert [e.recorded_at for e in copy.events] == [e.recorded_at
                                                             for e in original.events]
            assert [m.metadata for m in copy.messages] == [{"k": "v"}, {}]
            assert copy.statistics() == original.statistics()
            assert _facts(_lines(await other.export_session(**KEY))) == _facts(exported)
            assert (await other.verify()).ok  # a new chain, over the original times
            assert (await other.import_events(lines)).added == 0


async def test_import_adds_only_what_is_missing(store: SessionStore, tmp_path: Path) -> None:
    await _conversation(store)
    early = await store.export_session(**KEY)
    await store.add_message(KEY_TUPLE, "user", "later")
    late = await store.export_session(**KEY)
    async with open_store(str(tmp_path / "other.db")) as other:
        assert (await other.import_events(early)).added == 4
        report = await other.import_events(late)
        assert (report.events, report.added, report.present) == (5, 1, 4)
        copy = await other.get_session(**KEY)
        original = await store.get_session(**KEY)
        assert copy is not None and original is not None
        assert copy.last_update_time == original.last_update_time


KEY_TUPLE = ("app", "u", "s")


async def test_bad_exports_are_refused_and_write_nothing(store: SessionStore) -> None:
    with pytest.raises(SessionNotFound):
        await store.export_session(**KEY)
    with pytest.raises(InvalidEvent):
        await store.export_session(**KEY, format="xml")
    for bad in ("not json", '{"format": "other", "events": []}', b"\xff\xfe", 42, [1],
                '{"position": 1}', "\udc80"):
        with pytest.raises(InvalidEvent):
            await store.import_events(bad)
    assert await store.count_events() == 0


async def test_session_from_dict_is_the_inverse_of_to_dict(store: SessionStore) -> None:
    session = await _conversation(store)
    data = session.to_dict()
    again = Session.from_dict(json.loads(json.dumps(data)))
    assert again == session
    assert again.to_dict() == data
    assert again.statistics() == session.statistics()
    summary = (await store.list_sessions(app_name="app")).sessions[0]
    assert Session.from_dict(summary.to_dict()) == summary
    for bad in ({}, {**data, "version": "x"}, {**data, "covers": "all"}, [data],
                {**data, "events": [{"nope": 1}]}):
        with pytest.raises(InvalidEvent):
            Session.from_dict(bad)  # type: ignore[arg-type]
    assert msgspec.json.decode(msgspec.json.encode(data)) == data
