"""`audit` exits 1 with a clear report when the log or a projection was tampered with,
and `rebuild` repairs a tampered projection (the log is the truth)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from session_store.storage.codec import decode_head, encode_head
from session_store.storage.database import resolve_url
from tests.kit import SMALL_DEMO, cli, ok, ok_json

_DROP_TRIGGERS = {
    "sqlite": ["DROP TRIGGER ss_events_no_update", "DROP TRIGGER ss_events_no_delete"],
    "postgresql": ["DROP TRIGGER ss_events_no_change ON ss_events"],
}


async def _execute(url: str, statements: list[tuple[str, dict[str, Any]]]) -> None:
    engine = create_async_engine(resolve_url(url))
    try:
        async with engine.begin() as conn:
            for statement, params in statements:
                await conn.execute(sa.text(statement), params)
    finally:
        await engine.dispose()


async def _fetch(url: str, statement: str) -> list[Any]:
    engine = create_async_engine(resolve_url(url))
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(sa.text(statement))).all())
    finally:
        await engine.dispose()


def _failed(url: str) -> dict[str, Any]:
    result = cli("audit", "--json", db=url)
    assert result.returncode == 1, (result.stdout, result.stderr)
    report: dict[str, Any] = json.loads(result.stdout)
    assert report["ok"] is False and report["problems"]
    text = cli("audit", db=url)
    assert text.returncode == 1 and "FAILED" in text.stdout
    assert "Traceback" not in text.stderr
    return report


@pytest.mark.parametrize("tampering", ["edit", "delete"])
async def test_audit_fails_on_a_tampered_log(store_url: str, backend: str,
                                             tampering: str) -> None:
    ok(*SMALL_DEMO, db=store_url)
    position, data = (await _fetch(store_url, "SELECT position, data FROM ss_events WHERE "
                                              "type = 'MessageAppended' ORDER BY position "
                                              "LIMIT 1"))[0]
    drops = [(statement, {}) for statement in _DROP_TRIGGERS[backend]]
    if tampering == "edit":
        payload = json.loads(bytes(data))
        payload["message"]["text"] = "I never said that"
        change = ("UPDATE ss_events SET data = :data WHERE position = :position",
                  {"data": json.dumps(payload).encode(), "position": position})
    else:
        change = ("DELETE FROM ss_events WHERE position = :position", {"position": position})
    await _execute(store_url, [*drops, change])
    report = _failed(store_url)
    problems = " ".join(report["problems"])
    if tampering == "edit":
        assert "hash does not match" in problems and f"position {position}" in problems
    else:
        assert "follows" in problems  # a version gap


async def test_audit_fails_on_altered_projection_rows_and_rebuild_repairs_them(
        store_url: str) -> None:
    ok(*SMALL_DEMO, db=store_url)
    listed = ok_json("sessions", "--status", "active", db=store_url)
    target = listed[0]
    (body,) = (await _fetch(store_url, f"SELECT body FROM ss_heads WHERE session_id = "
                                       f"'{target['id']}'"))[0]
    head = decode_head(bytes(body))
    head.state = {**head.state, "approved": True}
    await _execute(store_url, [("UPDATE ss_heads SET body = :body, status = 'ended' "
                                "WHERE session_id = :sid",
                                {"body": encode_head(head), "sid": target["id"]})])
    report = _failed(store_url)
    assert any(target["id"] in problem for problem in report["problems"]), report

    rebuilt = ok_json("rebuild", db=store_url)
    assert rebuilt["events"] > 0
    assert ok_json("audit", db=store_url)["ok"] is True
    assert ok_json("sessions", db=store_url) == ok_json("sessions", db=store_url)
    again = {r["id"]: r for r in ok_json("sessions", db=store_url)}
    assert again[target["id"]]["state"] == target["state"]
    assert again[target["id"]]["status"] == "active"


async def test_digest_then_audit_digest_catches_what_only_an_anchor_can(
        store_url: str, backend: str) -> None:
    ok(*SMALL_DEMO, db=store_url)
    printed = ok("digest", db=store_url).stdout.strip().splitlines()
    digest = printed[-1]
    position = int(digest.split(":")[0])
    assert position > 0 and len(digest.split(":")[1]) == 64
    assert ok_json("digest", db=store_url)["digest"] == digest
    assert ok_json("audit", "--digest", digest, db=store_url)["ok"] is True

    # The attacker removes the last event and its bookkeeping, then rebuilds: nothing in
    # the database disagrees any more, but the log no longer extends the digest.
    (app, user, session, version), = await _fetch(
        store_url, "SELECT app_name, user_id, session_id, version FROM ss_events "
                   f"WHERE position = {position}")
    (previous,), = await _fetch(store_url, "SELECT hash FROM ss_events WHERE session_id = "
                                           f"'{session}' AND version = {version - 1}")
    drops = [(statement, {}) for statement in _DROP_TRIGGERS[backend]]
    await _execute(store_url, [*drops, (f"DELETE FROM ss_events WHERE position = {position}",
                                        {}),
                               ("UPDATE ss_streams SET version = :v, hash = :h WHERE "
                                "session_id = :s", {"v": version - 1, "h": previous,
                                                    "s": session})])
    ok("rebuild", db=store_url)
    report = cli("audit", "--json", "--digest", digest, db=store_url)
    assert report.returncode == 1, (report.stdout, report.stderr)
    assert any("removed from its end" in p for p in json.loads(report.stdout)["problems"])
    wrong = cli("audit", "--digest", "not-a-digest", db=store_url)
    assert wrong.returncode == 2 and "not a log digest" in wrong.stderr


async def test_audit_reports_an_undecodable_payload_with_exit_1(store_url: str,
                                                                backend: str) -> None:
    ok(*SMALL_DEMO, db=store_url)
    (position,), = await _fetch(store_url, "SELECT max(position) FROM ss_events WHERE "
                                           "type = 'MessageAppended'")
    drops = [(statement, {}) for statement in _DROP_TRIGGERS[backend]]
    await _execute(store_url, [*drops, ("UPDATE ss_events SET data = :d WHERE position = :p",
                                        {"d": b"{broken", "p": position})])
    report = _failed(store_url)
    assert any(f"position {position}" in p and "does not decode" in p
               for p in report["problems"]), report
