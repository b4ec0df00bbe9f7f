"""`rebuild` leaves every read model as it was; `export` | `import` round-trips a session
into another store (on either backend), and importing twice changes nothing."""

from __future__ import annotations

from pathlib import Path

from tests.kit import SMALL_DEMO, ok, ok_json


def test_rebuild_changes_nothing_visible(store_url: str) -> None:
    ok(*SMALL_DEMO, db=store_url)
    before = ok_json("sessions", db=store_url)
    result = ok_json("rebuild", db=store_url)
    assert result["events"] > 0 and result["events_per_second"] > 0
    assert ok_json("sessions", db=store_url) == before
    assert set(result["projections"]) >= {"heads", "history", "users", "analytics"}
    assert ok_json("audit", db=store_url)["ok"] is True
    one = ok_json("rebuild", "--projection", "heads", db=store_url)
    assert one["projections"] == ["heads"]
    text = ok("rebuild", db=store_url).stdout
    assert "events/s" in text


def test_export_import_round_trip(demo_url: str, store_url: str, tmp_path: Path) -> None:
    rows = ok_json("sessions", db=demo_url)
    chosen = [r for r in rows if r["status"] in ("active", "archived")][:2]
    exported = tmp_path / "export.jsonl"
    with exported.open("w") as out:
        for row in chosen:
            out.write(ok("export", row["id"], db=demo_url).stdout)
    counted = len(exported.read_text().splitlines())
    result = ok_json("import", str(exported), db=store_url)
    assert result["sessions"] == 2 and result["events"] == counted
    assert (result["added"], result["present"], result["sessions_added"]) == (counted, 0, 2)
    for row in chosen:
        original = ok_json("replay", row["id"], db=demo_url)
        copied = ok_json("replay", row["id"], db=store_url)
        assert copied["session"]["state"] == original["session"]["state"]
        assert copied["session"]["status"] == original["session"]["status"]
        # Everything but the duration, which is measured on the importing log's clock.
        assert {**copied["statistics"], "duration": 0} == {**original["statistics"],
                                                           "duration": 0}
        strip = [{k: v for k, v in t.items() if k != "recorded_at"} for t in
                 original["timeline"]]
        assert [{k: v for k, v in t.items() if k != "recorded_at"}
                for t in copied["timeline"]] == strip
    audit = ok_json("audit", db=store_url)
    assert audit["ok"] is True
    digest = ok_json("digest", db=store_url)["digest"]
    again = ok_json("import", str(exported), db=store_url)  # again: a no-op
    assert (again["added"], again["present"], again["sessions_added"]) == (0, counted, 0)
    assert ok("import", str(exported), db=store_url).stdout.startswith(
        f"Imported {exported}: 0 events added, {counted:,} already present")
    assert ok_json("audit", db=store_url)["events"] == audit["events"]
    assert ok_json("digest", db=store_url)["digest"] == digest


def test_import_into_the_store_it_was_exported_from_adds_nothing(
        store_url: str, tmp_path: Path) -> None:
    ok(*SMALL_DEMO, db=store_url)
    row = next(r for r in ok_json("sessions", db=store_url) if r["status"] == "active")
    exported = tmp_path / "s.jsonl"
    ok("export", row["id"], "-o", str(exported), db=store_url)
    counted = len(exported.read_text().splitlines())
    digest = ok_json("digest", db=store_url)["digest"]
    result = ok_json("import", str(exported), db=store_url)
    assert (result["events"], result["added"], result["present"]) == (counted, 0, counted)
    assert ok_json("digest", db=store_url)["digest"] == digest
    assert ok_json("audit", db=store_url)["ok"] is True
