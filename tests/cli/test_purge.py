"""`purge --user U --app A` forgets a user: their sessions are gone from every listing,
the audit still passes, and purging again has nothing left to do."""

from __future__ import annotations

from tests.kit import SMALL_DEMO, cli, ok, ok_json


def test_purge_forgets_a_user_and_the_audit_still_passes(store_url: str) -> None:
    ok(*SMALL_DEMO, db=store_url)
    rows = ok_json("sessions", db=store_url)
    app, user = rows[0]["app_name"], rows[0]["user_id"]
    theirs = [r for r in rows if (r["app_name"], r["user_id"]) == (app, user)]
    others = [r for r in rows if (r["app_name"], r["user_id"]) != (app, user)]
    result = ok_json("purge", "--user", user, "--app", app, db=store_url)
    assert result["app_name"] == app and result["user_id"] == user
    assert result["sessions"] >= len(theirs) > 0
    assert ok_json("sessions", "--app", app, "--user", user, db=store_url) == []
    assert ok_json("sessions", db=store_url) == others
    assert ok_json("audit", db=store_url)["ok"] is True
    again = ok("purge", "--user", user, "--app", app, db=store_url).stdout
    assert "Nothing left to purge" in again
    assert cli("purge", "--user", user, db=store_url).returncode == 2  # --app is required
