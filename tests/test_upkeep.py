"""`optimize()` and `session-store cleanup --retention --optimize`, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time

from session_store import RetentionPolicy, SyncSessionStore
from session_store.store import SessionStore
from tests.kit import in_process


async def test_optimize_reclaims_and_leaves_a_working_store(store: SessionStore) -> None:
    for i in range(30):
        session = await store.create_session(app_name="a", user_id="u", session_id=f"s{i}")
        await store.add_message(session, "user", f"the blue kettle number {i} " * 40)
    for i in range(20):
        await store.delete_session(app_name="a", user_id="u", session_id=f"s{i}", purge=True)

    report = await store.optimize()
    assert report.backend == store.db.dialect.name and report.seconds >= 0
    assert report.bytes_before > 0 and report.bytes_after > 0
    if report.backend == "sqlite":
        assert [s.split()[0] for s in report.steps] == [
            "wal_checkpoint(TRUNCATE):", "fts5", "ANALYZE", "VACUUM", "wal_checkpoint(TRUNCATE):"]
        assert report.bytes_after < report.bytes_before  # the purged pages are gone
    else:
        assert {"VACUUM ANALYZE ss_events", "VACUUM ANALYZE ss_heads",
                "VACUUM ANALYZE ss_history", "VACUUM ANALYZE ss_analytics_models",
                "VACUUM ANALYZE ss_retention_sessions"} <= set(report.steps)

    found = await store.history.search("kettle", app_name="a")
    assert sorted(m.session_id for m in found) == sorted(f"s{i}" for i in range(20, 30))
    await store.add_message(("a", "u", "s25"), "user", "still writable")
    audit = await store.verify()
    assert audit.ok, audit.problems
    assert (await store.optimize()).backend == report.backend  # again: fine


def test_cleanup_applies_retention_and_optimizes(store_url: str) -> None:
    with SyncSessionStore(store_url) as store:
        for i in range(3):
            session = store.create_session(app_name="help", user_id="ann", session_id=f"s{i}")
            store.add_message(session, "user", f"question {i}")
        store.set_retention(app_name="help", policy=RetentionPolicy(archive_after=0.01))
    time.sleep(0.05)
    code, out, err = in_process("cleanup", "--retention", "--optimize", "--json", db=store_url)
    assert code == 0, err
    result = json.loads(out)
    assert result["expired"] == 0
    assert sorted(key[2] for key in result["retention"]["archived"]) == ["s0", "s1", "s2"]
    assert "VACUUM" in " ".join(result["optimize"]["steps"])
    code, out, _ = in_process("cleanup", "--retention", "--app", "help", db=store_url)
    assert code == 0 and "Retention: nothing is due" in out
    with SyncSessionStore(store_url) as store:
        assert {s.status for s in store.get_user_sessions(app_name="help", user_id="ann")} == {
            "archived"}
